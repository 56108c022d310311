"""The decision: a pure function from (policy, scan result) to the limits it exceeds."""

from __future__ import annotations

from crgate.model import THRESHOLD_KEYS, Policy, SeverityCounts, Violation


def evaluate(policy: Policy, counts: SeverityCounts) -> tuple[Violation, ...]:
    """Every limit of ``policy`` that ``counts`` exceeds (count > limit), in THRESHOLD_KEYS order."""
    violations = []
    for key in THRESHOLD_KEYS:
        limit = policy.thresholds.get(key)
        if limit is None:
            continue
        count = counts.get(key)
        if count > limit:
            violations.append(Violation(severity=key, count=count, limit=limit))
    unknown = set(policy.thresholds) - set(THRESHOLD_KEYS)
    if unknown:  # the loader rejects these; refuse rather than silently ignore a limit
        raise ValueError(f"policy has limits crgate does not know: {sorted(unknown)}")
    return tuple(violations)
