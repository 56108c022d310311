"""A Markdown summary for ``$GITHUB_STEP_SUMMARY`` and merge-request comments.

Verdict first, then warnings, a summary table, and per image: its limits, the top findings of the
severities it violates, and the findings the policy ignored. Always under 1 MiB (GitHub's step-summary
limit): every line is clipped, every list is capped, and the whole text stops with a "... and N more"
line when it would grow past ``MAX_BYTES``. Text from the scanner is escaped, so a package name can
never inject a link, HTML or table cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from crgate.model import SEVERITIES, ImageOutcome, JudgedFinding, RunReport
from crgate.report.common import clip, is_web_link, limit_rows, sorted_findings, violated_severities
from crgate.report.text import describe_limits

MAX_BYTES = 1_000_000  # below GitHub's 1 MiB step-summary limit, with room for the closing line
MAX_LINE = 2_000
TOP_FINDINGS = 20
MAX_IGNORED = 20
MAX_WARNINGS = 50
_ICON = {"pass": "✅", "fail": "❌", "error": "⚠️"}
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def render(report: RunReport) -> str:
    lines: list[str] = []
    size = 0
    produced = _lines(report)
    for line in produced:
        line = clip(line, MAX_LINE)
        cost = len(line.encode("utf-8")) + 1
        if size + cost > MAX_BYTES:
            rest = 1 + sum(1 for _ in produced)
            lines.append(f"\n... and {rest} more lines (cut to stay under 1 MiB; the JSON report has everything)")
            break
        lines.append(line)
        size += cost
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """Plain text safe inside Markdown and a table cell: no HTML, links, emphasis or cell breaks."""
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _lines(report: RunReport) -> Iterator[str]:
    n = len(report.images)
    yield f"## crgate: {_ICON.get(report.verdict, '')} {report.verdict.upper()} (exit {report.exit_code})"
    yield ""
    limits = describe_limits(report.policy)
    yield (
        f"Policy {escape(report.policy.source)} ({escape(limits)}); {n} image{'s' if n != 1 else ''}; "
        f"crgate {escape(report.tool_version)}."
    )
    yield ""
    if report.warnings:
        yield "**Warnings**"
        yield ""
        yield from _capped([f"- {escape(w)}" for w in report.warnings], MAX_WARNINGS, "warnings")
        yield ""
    if report.images:
        yield f"| image | verdict | {' | '.join(SEVERITIES)} | total |"
        yield "|" + " --- |" * (len(SEVERITIES) + 3)
        for outcome in report.images:
            yield _summary_row(outcome)
        yield ""
    for outcome in report.images:
        yield from _image_section(report, outcome)


def _summary_row(outcome: ImageOutcome) -> str:
    verdict = f"{_ICON[outcome.verdict]} {outcome.verdict}"
    if outcome.result is None:
        cells = ["-"] * (len(SEVERITIES) + 1)
    else:
        counts = outcome.result.counts
        cells = [str(counts.get(key)) for key in SEVERITIES] + [str(counts.total)]
    return f"| {escape(outcome.ref)} | {verdict} | {' | '.join(cells)} |"


def _image_section(report: RunReport, outcome: ImageOutcome) -> Iterator[str]:
    yield f"### {_ICON[outcome.verdict]} {escape(outcome.ref)}: {outcome.verdict}"
    yield ""
    named = (("image", outcome.image_id), ("scan result", outcome.scan_result_id))
    ids = [f"{label} {escape(value)}" for label, value in named if value]
    if ids:
        yield "Scanned: " + ", ".join(ids) + "."
        yield ""
    if outcome.error is not None:
        error = outcome.error
        yield f"**Could not be checked** (exit {error.exit_code}, {error.kind}): {escape(error.message)}"
        yield ""
    rows = limit_rows(report.policy, outcome)
    if rows:
        yield "| limit | count | status |"
        yield "| --- | --- | --- |"
        for row in rows:
            status = "❌ exceeded" if row.violated else "✅ ok"
            yield f"| {row.key} <= {row.limit} | {row.count} | {status} |"
        yield ""
    yield from _capped([f"- ⚠️ {escape(w)}" for w in outcome.warnings], MAX_WARNINGS, "warnings")
    if outcome.warnings:
        yield ""
    findings = sorted_findings(outcome.findings or ())
    violated = violated_severities(outcome)
    top = [j for j in findings if j.decision == "counted" and j.finding.severity in violated]
    if top:
        yield f"**Top findings of the violated severities** ({len(top)}):"
        yield ""
        yield "| CVE | severity | package | installed | fixed in |"
        yield "| --- | --- | --- | --- | --- |"
        yield from _capped([_finding_row(j) for j in top], TOP_FINDINGS, "findings")
        yield ""
    ignored = [j for j in findings if j.decision == "ignored"]
    if ignored:
        yield f"**Ignored by the policy** ({len(ignored)}):"
        yield ""
        yield "| CVE | severity | package | rule |"
        yield "| --- | --- | --- | --- |"
        rows_ignored = [
            f"| {_cve(j)} | {j.finding.severity} | {escape(j.finding.package)} | {escape(j.rule or '')} |"
            for j in ignored
        ]
        yield from _capped(rows_ignored, MAX_IGNORED, "ignored findings")
        yield ""


def _finding_row(judged: JudgedFinding) -> str:
    finding = judged.finding
    fixed = escape(finding.fixed_by) if finding.fixed_by else "no fix"
    return f"| {_cve(judged)} | {finding.severity} | {escape(finding.package)} | {escape(finding.version)} | {fixed} |"


def _cve(judged: JudgedFinding) -> str:
    cve = escape(clip(judged.finding.cve, 100))
    link = judged.finding.link
    if is_web_link(link):
        return f"[{cve}]({link.replace('(', '%28').replace(')', '%29').replace('<', '%3C').replace('>', '%3E')})"
    return cve


def _capped(lines: list[str], cap: int, what: str) -> Iterator[str]:
    yield from lines[:cap]
    if len(lines) > cap:
        yield f"\n... and {len(lines) - cap} more {what}"
