"""The machine report: a stable JSON document (schema: ``report.schema.json`` beside this module).

Stability promise: keys are only ever added within ``schema_version`` 1; counts are integers with all
six severities present (zero included), unlike Yandex's own JSON which omits zeros and quotes int64s.

Written as a stream: the document is indented by two spaces, and each finding is one line (see
``crgate.report.jsonout``), so 100,000 findings never exist as one string or one dict tree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TextIO

from crgate.model import (
    SEVERITIES,
    THRESHOLD_KEYS,
    ImageOutcome,
    ImageRule,
    JudgedFinding,
    KevEntry,
    RunReport,
    VexStatement,
)
from crgate.report.common import Context
from crgate.report.jsonout import Splice, ascii_string
from crgate.report.provenance import document as provenance_document

SCHEMA_VERSION = 1
FindingsOf = Callable[[ImageOutcome], Any]


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _all_findings(outcome: ImageOutcome) -> Any:
    return None if outcome.findings is None else [finding_document(j) for j in outcome.findings]


def image_document(outcome: ImageOutcome, findings_of: FindingsOf = _all_findings) -> dict[str, Any]:
    result = outcome.result
    counts = result.counts.as_dict() if result else None
    error = None
    if outcome.error is not None:
        error = {
            "kind": outcome.error.kind,
            "message": outcome.error.message,
            "exit_code": outcome.error.exit_code,
            "code": outcome.error.code,
            "method": outcome.error.method,
            "request_ids": list(outcome.error.request_ids),
        }
    source = outcome.source
    return {
        "ref": outcome.ref,
        "reference": source.reference if source else None,
        "digest": source.digest if source else None,
        "platform": source.platform if source else None,
        "index_digest": source.index_digest if source else None,
        "pinned": source.pinned if source else None,
        "image_id": outcome.image_id,
        "scan_result_id": outcome.scan_result_id,
        "status": result.status if result else None,
        "scanned_at": _time(result.scanned_at) if result else None,
        "verdict": outcome.verdict,
        "exit_code": outcome.exit_code,
        "counts": counts,
        "total": result.counts.total if result else None,
        "violations": [{"severity": v.severity, "count": v.count, "limit": v.limit} for v in outcome.violations],
        "error": error,
        "polls": outcome.polls,
        "elapsed_seconds": round(outcome.elapsed, 3),
        "origin": outcome.origin,
        "counted": dict(outcome.counted) if outcome.counted is not None and result is not None else None,
        "findings": findings_of(outcome),
        "warnings": list(outcome.warnings),
        "policy_rule": outcome.policy_rule,
    }


def finding_document(judged: JudgedFinding) -> dict[str, Any]:
    finding = judged.finding
    return {
        "cve": finding.cve,
        "severity": finding.severity,
        "package": finding.package,
        "version": finding.version,
        "fixed_by": finding.fixed_by or None,
        "link": finding.link or None,
        "source": finding.source or None,
        "origin": finding.origin or None,
        "type": finding.type or None,
        "decision": judged.decision,
        "rule": judged.rule,
        "vex": vex_document(judged.vex),
        "kev": kev_document(judged.kev),
    }


def vex_document(statement: VexStatement | None) -> dict[str, Any] | None:
    """The VEX statement that applied to a finding: its document, its place there, what it says."""
    if statement is None:
        return None
    return {
        "document": statement.document,
        "statement": statement.index,
        "vulnerability": statement.name,
        "status": statement.status,
        "justification": statement.justification,
        "impact_statement": statement.impact_statement,
        "timestamp": _time(statement.timestamp),
    }


def kev_document(entry: KevEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "date_added": entry.date_added.isoformat(),
        "due_date": entry.due_date.isoformat(),
        "known_ransomware": entry.known_ransomware,
    }


def finding_line(judged: JudgedFinding) -> str:
    """``finding_document(judged)`` encoded as one line of JSON, without building the dict."""
    f = judged.finding
    e = ascii_string
    return (
        f'{{"cve": {e(f.cve)}, "severity": {e(f.severity)}, "package": {e(f.package)}, "version": {e(f.version)}, '
        f'"fixed_by": {e(f.fixed_by) if f.fixed_by else "null"}, "link": {e(f.link) if f.link else "null"}, '
        f'"source": {e(f.source) if f.source else "null"}, "origin": {e(f.origin) if f.origin else "null"}, '
        f'"type": {e(f.type) if f.type else "null"}, "decision": {e(judged.decision)}, '
        f'"rule": {e(judged.rule) if judged.rule else "null"}, '
        f'"vex": {_inline(vex_document(judged.vex)) if judged.vex else "null"}, '
        f'"kev": {_inline(kev_document(judged.kev)) if judged.kev else "null"}}}'
    )


def _inline(value: dict[str, Any] | None) -> str:
    """A small object on the finding's one line (ASCII, as the whole report)."""
    return json.dumps(value, ensure_ascii=True)


def streamed(splice: Splice, context: Context) -> FindingsOf:
    """A ``findings_of`` that puts each image's findings in ``splice`` as one line each."""

    def findings_of(outcome: ImageOutcome) -> Any:
        if outcome.findings is None:
            return None
        return splice.array(context.finding_lines(outcome, finding_line))

    return findings_of


def document(report: RunReport, findings_of: FindingsOf = _all_findings) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "crgate", "version": report.tool_version},
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "started_at": _time(report.started_at),
        "finished_at": _time(report.finished_at),
        "policy": {
            "source": report.policy.source,
            "version": report.policy.version,
            "thresholds": {
                key: report.policy.thresholds[key] for key in THRESHOLD_KEYS if key in report.policy.thresholds
            },
            "vex": [
                {"path": d.path, "sha256": d.sha256, "format": d.format, "statements": len(d.statements)}
                for d in report.policy.vex
            ],
            "kev": _kev_policy(report),
            "images": [image_rule_document(rule) for rule in report.policy.images],
        },
        "severities": list(SEVERITIES),
        "images": [image_document(outcome, findings_of) for outcome in report.images],
        "warnings": list(report.warnings),
        "stale_ignores": list(report.stale_ignores),
        "stale_vex": list(report.stale_vex),
        "baseline": _baseline(report),
        "unscannable": list(report.unscannable),
        "report_only": report.report_only,
        "references": references(report),
        "provenance": provenance_document(report),
    }


def references(report: RunReport) -> list[dict[str, Any]]:
    """Each image reference of the run once, with what it resolved to in the registry (for pinning)."""
    seen: dict[str, dict[str, Any]] = {}
    for outcome in report.images:
        source = outcome.source
        if source is not None and source.reference not in seen:
            seen[source.reference] = {
                "ref": source.reference,
                "digest": source.index_digest or source.digest,
                "index": source.index_digest is not None,
                "pinned": source.pinned,
            }
    return list(seen.values())


def image_rule_document(rule: ImageRule) -> dict[str, Any]:
    """One ``images:`` rule as the JSON report and ``policy explain`` show it (null: the top level applies)."""
    thresholds = None
    if rule.thresholds is not None:
        thresholds = {key: rule.thresholds[key] for key in THRESHOLD_KEYS if key in rule.thresholds}
    return {
        "index": rule.index,
        "match": list(rule.match),
        "line": rule.line,
        "thresholds": thresholds,
        "fixable_only": sorted(rule.fixable_only) if rule.thresholds is not None else None,
        "only_fixed": rule.only_fixed,
        "unscannable": rule.unscannable,
        "ignore": [item.label for item in rule.ignore],
        "vex": [document.path for document in rule.vex],
    }


def _kev_policy(report: RunReport) -> dict[str, Any] | None:
    kev = report.policy.kev
    if kev is None:
        return None
    return {
        "catalog": kev.catalog.path,
        "sha256": kev.catalog.sha256,
        "version": kev.catalog.version,
        "released": _time(kev.catalog.released),
        "max": kev.max,
        "max_age_seconds": int(kev.max_age.total_seconds()) if kev.max_age else None,
        "entries": len(kev.catalog.entries),
    }


def _baseline(report: RunReport) -> dict[str, Any] | None:
    baseline = report.baseline
    if baseline is None:
        return None
    return {
        "ref": baseline.ref,
        "image_id": baseline.image_id,
        "scan_result_id": baseline.scan_result_id,
        "origin": baseline.origin,
        "pairs": [list(pair) for pair in baseline.pairs],
    }


def write(context: Context, out: TextIO) -> None:
    splice = Splice()
    splice.write(out, document(context.report, streamed(splice, context)), indent=2, ensure_ascii=True)
