"""What the CI-facing formats (SARIF, GitLab, JUnit, Markdown) share: stable ids, ordering, limit rows.

Pure helpers over the plain model; nothing here reads a clock or the environment, so every format is a
deterministic function of its ``RunReport``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from crgate.model import SEVERITIES, THRESHOLD_KEYS, Finding, ImageOutcome, JudgedFinding, Policy

# Fixed namespace for crgate's name-based UUIDs: the same image, CVE and package always give the same id.
NAMESPACE = uuid.UUID("6f2f0d8e-61a4-5b0c-9d43-0c7c2a6f3e11")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def finding_uuid(image: str, cve: str, package: str) -> str:
    """A deterministic UUID (v5) for one finding of one image."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join((image, cve, package))))


def repository_of(ref: str) -> str:
    """An image reference without its tag and digest (``cr.yandex/crp1/app:1.2`` -> ``cr.yandex/crp1/app``).

    Alerts keyed on the repository survive a rebuild under a new tag; a bare image id stays as it is.
    """
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash >= 0 else name


def finding_order(judged: JudgedFinding) -> tuple[int, int, str, str]:
    """Most severe first; among equals fixable first, then by CVE and package (stable across runs)."""
    finding = judged.finding
    return (
        SEVERITY_RANK.get(finding.severity, len(SEVERITIES)),
        0 if finding.fixable else 1,
        finding.cve,
        finding.package,
    )


def sorted_findings(findings: Iterable[JudgedFinding]) -> list[JudgedFinding]:
    return sorted(findings, key=finding_order)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def is_web_link(link: str) -> bool:
    """True for an http(s) URL safe to put in a report as a link (no whitespace, not absurdly long)."""
    return link.startswith(("https://", "http://")) and len(link) <= 2000 and not any(ch.isspace() for ch in link)


def describe_finding(finding: Finding) -> str:
    """``curl 7.88.1 (fixed in 7.88.2)`` / ``(no fix known)``."""
    version = f" {finding.version}" if finding.version else ""
    fix = f"fixed in {finding.fixed_by}" if finding.fixed_by else "no fix known"
    return f"{finding.package}{version} ({fix})"


@dataclass(frozen=True)
class LimitRow:
    """One policy limit as checked for one image."""

    key: str
    count: int
    limit: int
    violated: bool


def limit_rows(policy: Policy, outcome: ImageOutcome) -> list[LimitRow]:
    """Every limit of the policy with the count it was checked against (empty when there is no result)."""
    if outcome.result is None:
        return []
    violated = {violation.severity: violation.count for violation in outcome.violations}
    rows = []
    for key in THRESHOLD_KEYS:
        if key not in policy.thresholds:
            continue
        checked = outcome.counted[key] if outcome.counted is not None else outcome.result.counts.get(key)
        count = violated.get(key, checked)
        rows.append(LimitRow(key, count, policy.thresholds[key], key in violated))
    return rows


def violated_severities(outcome: ImageOutcome) -> set[str]:
    """Severities whose findings made this image fail (``total`` makes every severity count)."""
    keys = {violation.severity for violation in outcome.violations}
    return set(SEVERITIES) if "total" in keys else keys
