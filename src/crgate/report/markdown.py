"""A Markdown summary for ``$GITHUB_STEP_SUMMARY`` and merge-request comments.

Verdict first, then warnings, a summary table, and per image: its limits, the top findings of the
severities it violates, and the findings the policy ignored. Always under 1 MiB (GitHub's step-summary
limit): every field is clipped before it is escaped (so no line is ever cut inside a table row, a code
span or a link), every list is capped, and the whole text stops with a "... and N more" line when it
would grow past ``MAX_BYTES``. Text from outside crgate passes through ``_t``, this module's one exit
for untrusted text: escaped, so a package name can never inject a link, HTML or table cells.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import TextIO

from crgate.model import SEVERITIES, FindingDecision, ImageOutcome, JudgedFinding, RunReport, Verdict
from crgate.report.common import (
    Context,
    clip,
    is_web_link,
    kev_findings,
    kev_note,
    limit_name,
    limit_rows,
    vex_note,
    violated_severities,
)
from crgate.report.provenance import EMULATED_NOTE, facts, is_emulated, provenance_of
from crgate.report.text import describe_limits
from crgate.textsafe import safe

MAX_BYTES = 1_000_000  # below GitHub's 1 MiB step-summary limit, with room for the closing line
MAX_LINE = 2_000
MAX_FIELD = 200  # characters of one untrusted value in a table cell
MAX_REF = 500  # characters of an image reference or a policy path
MAX_MESSAGE = 1_500  # characters of a warning or error message
TOP_FINDINGS = 20
MAX_IGNORED = 20
MAX_WARNINGS = 50
ICON = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.ERROR: "⚠️"}  # every Verdict (a test checks)
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_PLAIN = re.compile(r"[A-Za-z0-9.:/+-]*")  # text Markdown shows as it is (CVE ids, versions, most names)


def write(context: Context, out: TextIO) -> None:
    lines: list[str] = []
    closing = [clip(line, MAX_LINE) for line in footer(context.report)]  # the provenance is never cut
    size = sum(len(line.encode("utf-8")) + 1 for line in closing)
    produced = _lines(context)
    for line in produced:
        line = clip(line, MAX_LINE)  # a safety net: fields are clipped before escaping, so lines fit
        cost = len(line.encode("utf-8")) + 1
        if size + cost > MAX_BYTES:
            rest = 1 + sum(1 for _ in produced)
            closing.append(f"\n... and {rest} more lines (cut to stay under 1 MiB; the JSON report has everything)")
            break
        lines.append(line)
        size += cost
    out.write("\n".join(lines + closing) + "\n")


def escape(text: str) -> str:
    """Plain text safe inside Markdown and a table cell: no HTML, links, emphasis or cell breaks."""
    if _PLAIN.fullmatch(text):
        return text
    text = " ".join(text.split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def _t(value: object, limit: int = MAX_FIELD) -> str:
    """Untrusted text as Markdown: made inert and clipped to ``limit`` characters, then escaped."""
    return escape(safe(str(value), limit))


def link_target(link: str) -> str:
    """A web link as a Markdown link target (no character that could end or break the link)."""
    return link.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def cve_cell(judged: JudgedFinding) -> str:
    """The CVE id, linked to its advisory when the scanner gave a web link."""
    cve = _t(judged.finding.cve, 100)
    link = judged.finding.link
    return f"[{cve}]({link_target(link)})" if is_web_link(link) else cve


def finding_row(judged: JudgedFinding) -> str:
    finding = judged.finding
    fixed = _t(finding.fixed_by) if finding.fixed_by else "no fix"
    return f"| {cve_cell(judged)} | {finding.severity} | {_t(finding.package)} | {_t(finding.version)} | {fixed} |"


def summary_row(outcome: ImageOutcome) -> str:
    verdict = f"{ICON[outcome.verdict]} {outcome.verdict}"
    if outcome.result is None:
        cells = ["-"] * (len(SEVERITIES) + 1)
    else:
        counts = outcome.result.counts
        cells = [str(counts.get(key)) for key in SEVERITIES] + [str(counts.total)]
    return f"| {_t(outcome.ref, MAX_REF)} | {verdict} | {' | '.join(cells)} |"


def summary_header() -> list[str]:
    return [f"| image | verdict | {' | '.join(SEVERITIES)} | total |", "|" + " --- |" * (len(SEVERITIES) + 3)]


def heading(report: RunReport) -> list[str]:
    n = len(report.images)
    emulated = is_emulated(report)
    loosenings = provenance_of(report).loosenings
    return [
        f"## crgate: {ICON.get(report.verdict, '')} {report.verdict.upper()} (exit {report.exit_code})"
        + (" · EMULATED" if emulated else ""),
        "",
        *([f"**{EMULATED_NOTE}.**", ""] if emulated else []),
        *(
            [
                f"**Loosened** ({len(loosenings)}): "
                + "; ".join(_t(item.describe(), MAX_MESSAGE) for item in loosenings[:MAX_WARNINGS])
                + ".",
                "",
            ]
            if loosenings
            else []
        ),
        f"Policy {_t(report.policy.source, MAX_REF)} ({escape(describe_limits(report.policy))}); "
        f"{n} image{'s' if n != 1 else ''}; crgate {_t(report.tool_version)}.",
        "",
        *(
            ["Report-only run (`--report-only`): crgate exited 0 for the policy violations; errors still fail.", ""]
            if report.report_only
            else []
        ),
    ]


def footer(report: RunReport) -> list[str]:
    """The provenance (``crgate.report.provenance.facts``) as a collapsed list at the end."""
    rows = [f"- {label}: {_t(value, MAX_MESSAGE)}" for label, value in facts(report)]
    return ["", "<details><summary>Provenance</summary>", "", *rows, "", "</details>"]


def _lines(context: Context) -> Iterator[str]:
    report = context.report
    yield from heading(report)
    if report.warnings:
        yield "**Warnings**"
        yield ""
        yield from _capped([f"- {_t(w, MAX_MESSAGE)}" for w in report.warnings[:MAX_WARNINGS]], len(report.warnings))
        yield ""
    if report.images:
        yield from summary_header()
        for outcome in report.images:
            yield summary_row(outcome)
        yield ""
    for outcome in report.images:
        yield from _image_section(context, outcome)


def _image_section(context: Context, outcome: ImageOutcome) -> Iterator[str]:
    yield f"### {ICON[outcome.verdict]} {_t(outcome.ref, MAX_REF)}: {outcome.verdict}"
    yield ""
    named = (("image", outcome.image_id), ("scan result", outcome.scan_result_id))
    ids = [f"{label} {_t(value)}" for label, value in named if value]
    if ids:
        yield "Scanned: " + ", ".join(ids) + "."
        yield ""
    if outcome.error is not None:
        error = outcome.error
        yield f"**Could not be checked** (exit {error.exit_code}, {error.kind}): {_t(error.message, MAX_MESSAGE)}"
        yield ""
    if outcome.policy_rule is not None:
        yield f"Judged by policy rule {_t(context.report.policy.images[outcome.policy_rule].label, MAX_MESSAGE)}."
        yield ""
    rows = limit_rows(context.report.policy_of(outcome), outcome)
    if rows:
        yield "| limit | count | status |"
        yield "| --- | --- | --- |"
        for row in rows:
            status = "❌ exceeded" if row.violated else "✅ ok"
            yield f"| {limit_name(row.key)} <= {row.limit} | {row.count} | {status} |"
        yield ""
    warnings = outcome.warnings
    yield from _capped([f"- ⚠️ {_t(w, MAX_MESSAGE)}" for w in warnings[:MAX_WARNINGS]], len(warnings), "warnings")
    if warnings:
        yield ""
    groups = context.grouped(outcome)
    violated = violated_severities(outcome)
    # The counted findings of the violated severities, most severe first: whole groups, in severity order.
    top = [groups.counted_by_severity[severity] for severity in SEVERITIES if severity in violated]
    count = sum(map(len, top))
    if count:
        yield f"**Top findings of the violated severities** ({count}):"
        yield ""
        yield "| CVE | severity | package | installed | fixed in |"
        yield "| --- | --- | --- | --- | --- |"
        yield from _capped([finding_row(j) for j in islice(chain.from_iterable(top), TOP_FINDINGS)], count, "findings")
        yield ""
    kev = kev_findings(context.sorted_findings(outcome))
    if kev:
        yield f"**Known exploited (KEV)** ({len(kev)}, counted against the KEV limit):"
        yield ""
        yield "| CVE | severity | package | KEV entry |"
        yield "| --- | --- | --- | --- |"
        rows_kev = [
            f"| {cve_cell(j)} | {j.finding.severity} | {_t(j.finding.package)} | {_t(kev_note(j.kev), MAX_MESSAGE)} |"
            for j in islice(kev, MAX_IGNORED)
            if j.kev is not None
        ]
        yield from _capped(rows_kev, len(kev), "known exploited findings")
        yield ""
    by_vex = groups.by_decision[FindingDecision.VEX]
    if by_vex:
        yield f"**Not affected or fixed per VEX** ({len(by_vex)}):"
        yield ""
        yield "| CVE | severity | package | VEX statement |"
        yield "| --- | --- | --- | --- |"
        rows_vex = [
            f"| {cve_cell(j)} | {j.finding.severity} | {_t(j.finding.package)} | {_t(vex_note(j.vex), MAX_MESSAGE)} |"
            for j in islice(by_vex, MAX_IGNORED)
            if j.vex is not None
        ]
        yield from _capped(rows_vex, len(by_vex), "findings taken out by VEX")
        yield ""
    ignored = groups.by_decision[FindingDecision.IGNORED]
    if ignored:
        yield f"**Ignored by the policy** ({len(ignored)}):"
        yield ""
        yield "| CVE | severity | package | rule |"
        yield "| --- | --- | --- | --- |"
        rows_ignored = [
            f"| {cve_cell(j)} | {j.finding.severity} | {_t(j.finding.package)} | {_t(j.rule or '', MAX_MESSAGE)} |"
            for j in islice(ignored, MAX_IGNORED)
        ]
        yield from _capped(rows_ignored, len(ignored), "ignored findings")
        yield ""


def _capped(shown: Sequence[str], total: int, what: str = "warnings") -> Iterator[str]:
    """The ``shown`` lines (the first of ``total``), then how many more there are."""
    yield from shown
    if total > len(shown):
        yield f"\n... and {total - len(shown)} more {what}"
