"""JUnit XML for test-report widgets (GitLab ``artifacts: reports: junit``, Jenkins, ``junitparser``).

One ``<testsuite>`` per image with one ``<testcase>`` per policy limit: a ``<failure>`` when the limit is
exceeded (the findings that count are listed in its body), an ``<error>`` on every limit when the image
could not be checked. A final ``crgate`` suite holds the run's verdict as one test case and the run's
warnings as ``<system-out>``, so a run that fails for a reason outside any image is never green.

Every value that comes from outside crgate passes through ``_t`` (one value) or ``_lines`` (a body of
lines, joined by real line breaks so GitLab's test report and Jenkins show one finding per line): this
module's exits for untrusted text (XML-safe and clipped).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TextIO

from crgate.model import SEVERITIES, THRESHOLD_KEYS, FindingDecision, ImageOutcome, JudgedFinding, RunReport
from crgate.report.common import (
    KEV_KEY,
    KEV_ROW,
    Context,
    describe_finding,
    kev_findings,
    kev_note,
    limit_name,
    limit_rows,
    vex_note,
)
from crgate.report.provenance import EMULATED, EMULATED_NOTE, is_emulated
from crgate.report.provenance import properties as provenance_properties
from crgate.textsafe import safe

MAX_LISTED = 50  # findings listed in one failure's body
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write(context: Context, out: TextIO) -> None:
    report = context.report
    root = ET.Element("testsuites", name="crgate")
    for outcome in report.images:
        root.append(_image_suite(context, outcome))
    root.append(_run_suite(report))
    tests = failures = errors = 0
    for suite in root:
        tests += int(suite.get("tests", "0"))
        failures += int(suite.get("failures", "0"))
        errors += int(suite.get("errors", "0"))
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


def _t(value: str, limit: int = 20_000) -> str:
    """Untrusted text made inert (CI test widgets show it) and safe for XML 1.0, clipped."""
    return _NOT_XML.sub("\ufffd", safe(value, limit))


def _lines(lines: list[str], limit: int = 20_000) -> str:
    """Lines crgate composed (each may hold untrusted text), each made inert like ``_t`` and joined by real
    line breaks; at most ``limit`` characters, cut between lines."""
    kept: list[str] = []
    size = 0
    for line in lines:
        line = safe(line, 2000)
        if size + len(line) + 1 > limit:
            kept.append(f"... and {len(lines) - len(kept)} more lines")
            break
        kept.append(line)
        size += len(line) + 1
    return _NOT_XML.sub("\ufffd", "\n".join(kept))


def _image_suite(context: Context, outcome: ImageOutcome) -> ET.Element:
    report = context.report
    suite = ET.Element("testsuite", name=_t(outcome.ref, 1000), time=f"{outcome.elapsed:.3f}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("image_id", outcome.image_id),
        ("scan_result_id", outcome.scan_result_id),
        ("verdict", outcome.verdict),
        ("policy", report.policy.source),
        ("policy_rule", None if outcome.policy_rule is None else report.policy.images[outcome.policy_rule].label),
    ):
        if value:
            ET.SubElement(properties, "property", name=name, value=_t(value, 1000))
    policy = report.policy_of(outcome)
    rows = {row.key: row for row in limit_rows(policy, outcome)}
    limits = [key for key in THRESHOLD_KEYS if key in policy.thresholds]
    names = [f"{key} <= {policy.thresholds[key]}" for key in limits]
    if policy.kev is not None:
        limits.append(KEV_KEY)
        names.append(f"{KEV_ROW} <= {policy.kev.max}")
    names = names or ["policy (no limits)"]
    failures = errors = 0
    counted: Mapping[str, list[JudgedFinding]] | None = None
    for position, name in enumerate(names):
        case = ET.SubElement(suite, "testcase", classname=_t(outcome.ref, 1000), name=name)
        row = rows.get(limits[position]) if limits else None
        if outcome.error is not None or outcome.result is None:
            message = outcome.error.message if outcome.error else "no scan result"
            kind = outcome.error.kind if outcome.error else "scan"
            error = ET.SubElement(case, "error", message=_t(message, 2000), type=kind)
            error.text = _t(message)
            errors += 1
        elif row is not None and row.violated:
            failure = ET.SubElement(
                case, "failure", message=f"{limit_name(row.key)}: {row.count} > {row.limit}", type="policy_violation"
            )
            if row.key == KEV_KEY:
                failure.text = _kev_body(context, outcome)
            else:
                if counted is None:
                    counted = _counted(context, outcome)
                failure.text = _failure_body(outcome, row.key, counted)
            failures += 1
    notes = _image_notes(context, outcome)
    if notes:
        ET.SubElement(suite, "system-out").text = _lines(notes)
    suite.set("tests", str(len(names)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    return suite


def _failure_body(outcome: ImageOutcome, key: str, counted: Mapping[str, list[JudgedFinding]]) -> str:
    if outcome.findings is None:
        return "findings were not fetched; see the JSON report"
    # Each severity's list is in the sorted order, so joining them in severity order is the sorted order.
    listed = [j for severity in (SEVERITIES if key == "total" else (key,)) for j in counted.get(severity, ())]
    lines = [f"{j.finding.cve} {j.finding.severity} {describe_finding(j.finding)}" for j in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        lines.append(f"... and {len(listed) - MAX_LISTED} more")
    return _lines(lines)


def _kev_body(context: Context, outcome: ImageOutcome) -> str:
    listed = kev_findings(context.sorted_findings(outcome))
    lines = [
        f"{j.finding.cve} {j.finding.severity} {describe_finding(j.finding)}: {kev_note(j.kev)}"
        for j in listed[:MAX_LISTED]
        if j.kev is not None
    ]
    if len(listed) > MAX_LISTED:
        lines.append(f"... and {len(listed) - MAX_LISTED} more")
    return _lines(lines)


def _counted(context: Context, outcome: ImageOutcome) -> Mapping[str, list[JudgedFinding]]:
    """The image's counted findings by severity, each most severe first (shared by every limit and format)."""
    return context.grouped(outcome).counted_by_severity


def _image_notes(context: Context, outcome: ImageOutcome) -> list[str]:
    lines = [f"warning: {warning}" for warning in outcome.warnings]
    ignored = context.grouped(outcome).by_decision[FindingDecision.IGNORED]
    lines.extend(f"ignored: {j.finding.cve} {describe_finding(j.finding)} by {j.rule}" for j in ignored[:MAX_LISTED])
    if len(ignored) > MAX_LISTED:
        lines.append(f"... and {len(ignored) - MAX_LISTED} more ignored")
    by_vex = context.grouped(outcome).by_decision[FindingDecision.VEX]
    lines.extend(
        f"vex: {j.finding.cve} {describe_finding(j.finding)}: {vex_note(j.vex) if j.vex else 'VEX'}"
        for j in by_vex[:MAX_LISTED]
    )
    if len(by_vex) > MAX_LISTED:
        lines.append(f"... and {len(by_vex) - MAX_LISTED} more taken out by VEX")
    return lines


def _run_suite(report: RunReport) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        name="crgate",
        tests="1",
        failures="1" if report.exit_code == 1 else "0",
        errors="1" if report.exit_code not in (0, 1) else "0",
        skipped="0",
        time=f"{(report.finished_at - report.started_at).total_seconds():.3f}",
        timestamp=report.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    _provenance(suite, report)
    case = ET.SubElement(suite, "testcase", classname="crgate", name="verdict")
    message = f"verdict {report.verdict} (exit {report.exit_code}), policy {report.policy.source}"
    if is_emulated(report):
        message = f"{EMULATED} {message}"
    if report.report_only:
        message += "; report-only run: crgate exited 0 for policy violations"
    if report.exit_code == 1:
        ET.SubElement(case, "failure", message=_t(message, 2000), type="policy_violation")
    elif report.exit_code != 0:
        ET.SubElement(case, "error", message=_t(message, 2000), type="error")
    notes = [EMULATED_NOTE] if is_emulated(report) else []
    notes += [f"warning: {w}" for w in report.warnings]
    if notes:
        ET.SubElement(suite, "system-out").text = _lines(notes)
    return suite


def _provenance(suite: ET.Element, report: RunReport) -> None:
    """The run's provenance as the suite's ``<properties>`` (``crgate.provenance.*``; booleans as
    ``true``/``false``, an absent value as an empty string)."""
    properties = ET.SubElement(suite, "properties")
    for name, value in provenance_properties(report):
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        ET.SubElement(properties, "property", name=name, value=_t(text, 2000))
