"""The judgement: pure functions from (policy, scan result, findings) to the limits exceeded.

Shared by the live run (``runner``) and the offline re-judgement of a saved report (``saved_report``),
so both reach the same verdict from the same data, and build the image's outcome the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crgate.findings import BaselineKeys, judge
from crgate.model import (
    THRESHOLD_KEYS,
    Finding,
    ImageOutcome,
    ImageSource,
    JudgedFinding,
    Origin,
    Policy,
    ScanResult,
    SeverityCounts,
    Violation,
)

KEV_LIMIT = "kev"
"""The ``severity`` of the violation of ``kev.max``."""


@dataclass(frozen=True)
class Decision:
    """What the policy made of one READY result."""

    violations: tuple[Violation, ...]
    counted: dict[str, int]
    """The count each threshold key was checked against (all of THRESHOLD_KEYS)."""
    findings: tuple[JudgedFinding, ...] | None
    vex_applied: frozenset[tuple[str, int]] = frozenset()
    """(document, index) of every VEX statement that applied to a finding (winning or not)."""


def decide(
    policy: Policy,
    image_ref: str,
    result: ScanResult,
    findings: Sequence[Finding] | None,
    *,
    today: dt.date,
    baseline: BaselineKeys | None = None,
    source: ImageSource | None = None,
) -> Decision:
    """Judge one result: by its counts alone, or finding by finding when findings are given. ``source`` (the
    image's digests and reference) is what VEX statements name."""
    if findings is None:
        if policy.uses_findings:  # callers must fetch findings for such a policy; never judge without
            raise ValueError("this policy needs the findings of every image")
        counts = threshold_counts(result.counts)
        return Decision(evaluate(policy, counts), counts, None)
    applied: set[tuple[str, int]] = set()
    judged, counts = judge(
        policy, image_ref, findings, today=today, baseline=baseline, source=source, vex_applied=applied
    )
    return Decision(evaluate(policy, counts), counts, judged, frozenset(applied))


def judged_outcome(
    ref: str,
    result: ScanResult,
    decision: Decision,
    *,
    origin: Origin = Origin.SCANNED,
    polls: int = 0,
    elapsed: float = 0.0,
    warnings: tuple[str, ...] = (),
    source: ImageSource | None = None,
    policy_rule: int | None = None,
) -> ImageOutcome:
    """The outcome of an image judged on a READY result: the one place such an outcome is built."""
    return ImageOutcome(
        ref=ref,
        image_id=result.image_id,
        scan_result_id=result.id,
        result=result,
        violations=decision.violations,
        polls=polls,
        elapsed=elapsed,
        findings=decision.findings,
        counted=decision.counted,
        origin=origin,
        warnings=warnings,
        source=source,
        vex_applied=decision.vex_applied,
        policy_rule=policy_rule,
    )


def threshold_counts(counts: SeverityCounts) -> dict[str, int]:
    """A scan's counts keyed like the policy's thresholds (every severity plus ``total``)."""
    return {key: counts.get(key) for key in THRESHOLD_KEYS}


def evaluate(policy: Policy, counts: SeverityCounts | Mapping[str, int]) -> tuple[Violation, ...]:
    """Every limit of ``policy`` that ``counts`` exceed (count > limit), in THRESHOLD_KEYS order, then the KEV
    limit (``kev.max``, checked against ``counts["kev"]``) when the policy has one."""
    unknown = set(policy.thresholds) - set(THRESHOLD_KEYS)
    if unknown:  # the loader rejects these; refuse rather than silently ignore a limit
        raise ValueError(f"policy has limits crgate does not know: {sorted(unknown)}")
    values = threshold_counts(counts) if isinstance(counts, SeverityCounts) else counts
    violations = []
    for key in THRESHOLD_KEYS:
        limit = policy.thresholds.get(key)
        if limit is None:
            continue
        count = values[key]  # a missing key is a bug: KeyError, never "no findings"
        if count > limit:
            violations.append(Violation(severity=key, count=count, limit=limit))
    if policy.kev is not None:
        count = values["kev"]  # judged without findings (counts only) is refused above: never "no KEV finding"
        if count > policy.kev.max:
            violations.append(Violation(severity=KEV_LIMIT, count=count, limit=policy.kev.max))
    return tuple(violations)
