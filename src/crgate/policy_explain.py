"""``crgate policy explain``: the effective policy for given references, without calling the cloud (pure).

For each reference: which ``images:`` rule judges it (or the top-level keys) and the limits, ignore
rules, VEX documents, KEV limit and baseline that then apply, as text or as one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from crgate.image_rules import canonical_reference, rule_for
from crgate.model import THRESHOLD_KEYS, Policy
from crgate.policy import describe_policy
from crgate.report.json_report import image_rule_document
from crgate.textsafe import LINE_LIMIT, safe


def explain(policy: Policy, references: Sequence[str]) -> list[dict[str, Any]]:
    """One entry per reference (each must be a registry reference: the caller checked)."""
    entries = []
    for reference in references:
        rule = rule_for(policy.images, reference)
        effective = policy.judging(rule.index if rule is not None else None)
        entries.append(
            {
                "ref": reference,
                "canonical": canonical_reference(reference),
                "policy_rule": rule.index if rule is not None else None,
                "rule": image_rule_document(rule) if rule is not None else None,
                "thresholds": {key: effective.thresholds[key] for key in THRESHOLD_KEYS if key in effective.thresholds},
                "fixable_only": sorted(key for key in THRESHOLD_KEYS if effective.counts_fixable_only(key)),
                "only_fixed": effective.only_fixed,
                "unscannable": effective.unscannable,
                "ignore": [item.label for item in effective.ignore],
                "vex": [document.path for document in effective.vex],
                "kev": None
                if effective.kev is None
                else {"catalog": effective.kev.catalog.path, "max": effective.kev.max},
                "baseline": effective.baseline.image if effective.baseline is not None else None,
                "summary": describe_policy(effective),
            }
        )
    return entries


def render_json(policy: Policy, entries: list[dict[str, Any]]) -> str:
    document = {"policy": {"source": policy.source, "sha256": policy.sha256}, "references": entries}
    return json.dumps(document, indent=2, ensure_ascii=True)


def render_text(policy: Policy, entries: list[dict[str, Any]]) -> str:
    lines = [f"policy {safe(policy.source)}" + (f" (sha256 {policy.sha256})" if policy.sha256 else "")]
    for entry in entries:
        rule = entry["rule"]
        if rule is None:
            judged = "the top-level keys (no images: rule matches)" if policy.images else "the top-level keys"
        else:
            where = f", line {rule['line']}" if rule["line"] else ""
            judged = f"rule images[{rule['index']}] (match {', '.join(rule['match'])}{where})"
        lines.append(f"{safe(entry['ref'])}: judged by {safe(judged)}")
        lines.append(f"  {safe(entry['summary'], LINE_LIMIT)}")
    return "\n".join(lines)
