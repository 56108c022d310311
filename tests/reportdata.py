"""Constructed ``RunReport``s for unit tests of the report formats (no emulator, no clock)."""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType

from crgate.exitcodes import ExitCode, worst
from crgate.judge import evaluate, threshold_counts
from crgate.model import (
    SEVERITIES,
    ErrorInfo,
    Finding,
    ImageOutcome,
    JudgedFinding,
    Policy,
    RunReport,
    ScanResult,
    SeverityCounts,
)

STARTED = dt.datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=dt.timezone.utc)
FINISHED = STARTED + dt.timedelta(seconds=12.5)
POLICY = Policy(version=1, thresholds=MappingProxyType({"critical": 0, "high": 0, "total": 50}), source="policy.yaml")


def judged(cve: str, severity: str, package: str = "openssl", decision: str = "counted", **extra: str) -> JudgedFinding:
    rule = extra.pop("rule", None) if decision == "ignored" else None
    finding = Finding(
        cve=cve,
        severity=severity,
        package=package,
        version=extra.pop("version", "1.0.0"),
        fixed_by=extra.pop("fixed_by", ""),
        link=extra.pop("link", f"https://nvd.nist.gov/vuln/detail/{cve}"),
        source="dpkg",
        origin="os",
        type=extra.pop("type", "debian"),
    )
    return JudgedFinding(finding, decision, rule or ("CVE rule (policy line 3)" if decision == "ignored" else None))


def scanned(
    ref: str, findings: list[JudgedFinding], policy: Policy = POLICY, *, image_id: str = "crpimage1"
) -> ImageOutcome:
    """A READY outcome whose counts and violations follow from ``findings`` and ``policy``."""
    all_counts = dict.fromkeys(SEVERITIES, 0)
    counted = dict.fromkeys(SEVERITIES, 0)
    for item in findings:
        all_counts[item.finding.severity] += 1
        if item.decision == "counted":
            counted[item.finding.severity] += 1
    counted_counts = SeverityCounts(**counted)
    result = ScanResult(
        id=f"crgsr-{image_id}",
        image_id=image_id,
        status="READY",
        counts=SeverityCounts(**all_counts),
        scanned_at=STARTED,
    )
    return ImageOutcome(
        ref=ref,
        image_id=image_id,
        scan_result_id=result.id,
        result=result,
        violations=evaluate(policy, counted_counts),
        polls=3,
        elapsed=2.25,
        findings=tuple(findings),
        counted=threshold_counts(counted_counts),
    )


def failed(ref: str, message: str = "scan of image crpbroken failed: scanner crashed") -> ImageOutcome:
    return ImageOutcome(
        ref=ref,
        image_id="crpbroken",
        scan_result_id="crgsr-broken",
        error=ErrorInfo(kind="scan", message=message, exit_code=3, code="INTERNAL", request_ids=("req-1",)),
    )


def run_report(*images: ImageOutcome, policy: Policy = POLICY, warnings: tuple[str, ...] = ()) -> RunReport:
    code = int(worst([ExitCode(image.exit_code) for image in images]))
    return RunReport(
        policy=policy,
        images=tuple(images),
        exit_code=code,
        tool_version="0.1.0",
        started_at=STARTED,
        finished_at=FINISHED,
        warnings=warnings,
    )


def mixed_report() -> RunReport:
    """A pass, a violation with every decision, an error and an image whose findings were not fetched."""
    vulnerable = [
        judged("CVE-2023-4863", "critical", "libwebp7", fixed_by="1.2.4-0.2+deb12u1"),
        judged("CVE-2023-38545", "critical", "curl", fixed_by="7.88.1-10+deb12u4"),
        judged("CVE-2023-38545", "critical", "libcurl4", fixed_by="7.88.1-10+deb12u4"),
        judged("CVE-2024-0002", "high", "zlib1g", decision="ignored", rule="CVE-2024-0002 (policy line 9)"),
        judged("CVE-2024-0003", "medium", "glibc", decision="not_fixable"),
        judged("CVE-2024-0004", "low", "bash", decision="in_baseline"),
        judged("CVE-2024-0005", "negligible", "tar"),
        judged("CVE-2024-0006", "undefined", "perl", link=""),
    ]
    counts_only = scanned("cr.yandex/crptest/app:counts", [], image_id="crpcounts")
    counts_only = ImageOutcome(**{**counts_only.__dict__, "findings": None})
    return run_report(
        scanned("cr.yandex/crptest/app:clean", [], image_id="crpclean"),
        scanned("cr.yandex/crptest/app:vuln", vulnerable, image_id="crpvuln"),
        failed("cr.yandex/crptest/app:broken"),
        counts_only,
        warnings=("ignore rule CVE-2024-0002 (policy line 9) expires in 3 days (2026-01-18)",),
    )


def huge_report(n: int, *, images: int = 1) -> RunReport:
    """``n`` findings spread over every severity and ``images`` images."""
    outcomes = []
    per_image = n // images
    for number in range(images):
        findings = [
            judged(f"CVE-2024-{i:05d}", SEVERITIES[i % len(SEVERITIES)], f"package-{i % 997}", fixed_by="2.0")
            for i in range(per_image)
        ]
        outcomes.append(scanned(f"cr.yandex/crptest/app:t{number}", findings, image_id=f"crpimg{number}"))
    return run_report(*outcomes)
