"""GitLab container-scanning report, schema 15.0.7 (``artifacts: reports: container_scanning``).

One vulnerability per finding per image, with a deterministic UUID (uuid5 over image + CVE + package),
the CVE as the first (primary) identifier, and ``location.image`` / ``operating_system`` /
``dependency``. ``location.default_branch_image`` is the image without its tag, so GitLab can match a
vulnerability of a branch image with the same one on the default branch.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crgate.model import ImageOutcome, JudgedFinding, RunReport
from crgate.report.common import clip, describe_finding, finding_uuid, is_web_link, repository_of, sorted_findings

SCHEMA_VERSION = "15.0.7"
SCHEMA_URL = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v15.0.7/dist/"
    "container-scanning-report-format.json"
)
VENDOR = {"name": "crgate"}
URL = "https://github.com/crgate/crgate"
_SEVERITY = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "negligible": "Info",
    "undefined": "Unknown",
}
_DECISION_NOTE = {
    "ignored": "Ignored by the crgate policy rule {rule}.",
    "not_fixable": "Not counted by crgate: the policy limits only fixable findings.",
    "in_baseline": "Not counted by crgate: already in the baseline image.",
}


def render(report: RunReport) -> str:
    return json.dumps(document(report), ensure_ascii=False, indent=1) + "\n"


def document(report: RunReport) -> dict[str, Any]:
    tool = {"id": "crgate", "name": "crgate", "version": report.tool_version, "vendor": VENDOR, "url": URL}
    vulnerabilities = [
        _vulnerability(judged, outcome)
        for outcome in report.images
        for judged in sorted_findings(outcome.findings or ())
    ]
    failed = any(outcome.error is not None for outcome in report.images)
    return {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": tool,
            "scanner": {
                "id": "yandex-container-registry",
                "name": "Yandex Cloud Container Registry vulnerability scanner",
                "version": "v1",
                "vendor": {"name": "Yandex Cloud"},
                "url": "https://yandex.cloud/en/docs/container-registry/concepts/vulnerability-scanner",
            },
            "type": "container_scanning",
            "start_time": _time(report.started_at),
            "end_time": _time(report.finished_at),
            "status": "failure" if failed or report.exit_code not in (0, 1) else "success",
            "messages": _messages(report),
        },
        "vulnerabilities": vulnerabilities,
        "remediations": [],
    }


def _vulnerability(judged: JudgedFinding, outcome: ImageOutcome) -> dict[str, Any]:
    finding = judged.finding
    cve = clip(finding.cve, 200) or "UNKNOWN"
    identifier: dict[str, Any] = {"type": _identifier_type(cve), "name": cve, "value": cve}
    links = []
    if is_web_link(finding.link):
        identifier["url"] = finding.link
        links.append({"url": finding.link})
    description = f"{cve} ({finding.severity}) in {describe_finding(finding)} of image {outcome.ref}."
    note = _DECISION_NOTE.get(judged.decision)
    if note:
        description += " " + note.format(rule=judged.rule)
    vulnerability: dict[str, Any] = {
        "id": finding_uuid(outcome.ref, finding.cve, finding.package),
        "name": clip(f"{cve} in {finding.package}", 255),
        "description": clip(description, 10_000),
        "severity": _SEVERITY.get(finding.severity, "Unknown"),
        "identifiers": [identifier],
        "links": links,
        "location": {
            "dependency": {
                "package": {"name": clip(finding.package, 500) or "unknown"},
                "version": clip(finding.version, 500),
            },
            "operating_system": clip(finding.type, 200) or "unknown",
            "image": outcome.ref,
            "default_branch_image": clip(repository_of(outcome.ref), 255),
        },
    }
    if finding.fixed_by:
        vulnerability["solution"] = clip(f"Upgrade {finding.package} to {finding.fixed_by}", 7000)
    return vulnerability


def _identifier_type(cve: str) -> str:
    prefix = cve.split("-", 1)[0].lower()
    return prefix if prefix in ("cve", "ghsa", "dsa", "dla", "usn", "rhsa", "alas", "osv", "go", "pysec") else "other"


def _messages(report: RunReport) -> list[dict[str, str]]:
    messages = []
    for outcome in report.images:
        if outcome.error is not None:
            messages.append({"level": "fatal", "value": clip(f"{outcome.ref}: {outcome.error.message}", 10_000)})
        messages.extend({"level": "warn", "value": clip(f"{outcome.ref}: {w}", 10_000)} for w in outcome.warnings)
    messages.extend({"level": "warn", "value": clip(warning, 10_000)} for warning in report.warnings)
    messages.append({"level": "info", "value": f"crgate verdict: {report.verdict} (exit {report.exit_code})"})
    return messages


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
