"""A pull/merge-request comment: the run in Markdown, bounded in size (``--output comment=PATH``).

GitHub refuses comments over 65,536 characters; GitLab's note limit is 1,000,000. The comment stays
under ``MAX_BYTES`` UTF-8 bytes (a byte count is never below the character count, whichever way a
service counts), safe for both. It holds, in this order: the verdict, the policy, warnings, a table of
images, why each failing image failed, and the findings that count against the policy, most severe
first across all images. Text is only ever cut between whole lines: every untrusted value is clipped
before it is escaped, a table row is added whole or not at all, and when something does not fit the
comment ends with a "... and N more" line after a blank line (so it is never read as a table row).

Untrusted text passes through ``_t`` (and, in the rows shared with the summary, through
``crgate.report.markdown._t``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import TextIO

from crgate.model import FindingDecision, ImageOutcome, JudgedFinding
from crgate.report import markdown
from crgate.report.common import Context, finding_order, violation_text
from crgate.textsafe import safe

MAX_BYTES = 60_000
"""Upper bound of the comment in UTF-8 bytes; pass ``limit`` to ``comment_text`` for another one."""
MAX_WARNINGS = 10
_RESERVE = 400  # bytes kept free for the closing "... and N more" line
_NOT_COUNTED = (  # every decision but "counted", in the order the closing line names them (a test checks)
    (FindingDecision.IGNORED, "ignored by the policy"),
    (FindingDecision.VEX, "not affected or fixed per VEX"),
    (FindingDecision.IN_BASELINE, "in the baseline"),
    (FindingDecision.NOT_FIXABLE, "not fixable"),
)


def _t(value: object, limit: int = markdown.MAX_FIELD) -> str:
    """Untrusted text as Markdown: made inert and clipped to ``limit`` characters, then escaped."""
    return markdown.escape(safe(str(value), limit))


def write(context: Context, out: TextIO) -> None:
    out.write(comment_text(context))


def comment_text(context: Context, limit: int = MAX_BYTES) -> str:
    """The comment, at most ``limit`` UTF-8 bytes (at least 2,000: room for the heading and the closing line)."""
    if limit < 2_000:
        raise ValueError(f"a comment bound of {limit} bytes leaves no room for the verdict")
    report = context.report
    text = _Bounded(limit, markdown.footer(report))  # the provenance footer is kept whatever else is cut
    for line in markdown.heading(report):
        text.add(line)
    if report.warnings:
        shown = report.warnings[:MAX_WARNINGS]
        text.block(["**Warnings**", ""], [f"- {_t(w, markdown.MAX_MESSAGE)}" for w in shown], len(shown), "warnings")
        if len(report.warnings) > len(shown):
            text.add(f"- ... and {len(report.warnings) - len(shown)} more warnings (see the JSON report)")
        text.add("")
    if report.images:
        rows = (markdown.summary_row(outcome) for outcome in report.images)
        text.block(markdown.summary_header(), rows, len(report.images), "images")
        text.add("")
    reasons = [line for outcome in report.images for line in _reasons(outcome)]
    if reasons:
        text.block(["**Why**", ""], reasons, len(reasons), "reasons")
        text.add("")
    counted = [context.grouped(o).by_decision[FindingDecision.COUNTED] for o in report.images]
    total = sum(len(findings) for findings in counted)
    if total:
        several = len(report.images) > 1
        header = ["**Findings that count against the policy**, most severe first:", ""]
        header += _findings_header(several)
        rows = (_finding_row(report.images[index], judged, several) for index, judged in _most_severe_first(counted))
        text.block(header, rows, total, "findings")
        text.add("")
    not_counted = _not_counted(context)
    if not_counted:
        text.add(f"Not counted: {not_counted}.")
    return text.finish()


def _reasons(outcome: ImageOutcome) -> Iterator[str]:
    if outcome.error is not None:
        error = outcome.error
        yield (
            f"- {_t(outcome.ref, markdown.MAX_REF)} could not be checked (exit {error.exit_code}, {error.kind}): "
            f"{_t(error.message, markdown.MAX_MESSAGE)}"
        )
    elif outcome.violations:
        exceeded = ", ".join(violation_text(v) for v in outcome.violations)
        yield f"- {_t(outcome.ref, markdown.MAX_REF)} violates the policy: {exceeded}"


def _findings_header(several: bool) -> list[str]:
    columns = ["CVE", "severity", "package", "installed", "fixed in"]
    if several:
        columns.insert(0, "image")
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def _finding_row(outcome: ImageOutcome, judged: JudgedFinding, several: bool) -> str:
    row = markdown.finding_row(judged)
    return f"| {_t(outcome.ref, markdown.MAX_REF)} {row}" if several else row


def _most_severe_first(per_image: list[list[JudgedFinding]]) -> Iterator[tuple[int, JudgedFinding]]:
    """Every image's findings merged most severe first (ties: the earlier image first), lazily."""
    keyed = [_keyed(index, findings) for index, findings in enumerate(per_image)]
    for (_, index), judged in heapq.merge(*keyed, key=lambda item: item[0]):
        yield index, judged


def _keyed(index: int, findings: list[JudgedFinding]) -> Iterator[tuple[tuple[object, int], JudgedFinding]]:
    return (((finding_order(j), index), j) for j in findings)


def _not_counted(context: Context) -> str:
    totals = {
        decision: sum(len(context.grouped(outcome).by_decision[decision]) for outcome in context.report.images)
        for decision, _ in _NOT_COUNTED
    }
    return ", ".join(f"{totals[decision]} {label}" for decision, label in _NOT_COUNTED if totals[decision])


class _Bounded:
    """Lines added whole while they fit; after the first that does not, only the closing line."""

    def __init__(self, limit: int, closing: list[str]):
        self._lines: list[str] = []
        self._size = 0
        self._limit = limit
        self._closing = closing
        """Lines that end the text whatever is cut (before the closing "... and N more" line)."""
        self._room = limit - _RESERVE - sum(len(line.encode("utf-8")) + 1 for line in closing)
        self._missing: tuple[int, str] | None = None

    def add(self, line: str) -> bool:
        if self._missing is not None:
            return False
        cost = len(line.encode("utf-8")) + 1
        if self._size + cost > self._room:
            self._missing = (0, "lines")
            return False
        self._lines.append(line)
        self._size += cost
        return True

    def block(self, header: list[str], rows: Iterable[str], total: int, what: str) -> None:
        """``header`` and as many of ``total`` ``rows`` as fit; nothing of it when not even one row fits."""
        if self._missing is not None:
            return
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return
        cost = sum(len(line.encode("utf-8")) + 1 for line in (*header, first))
        if self._size + cost > self._room:
            self._missing = (total, what)
            return
        for line in (*header, first):
            self.add(line)
        shown = 1
        for row in iterator:
            if not self.add(row):
                self._missing = (total - shown, what)
                return
            shown += 1

    def finish(self) -> str:
        lines = [*self._lines, *self._closing]
        if self._missing is not None:
            count, what = self._missing
            more = f"... and {count} more {what}" if count else "... and more lines"
            lines += ["", f"{more} (cut to stay under {self._limit:,} bytes; the JSON report has everything)"]
        return "\n".join(lines).rstrip("\n") + "\n"
