"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

One run; one rule per CVE (short and full description, help, ``security-severity``, ``security`` tag);
one result per finding per image, located at ``--sarif-location`` (default ``Dockerfile``, line 1) and
carrying a partial fingerprint that is stable per image repository + CVE + package, so a rebuild under a
new tag keeps the same alert.

GitHub's upload limits (docs.github.com, "SARIF results exceed limit"): 10 MB per gzip-compressed file,
20 runs per file, 25,000 results and 25,000 rules per run (only the top 5,000 results are shown, by
severity), 1,000 locations per result and 20 tags per rule (10 shown). crgate writes one run, one
location per result, at most 5 tags per rule, and keeps the most severe ``MAX_RESULTS`` results; the
rest are counted in a tool notification. Text fields taken from the scanner are clipped, so 25,000
results stay far below 10 MB compressed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from crgate.model import ImageOutcome, JudgedFinding, RunReport
from crgate.report.common import (
    SEVERITY_RANK,
    clip,
    describe_finding,
    finding_order,
    finding_uuid,
    is_web_link,
    repository_of,
    violated_severities,
)

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/crgate/crgate"
DEFAULT_LOCATION = "Dockerfile"
MAX_RESULTS = 25_000
MAX_RULES = 25_000
FINGERPRINT_KEY = "crgateFinding/v1"
# GitHub maps security-severity to its levels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, < 4 low.
SECURITY_SEVERITY = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "2.0",
    "negligible": "1.0",
    "undefined": "0.0",
}
_RULE_LEVEL = {"critical": "error", "high": "error", "medium": "warning"}
_FIELD = 200  # longest package / version / CVE text taken from the scanner into a message


@dataclass(frozen=True)
class SarifOptions:
    location: str = DEFAULT_LOCATION
    """Repository-relative path every result points at (the image's Dockerfile)."""


def render(report: RunReport, options: SarifOptions | None = None) -> str:
    return json.dumps(document(report, options or SarifOptions()), ensure_ascii=False, separators=(",", ":")) + "\n"


def document(report: RunReport, options: SarifOptions) -> dict[str, Any]:
    candidates: list[tuple[tuple[int, int, str, str], int, JudgedFinding, ImageOutcome]] = []
    for index, outcome in enumerate(report.images):
        for judged in outcome.findings or ():
            candidates.append((finding_order(judged), index, judged, outcome))
    dropped = max(0, len(candidates) - MAX_RESULTS)
    if dropped:
        candidates = sorted(candidates, key=lambda item: (item[0], item[1]))[:MAX_RESULTS]
    candidates.sort(key=lambda item: (item[1], item[0]))

    rules: dict[str, dict[str, Any]] = {}
    rule_findings: dict[str, list[tuple[JudgedFinding, ImageOutcome]]] = {}
    for _, _, judged, outcome in candidates:
        rule_findings.setdefault(_rule_id(judged), []).append((judged, outcome))
    for rule_id in sorted(rule_findings)[:MAX_RULES]:
        rules[rule_id] = _rule(rule_id, rule_findings[rule_id])
    index_of = {rule_id: position for position, rule_id in enumerate(rules)}

    results = [
        _result(judged, outcome, index_of[_rule_id(judged)], options)
        for _, _, judged, outcome in candidates
        if _rule_id(judged) in index_of
    ]
    dropped += len(candidates) - len(results)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "crgate",
                        "version": report.tool_version,
                        "semanticVersion": report.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": list(rules.values()),
                    }
                },
                "automationDetails": {"id": "crgate/"},
                "invocations": [_invocation(report, dropped)],
                "results": results,
                "properties": {
                    "verdict": report.verdict,
                    "exitCode": report.exit_code,
                    "policy": report.policy.source,
                    "images": [_image_properties(outcome) for outcome in report.images],
                },
            }
        ],
    }


def _rule_id(judged: JudgedFinding) -> str:
    return clip(judged.finding.cve, _FIELD) or "UNKNOWN"


def _rule(rule_id: str, findings: list[tuple[JudgedFinding, ImageOutcome]]) -> dict[str, Any]:
    worst = min((judged.finding.severity for judged, _ in findings), key=lambda s: SEVERITY_RANK.get(s, 99))
    packages = sorted({clip(judged.finding.package, _FIELD) for judged, _ in findings})
    link = next((judged.finding.link for judged, _ in findings if is_web_link(judged.finding.link)), "")
    package_text = ", ".join(packages[:20]) + (f" and {len(packages) - 20} more" if len(packages) > 20 else "")
    full = f"{rule_id} is a {worst} vulnerability reported by the Yandex Container Registry scanner in {package_text}."
    help_text = (
        f"{full} Update the affected packages to a fixed version and rebuild the image, or add an "
        f"ignore rule with a reason and an expiry date to the crgate policy."
    )
    help_markdown = help_text if not link else f"{help_text}\n\nDetails: [{rule_id}]({link})"
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": "ContainerImageVulnerability",
        "shortDescription": {"text": f"{rule_id} ({worst}) in a container image package"},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": _RULE_LEVEL.get(worst, "note")},
        "properties": {
            "security-severity": SECURITY_SEVERITY.get(worst, "0.0"),
            "tags": ["security", "vulnerability", "container", worst],
            "precision": "very-high",
        },
    }
    if link:
        rule["helpUri"] = link
    return rule


def _result(judged: JudgedFinding, outcome: ImageOutcome, rule_index: int, options: SarifOptions) -> dict[str, Any]:
    finding = judged.finding
    described = clip(describe_finding(finding), 3 * _FIELD)
    message = f"{_rule_id(judged)} ({finding.severity}) in {described} of image {outcome.ref}"
    if judged.decision == "ignored":
        message += f"; ignored by crgate policy rule {judged.rule}"
    elif judged.decision == "not_fixable":
        message += "; not counted: the policy limits only fixable findings"
    elif judged.decision == "in_baseline":
        message += "; not counted: already in the baseline image"
    result: dict[str, Any] = {
        "ruleId": _rule_id(judged),
        "ruleIndex": rule_index,
        "level": _level(judged, outcome),
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(options.location, safe="/")},
                    "region": {"startLine": 1},
                },
                "message": {"text": f"image {outcome.ref}"},
            }
        ],
        "partialFingerprints": {
            FINGERPRINT_KEY: finding_uuid(repository_of(outcome.ref), finding.cve, finding.package),
        },
        "properties": {
            "image": outcome.ref,
            "imageId": outcome.image_id,
            "scanResultId": outcome.scan_result_id,
            "severity": finding.severity,
            "package": clip(finding.package, _FIELD),
            "installedVersion": clip(finding.version, _FIELD),
            "fixedVersion": clip(finding.fixed_by, _FIELD),
            "decision": judged.decision,
        },
    }
    if judged.decision == "ignored":
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": str(judged.rule)}]
    elif judged.decision == "in_baseline":
        result["baselineState"] = "unchanged"
    return result


def _level(judged: JudgedFinding, outcome: ImageOutcome) -> str:
    """``error`` when the finding made the image fail, ``warning`` when counted within limits, else ``note``."""
    if judged.decision != "counted":
        return "note"
    return "error" if judged.finding.severity in violated_severities(outcome) else "warning"


def _invocation(report: RunReport, dropped: int) -> dict[str, Any]:
    notifications = []
    for outcome in report.images:
        if outcome.error is not None:
            notifications.append(
                _notification("error", f"{outcome.ref}: {outcome.error.message}", "crgate/image-error")
            )
        elif outcome.findings is None and outcome.result is not None:
            notifications.append(
                _notification("warning", f"{outcome.ref}: findings were not fetched", "crgate/no-findings")
            )
        notifications.extend(
            _notification("warning", f"{outcome.ref}: {w}", "crgate/warning") for w in outcome.warnings
        )
    notifications.extend(_notification("warning", warning, "crgate/warning") for warning in report.warnings)
    if dropped:
        notifications.append(
            _notification(
                "warning",
                f"{dropped} less severe results were left out to stay within GitHub's limit of "
                f"{MAX_RESULTS} results per run; the JSON report lists every finding",
                "crgate/truncated",
            )
        )
    return {
        "executionSuccessful": report.exit_code in (0, 1),
        "exitCode": report.exit_code,
        "startTimeUtc": _time(report.started_at),
        "endTimeUtc": _time(report.finished_at),
        "toolExecutionNotifications": notifications,
    }


def _notification(level: str, text: str, rule: str) -> dict[str, Any]:
    return {"level": level, "message": {"text": clip(text, 4000)}, "descriptor": {"id": rule}}


def _image_properties(outcome: ImageOutcome) -> dict[str, Any]:
    return {
        "ref": outcome.ref,
        "imageId": outcome.image_id,
        "scanResultId": outcome.scan_result_id,
        "verdict": outcome.verdict,
        "findings": None if outcome.findings is None else len(outcome.findings),
    }


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
