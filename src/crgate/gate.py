"""The decision: a pure function from (policy, counts) to the limits they exceed."""

from __future__ import annotations

from collections.abc import Mapping

from crgate.model import THRESHOLD_KEYS, Policy, SeverityCounts, Violation


def threshold_counts(counts: SeverityCounts) -> dict[str, int]:
    """A scan's counts keyed like the policy's thresholds (every severity plus ``total``)."""
    return {key: counts.get(key) for key in THRESHOLD_KEYS}


def evaluate(policy: Policy, counts: SeverityCounts | Mapping[str, int]) -> tuple[Violation, ...]:
    """Every limit of ``policy`` that ``counts`` exceed (count > limit), in THRESHOLD_KEYS order."""
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
    return tuple(violations)
