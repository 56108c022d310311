"""The audit's report formats: ``text`` (a table for people), ``json`` (the machine report), ``markdown``
(a job summary) and ``junit`` (one test case per image, for CI test views).

JSON goes through ``jsonout`` (inert, lossless); every human format prints untrusted text (references,
scanner messages) only through ``crgate.textsafe``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, TextIO
from xml.sax.saxutils import escape, quoteattr

from crgate.audit.model import AuditEntry, AuditReport, AuditState
from crgate.durations import format_age, format_duration
from crgate.outputs import PendingFile, ReportPlan, write_planned
from crgate.report.jsonout import Splice
from crgate.report.provenance import loosenings_document
from crgate.textsafe import LINE_LIMIT, safe, visible

AUDIT_FORMATS: tuple[str, ...] = ("text", "json", "markdown", "junit")
SCHEMA_VERSION = 1


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _age(entry: AuditEntry) -> str:
    if entry.age_seconds is None:
        return "-"
    if entry.age_seconds < 0:
        return "future"
    return format_age(dt.timedelta(seconds=int(entry.age_seconds)))


def entry_document(entry: AuditEntry) -> dict[str, Any]:
    outcome = entry.outcome
    counts = outcome.result.counts.as_dict() if outcome is not None and outcome.result is not None else None
    violations = [
        {"severity": v.severity, "count": v.count, "limit": v.limit} for v in (outcome.violations if outcome else ())
    ]
    return {
        "ref": entry.ref,
        "image_id": entry.image_id,
        "digest": entry.digest,
        "state": entry.state,
        "scan_result_id": entry.scan_result_id,
        "scanned_at": _time(entry.scanned_at),
        "age_seconds": None if entry.age_seconds is None else int(entry.age_seconds),
        "verdict": entry.verdict,
        "rescanned": entry.rescanned,
        "counts": counts,
        "counted": dict(outcome.counted) if outcome is not None and outcome.counted is not None else None,
        "violations": violations,
        "notes": list(entry.notes),
    }


def write_json(report: AuditReport, out: TextIO) -> None:
    splice = Splice()
    images = (ascii_string_document(entry_document(entry)) for entry in report.entries)
    skeleton = {
        "schema_version": SCHEMA_VERSION,
        "kind": "audit",
        "tool": {"name": "crgate", "version": report.tool_version},
        "verdict": report.verdict,
        "exit_code": int(report.exit_code),
        "interrupted": report.interrupted,
        "started_at": _time(report.started_at),
        "finished_at": _time(report.finished_at),
        "policy": {"source": report.policy.source, "sha256": report.policy.sha256},
        "max_age_seconds": int(report.max_age.total_seconds()),
        "scopes": list(report.scopes),
        "scans_started": report.scans_started,
        "loosenings": loosenings_document(report.loosenings),
        "states": report.counts(),
        "warnings": list(report.warnings),
        "images": splice.array(images),
    }
    splice.write(out, skeleton, indent=2, ensure_ascii=True)
    out.write("\n")


def ascii_string_document(document: dict[str, Any]) -> str:
    """One image as a single line of JSON, in ASCII (``Splice.write`` makes it inert)."""
    return json.dumps(document, ensure_ascii=True, separators=(", ", ": "))


def _summary(report: AuditReport) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in report.counts().items())
    started = f"; {report.scans_started} scan(s) started" if report.scans_started else "; no scan started"
    return (
        f"audit: {len(report.entries)} image(s): {counts} (max age {format_duration(report.max_age)}){started}; "
        f"verdict {report.verdict}"
    )


def _detail(entry: AuditEntry) -> str:
    outcome = entry.outcome
    parts = []
    if outcome is not None and outcome.violations:
        parts.append(", ".join(f"{v.severity} {v.count} > {v.limit}" for v in outcome.violations))
    parts += list(entry.notes)
    return "; ".join(parts)


def write_text(report: AuditReport, out: TextIO) -> None:
    rows = [("STATE", "AGE", "LAST SCAN", "VERDICT", "IMAGE")]
    for entry in report.entries:
        rows.append(
            (
                str(entry.state),
                _age(entry),
                entry.scan_result_id or "-",
                str(entry.verdict or "-"),
                safe(entry.ref, 300),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] + "\n")
    for entry in report.entries:
        detail = _detail(entry)
        if entry.state is not AuditState.FRESH and detail:
            out.write(safe(f"  {entry.ref}: {detail}", LINE_LIMIT) + "\n")
    for warning in report.warnings:
        out.write(safe(f"warning: {warning}", LINE_LIMIT) + "\n")
    out.write(safe(_summary(report), LINE_LIMIT) + "\n")


def _md(text: str) -> str:
    return visible(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def write_markdown(report: AuditReport, out: TextIO) -> None:
    out.write(f"## crgate audit: {report.verdict}\n\n{_md(_summary(report))}\n\n")
    out.write("| State | Age | Last scan | Verdict | Image | Details |\n|---|---|---|---|---|---|\n")
    for entry in report.entries:
        cells = (
            str(entry.state),
            _age(entry),
            entry.scan_result_id or "-",
            str(entry.verdict or "-"),
            f"`{_md(entry.ref)}`",
            _md(_detail(entry)),
        )
        out.write("| " + " | ".join(cells) + " |\n")
    for warning in report.warnings:
        out.write(f"\n> {_md(warning)}\n")


def write_junit(report: AuditReport, out: TextIO) -> None:
    failures = sum(
        1 for e in report.entries if e.state in (AuditState.NEVER_SCANNED, AuditState.STALE, AuditState.FAILING)
    )
    errors = sum(1 for e in report.entries if e.state is AuditState.ERROR)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        f'<testsuites name="crgate audit" tests="{len(report.entries)}" failures="{failures}" errors="{errors}">\n'
        f'  <testsuite name="crgate audit" tests="{len(report.entries)}" failures="{failures}" errors="{errors}">\n'
    )
    for entry in report.entries:
        name = quoteattr(visible(entry.ref))
        out.write(f'    <testcase classname="crgate.audit" name={name}>\n')
        body = escape(
            visible(f"{entry.state}, age {_age(entry)}, last scan {entry.scan_result_id or '-'}; {_detail(entry)}")
        )
        if entry.state is AuditState.ERROR:
            out.write(f'      <error message="error">{body}</error>\n')
        elif entry.state is not AuditState.FRESH:
            out.write(f"      <failure message={quoteattr(str(entry.state))}>{body}</failure>\n")
        out.write("    </testcase>\n")
    out.write("  </testsuite>\n</testsuites>\n")


_WRITERS = {"text": write_text, "json": write_json, "markdown": write_markdown, "junit": write_junit}


def write_audit_reports(
    report: AuditReport, plan: ReportPlan, files: Sequence[PendingFile], stdout: TextIO, stderr: TextIO
) -> None:
    """Every report of ``plan`` (``outputs.write_planned``: files committed only once all are written)."""

    def write(destinations: list[tuple[str, TextIO]]) -> None:
        for fmt, out in destinations:
            _WRITERS[fmt](report, out)

    write_planned(plan, files, stdout, stderr, write)
