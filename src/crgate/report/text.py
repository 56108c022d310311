"""The human report: a table per image, the findings behind each violation, and a one-line verdict.

Every value that comes from outside crgate (image references, ids, CVE ids, package names, versions,
rule labels, server messages, warnings) is printed through ``_t``, this module's one exit for
untrusted text.
"""

from __future__ import annotations

import heapq
from operator import attrgetter
from typing import TextIO

from crgate.image_rules import unscannable_mode
from crgate.model import THRESHOLD_KEYS, FindingDecision, ImageOutcome, JudgedFinding, Origin, Policy, RunReport
from crgate.report.common import KEV_KEY, KEV_ROW, SEVERITY_RANK, Context, kev_note, vex_note, violation_text
from crgate.report.provenance import EMULATED, is_emulated, provenance_of
from crgate.textsafe import safe

MAX_LISTED_FINDINGS = 10
MAX_LISTED_IGNORED = 5
_CVE_AND_PACKAGE = attrgetter("finding.cve", "finding.package")
_NOT_COUNTED = (FindingDecision.NOT_FIXABLE, FindingDecision.IN_BASELINE)  # "ignored" has its own list


def _t(value: object) -> str:
    """Untrusted text (references, finding fields, server messages) made inert for a terminal or CI log."""
    return safe(str(value))


def describe_limits(policy: Policy) -> str:
    """``critical <= 0, high <= 0 (fixable only)`` (the limits that are set, in severity order)."""
    limits = []
    for key in THRESHOLD_KEYS:
        if key in policy.thresholds:
            fixable = " (fixable only)" if policy.counts_fixable_only(key) else ""
            limits.append(f"{key} <= {policy.thresholds[key]}{fixable}")
    if policy.kev is not None:
        limits.append(f"{KEV_ROW} <= {policy.kev.max}")
    return ", ".join(limits) or "no limits"


def write(context: Context, out: TextIO) -> None:
    report = context.report
    lines = [
        f"crgate {report.tool_version} · policy: {_t(report.policy.source)} ({describe_limits(report.policy)})",
        "",
    ]
    for outcome in report.images:
        lines.extend(_image_block(outcome, report.policy_of(outcome), report.policy))
        lines.append("")
    lines.extend(f"warning: {_t(warning)}" for warning in report.warnings)
    lines.extend(f"loosened: {_t(loosening.describe())}" for loosening in provenance_of(report).loosenings)
    verdict = _verdict_line(report)
    if is_emulated(report):  # on the verdict's own line: an emulated pass never reads as a real one
        first, newline, rest = verdict.partition("\n")
        verdict = f"{first} [{EMULATED}: crgate's built-in emulator, not Yandex Cloud]{newline}{rest}"
    lines.append(verdict)
    out.write("\n".join(line.rstrip() for line in lines) + "\n")


def _image_block(outcome: ImageOutcome, policy: Policy, top: Policy) -> list[str]:
    head = f"{_t(outcome.ref)}  {outcome.verdict.upper()}"
    ids = []
    if outcome.image_id:
        ids.append(f"image {_t(outcome.image_id)}")
    if outcome.scan_result_id:
        ids.append(f"scan result {_t(outcome.scan_result_id)}")
    if outcome.result is not None and outcome.result.scanned_at is not None:
        ids.append(f"scanned {outcome.result.scanned_at.strftime('%Y-%m-%d %H:%M:%SZ')}")
    if outcome.result is not None and outcome.origin != Origin.SCANNED:
        ids.append(outcome.origin)
    if outcome.source is not None:
        ids.append(f"digest {_t(outcome.source.digest)}")
        if outcome.source.index_digest:
            ids.append(f"index {_t(outcome.source.index_digest)}")
    lines = [head]
    if ids:
        lines.append("  " + ", ".join(ids))
    if outcome.policy_rule is not None:
        rule = top.images[outcome.policy_rule]
        lines.append(f"  judged by policy rule {_t(rule.label)}: {describe_limits(policy)}")
    elif top.images:
        lines.append("  judged by the top-level limits (no images: rule matches)")
    lines.extend(f"  note: {_t(warning)}" for warning in outcome.warnings)
    if outcome.error is not None:
        lines.append(f"  error (exit {outcome.error.exit_code}): {_t(outcome.error.message)}")
        return lines
    if outcome.result is None:
        return lines
    exceeded = {violation.severity for violation in outcome.violations}
    # The "found" column only when the policy set some findings aside (otherwise it repeats the count).
    judged = outcome.findings is not None and any(j.decision != FindingDecision.COUNTED for j in outcome.findings)
    counted = outcome.counted or {key: outcome.result.counts.get(key) for key in THRESHOLD_KEYS}
    header = f"  {'severity':<11}{'count':>7}{'limit':>7}  status"
    lines.append(header + ("    (found)" if judged else ""))
    for key in THRESHOLD_KEYS:
        limit = policy.thresholds.get(key)
        status = "FAIL" if key in exceeded else "ok"
        limit_text = "-" if limit is None else str(limit)
        count = counted[key]
        found = f"    ({outcome.result.counts.get(key)})" if judged else ""
        lines.append(f"  {key:<11}{count:>7}{limit_text:>7}  {status:<6}{found}")
    if policy.kev is not None:
        status = "FAIL" if KEV_KEY in exceeded else "ok"
        lines.append(f"  {'kev':<11}{counted.get(KEV_KEY, 0):>7}{policy.kev.max:>7}  {status:<6}    ({KEV_ROW})")
    if outcome.findings:
        lines.extend(_findings_section(outcome.findings, exceeded))
    return lines


def _findings_section(findings: tuple[JudgedFinding, ...], exceeded: set[str]) -> list[str]:
    lines: list[str] = []
    # One pass, in the scanner's order: the counted findings by severity, the ignored ones, the others' count.
    counted: dict[str, list[JudgedFinding]] = {}
    ignored: list[JudgedFinding] = []
    by_vex: list[JudgedFinding] = []
    kev: list[JudgedFinding] = []
    others = dict.fromkeys(_NOT_COUNTED, 0)
    for judged in findings:
        decision = judged.decision
        if judged.kev is not None and decision not in (FindingDecision.IGNORED, FindingDecision.VEX):
            kev.append(judged)
        if decision == FindingDecision.COUNTED:
            counted.setdefault(judged.finding.severity, []).append(judged)
        elif decision == FindingDecision.IGNORED:
            ignored.append(judged)
        elif decision == FindingDecision.VEX:
            by_vex.append(judged)
        elif decision in others:
            others[decision] += 1
    violating = [group for severity, group in counted.items() if severity in exceeded or "total" in exceeded]
    count = sum(map(len, violating))
    if count:
        lines.append("  findings behind the violations:")
        # The first few in (severity, CVE, package) order, without sorting all of them: the first of each
        # severity's own (heapq.nsmallest keeps the scanner's order among equals, as a stable sort would).
        violating.sort(key=lambda group: SEVERITY_RANK[group[0].finding.severity])
        listed: list[JudgedFinding] = []
        for group in violating:
            listed += heapq.nsmallest(MAX_LISTED_FINDINGS - len(listed), group, key=_CVE_AND_PACKAGE)
            if len(listed) == MAX_LISTED_FINDINGS:
                break
        for judged in listed:
            f = judged.finding
            fix = f"-> {_t(f.fixed_by)}" if f.fixed_by else "(no fix yet)"
            lines.append(f"    {f.severity:<10} {_t(f.cve):<20} {_t(f.package)} {_t(f.version)} {fix}")
        if count > MAX_LISTED_FINDINGS:
            lines.append(f"    ... and {count - MAX_LISTED_FINDINGS} more (see --format json)")
    if kev:
        lines.append(f"  known exploited (KEV) ({len(kev)}, counted against the KEV limit):")
        for judged in sorted(kev, key=_CVE_AND_PACKAGE)[:MAX_LISTED_FINDINGS]:
            f = judged.finding
            assert judged.kev is not None
            lines.append(
                f"    {f.severity:<10} {_t(f.cve):<20} {_t(f.package)} {_t(f.version)}: {kev_note(judged.kev)}"
            )
        if len(kev) > MAX_LISTED_FINDINGS:
            lines.append(f"    ... and {len(kev) - MAX_LISTED_FINDINGS} more (see --format json)")
    if by_vex:
        lines.append(f"  not affected or fixed per VEX ({len(by_vex)}):")
        for judged in by_vex[:MAX_LISTED_IGNORED]:
            note = vex_note(judged.vex) if judged.vex is not None else "VEX"
            lines.append(f"    {_t(judged.finding.cve)} in {_t(judged.finding.package)}: {_t(note)}")
        if len(by_vex) > MAX_LISTED_IGNORED:
            lines.append(f"    ... and {len(by_vex) - MAX_LISTED_IGNORED} more")
    if ignored:
        lines.append(f"  ignored ({len(ignored)}):")
        for judged in ignored[:MAX_LISTED_IGNORED]:
            lines.append(f"    {_t(judged.finding.cve)} in {_t(judged.finding.package)}: rule {_t(judged.rule)}")
        if len(ignored) > MAX_LISTED_IGNORED:
            lines.append(f"    ... and {len(ignored) - MAX_LISTED_IGNORED} more")
    parts = [f"{count} {decision.replace('_', ' ')}" for decision, count in others.items() if count]
    if parts:
        lines.append(f"  not counted: {', '.join(parts)}")
    return lines


def _verdict_line(report: RunReport) -> str:
    images = report.images
    n = len(images)
    plural = "image" if n == 1 else "images"
    errors = [o for o in images if o.error is not None]
    failed = [o for o in images if o.error is None and o.violations]
    if report.exit_code == 0:
        skipped = f"; {len(report.unscannable)} not scannable" if report.unscannable else ""
        return f"PASS: {n} {plural} within policy {_t(report.policy.source)}{skipped} (exit 0)"
    parts = []
    if failed:
        detail = "; ".join(f"{_t(o.ref)}: " + ", ".join(violation_text(v) for v in o.violations) for o in failed)
        verb = "violates" if len(failed) == 1 else "violate"  # "1 of 2 images violates", "2 of 3 violate"
        parts.append(f"{len(failed)} of {n} {plural} {verb} the policy ({detail})")
    if errors:
        parts.append(f"{len(errors)} of {n} {plural} could not be checked")
    if report.stale_ignores and report.policy.fail_on_stale_ignores:
        parts.append(f"{len(report.stale_ignores)} stale ignore rule(s) (fail_on_stale_ignores)")
    failing = [image for image in report.unscannable if unscannable_mode(report.policy, image) == "fail"]
    if failing:
        parts.append(f"{len(failing)} image(s) outside Yandex Container Registry (unscannable: fail)")
    label = "FAIL" if report.exit_code == 1 else "ERROR"
    line = f"{label}: {'; '.join(parts) or 'no verdict'} (exit {report.exit_code})"
    if report.report_only and report.exit_code == 1:
        line += "\nreport-only run (--report-only): crgate exits 0 for policy violations; errors still fail"
    return line
