"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

One run; one rule per CVE (short and full description, help, ``security-severity``, ``security`` tag);
one result per finding per image, located at ``--sarif-location`` (default ``Dockerfile``, line 1).

Alerts: GitHub matches results across analyses by ``ruleId`` and ``partialFingerprints``; upload-sarif
fills in ``primaryLocationLineHash`` from the text of the located line, unless the result already has
one (it then keeps it and logs a warning when its own differs). Every result of crgate points at the
same line, so crgate sets ``primaryLocationLineHash`` itself: a hash of the image's repository (without
tag, digest or platform label), its platform, the CVE and the package (``common.alert_key``). One alert
per (repository, platform, package, vulnerability): the same across tags, reruns and digest references,
apart across platforms and packages. ``crgateFinding/v2`` carries the same value for other consumers.

Severity (``security-severity``, which GitHub maps >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, below
4.0 low): critical 9.5, high 8.0, medium 5.5, low 2.0, negligible 1.0, and undefined (the scanner's
"other": severity unknown) 5.5 with level ``warning``, so an unknown severity is neither hidden among low
findings nor dropped from GitHub's severity filters (``0.0`` would show no severity at all).

GitHub's upload limits (docs.github.com, "SARIF results exceed limit"): 10 MB per gzip-compressed file,
20 runs per file, 25,000 results and 25,000 rules per run (only the top 5,000 results are shown, by
severity), 1,000 locations per result and 20 tags per rule (10 shown). crgate writes one run, one
location per result, at most 5 tags per rule, and keeps the most severe ``MAX_RESULTS`` results; the
rest are counted in a tool notification. Text fields taken from the scanner are clipped, so 25,000
results stay far below 10 MB compressed.

Written as a stream in one pass over the findings: the results come first in the run object, each
naming its rule by index (rules numbered as they first appear, so the most severe come first), and the
rules follow, built from what the results gathered.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import quote

from crgate.errors import ConfigError
from crgate.model import SEVERITIES, FindingDecision, ImageOutcome, JudgedFinding, RunReport
from crgate.report import markdown
from crgate.report.common import (
    KEV_KEY,
    SEVERITY_RANK,
    Context,
    alert_key,
    clip,
    describe_finding,
    finding_order,
    image_identity,
    is_web_link,
    kev_note,
    unreachable,
    vex_note,
    violated_severities,
)
from crgate.report.jsonout import Splice, inert, string
from crgate.report.provenance import EMULATED_NOTE, is_emulated
from crgate.report.provenance import document as provenance_document
from crgate.textsafe import safe, visible

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/crgate/crgate"
MAX_RESULTS = 25_000
FINGERPRINT_KEY = "crgateFinding/v2"
LINE_HASH_KEY = "primaryLocationLineHash"
# GitHub maps security-severity to its levels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, < 4 low.
# An unknown severity ("undefined") counts as medium: never hidden as low, never shown as no severity.
SECURITY_SEVERITY = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "2.0",
    "negligible": "1.0",
    "undefined": "5.5",
}
_RULE_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "undefined": "warning"}
_FIELD = 200  # longest package / version / CVE text taken from the scanner into a message
_UNKNOWN_RANK = len(SEVERITIES)  # a severity outside SEVERITIES sorts last and names its rule "undefined"
_DECISION_NOTE = {  # every decision (a test checks); appended to the message of a finding not counted
    FindingDecision.COUNTED: "",
    FindingDecision.IGNORED: "; ignored by crgate policy rule {rule}",
    FindingDecision.NOT_FIXABLE: "; not counted: the policy limits only fixable findings",
    FindingDecision.IN_BASELINE: "; not counted: already in the baseline image",
    FindingDecision.VEX: "; not counted: {vex}",
}


def check_category(name: str) -> str:
    """A SARIF run category (``--sarif-category``): letters, digits and ``._-/``, at most 100, not ending
    in ``/``; ConfigError otherwise. GitHub keeps one set of code-scanning alerts per category."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}", name) or name.endswith("/"):
        raise ConfigError(
            f"--sarif-category: '{safe(name, 100)}' is not a category (letters, digits, '.', '_', '-', '/'; "
            "e.g. crgate-api)"
        )
    return name


def write(context: Context, out: TextIO) -> None:
    report = context.report
    per_image = [context.sorted_findings(outcome) for outcome in report.images]
    kept = _kept_counts(per_image)
    dropped = sum(len(findings) for findings in per_image) - sum(kept)
    selected = [findings[:count] for findings, count in zip(per_image, kept, strict=True)]

    # One pass: each result names its rule by index, rules numbered as they first appear (most severe
    # first); the rules follow the results in the file (JSON keys have no order), written from what
    # the results gathered. At most MAX_RESULTS results, so never more rules than that.
    rules: dict[str, list[Any]] = {}
    splice = Splice()
    results = splice.array(
        line
        for outcome, findings in zip(report.images, selected, strict=True)
        for line in _results(context, outcome, findings, rules)
    )
    rule_lines = splice.array(_rule_lines(rules))
    skeleton = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "results": results,
                "tool": {
                    "driver": {
                        "name": "crgate",
                        "version": report.tool_version,
                        "semanticVersion": report.tool_version,
                        "informationUri": INFORMATION_URI,
                        "rules": rule_lines,
                    }
                },
                "automationDetails": {"id": f"{context.sarif_category}/"},
                "invocations": [_invocation(report, dropped)],
                "properties": {
                    "verdict": report.verdict,
                    "exitCode": report.exit_code,
                    "reportOnly": report.report_only,
                    "policy": report.policy.source,
                    "images": [_image_properties(outcome) for outcome in report.images],
                    "emulated": is_emulated(report),
                    "provenance": provenance_document(report),
                },
            }
        ],
    }
    splice.write(out, skeleton, indent=None, ensure_ascii=False)


def _kept_counts(per_image: list[list[JudgedFinding]]) -> list[int]:
    """How many of each image's (sorted) findings are among the ``MAX_RESULTS`` most severe of the run.

    The most severe results of the run, restricted to one image, are a prefix of that image's sorted
    findings (ties go to the earlier image), so a lazy merge of the images' orders finds the cut.
    """
    if len(per_image) == 1 or sum(len(findings) for findings in per_image) <= MAX_RESULTS:
        return [min(len(findings), MAX_RESULTS) for findings in per_image]
    streams = [_ranked(index, findings) for index, findings in enumerate(per_image)]
    counts = Counter(index for _, (_, index) in zip(range(MAX_RESULTS), heapq.merge(*streams), strict=False))
    return [counts[index] for index in range(len(per_image))]


def _ranked(index: int, findings: list[JudgedFinding]) -> Iterator[tuple[tuple[int, int, str, str], int]]:
    return ((finding_order(judged), index) for judged in findings)


def _rule_id(judged: JudgedFinding) -> str:
    cve = judged.finding.cve
    return visible(cve if 0 < len(cve) <= _FIELD else clip(cve, _FIELD) or "UNKNOWN")


def _rule_lines(rules: dict[str, list[Any]]) -> Iterator[str]:
    """The rules the results gathered, as JSON lines (a generator: it starts once the results are out)."""
    for rule_id, (_, rank, packages, link) in rules.items():
        worst = SEVERITIES[rank] if rank < _UNKNOWN_RANK else "undefined"
        yield _rule(rule_id, worst, sorted(packages), link)


_HELP = (  # plain text without quotes or backslashes: it goes into JSON as it is
    "Update the affected packages to a fixed version and rebuild the image, or add an ignore rule with a "
    "reason and an expiry date to the crgate policy."
)


def _rule(rule_id: str, worst: str, packages: list[str], link: str) -> str:
    """The rule as one line of JSON (``reportingDescriptor``), built without a dict per rule.

    ``fullDescription`` says what and where; ``help`` what to do (GitHub shows both, so help does not
    repeat the description: with thousands of rules that halves the file).
    """
    package_text = ", ".join(packages[:20]) + (f" and {len(packages) - 20} more" if len(packages) > 20 else "")
    full = f"{rule_id} is a {worst} vulnerability reported by the Yandex Container Registry scanner in {package_text}."
    name = string(rule_id)
    level = f',"defaultConfiguration":{{"level":"{_RULE_LEVEL.get(worst, "note")}"}}'
    if link:  # a web link (printable, no space); its Markdown form can neither end nor break the link
        target = string(link)[1:-1]
        label = string(markdown.escape(rule_id))[1:-1]
        details = f"{_HELP}\\n\\nDetails: [{label}]({string(markdown.link_target(link))[1:-1]})"
        more = f',"help":{{"text":"{_HELP} Details: {target}","markdown":"{details}"}}{level}'
        help_uri = f',"helpUri":"{target}"'
    else:
        more = f',"help":{{"text":"{_HELP}","markdown":"{_HELP}"}}{level}'
        help_uri = ""
    return (
        f'{{"id":{name},"name":"ContainerImageVulnerability",'
        f'"shortDescription":{{"text":"{name[1:-1]} ({worst}) in a container image package"}},'
        f'"fullDescription":{{"text":{string(full)}}}{more},'
        f'"properties":{{"security-severity":"{SECURITY_SEVERITY.get(worst, SECURITY_SEVERITY["undefined"])}",'
        f'"tags":["security","vulnerability","container","{worst}"],"precision":"very-high"}}{help_uri}}}'
    )


def _results(
    context: Context, outcome: ImageOutcome, findings: list[JudgedFinding], rules: dict[str, list[Any]]
) -> Iterator[str]:
    """One JSON line per result; what is the same for every result of the image is encoded once.

    ``rules`` gathers, per rule id, [index, worst severity rank, packages, first web link].
    """
    ref = visible(outcome.ref)
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(context.location, safe="/")},
            "region": {"startLine": 1},
        },
        "message": {"text": f"image {ref}"},
    }
    locations = inert(json.dumps([location], ensure_ascii=False, separators=(",", ":")))
    image = inert(
        json.dumps(
            {"image": ref, "imageId": outcome.image_id, "scanResultId": outcome.scan_result_id},
            ensure_ascii=False,
            separators=(",", ":"),
        )
    )[1:-1]
    identity = image_identity(outcome)
    violated = violated_severities(outcome)
    kev_violated = any(violation.severity == KEV_KEY for violation in outcome.violations)
    for judged in findings:
        finding = judged.finding
        rule_id = _rule_id(judged)
        package, version, fixed = finding.package, finding.version, finding.fixed_by
        package = visible(package if len(package) <= _FIELD else clip(package, _FIELD))
        rank = SEVERITY_RANK.get(finding.severity, _UNKNOWN_RANK)
        rule = rules.get(rule_id)
        if rule is None:
            rule = rules[rule_id] = [len(rules), rank, {package}, finding.link if is_web_link(finding.link) else ""]
        else:
            rule[1] = min(rule[1], rank)
            rule[2].add(package)
            if not rule[3] and is_web_link(finding.link):
                rule[3] = finding.link
        rule_index = rule[0]
        key = alert_key(identity, finding.cve, finding.package)
        decision = judged.decision
        described = describe_finding(finding)
        if len(described) > 3 * _FIELD:
            described = clip(described, 3 * _FIELD)
        severity = visible(finding.severity)
        message = f"{rule_id} ({severity}) in {visible(described)} of image {ref}"
        tail = ""
        match decision:
            case FindingDecision.COUNTED:
                level = "error" if finding.severity in violated or (kev_violated and judged.kev) else "warning"
            case FindingDecision.IGNORED:
                level = "note"
                justification = string(visible(str(judged.rule)))
                tail = f',"suppressions":[{{"kind":"external","status":"accepted","justification":{justification}}}]'
            case FindingDecision.IN_BASELINE:
                level = "error" if kev_violated and judged.kev else "note"
                tail = ',"baselineState":"unchanged"'
            case FindingDecision.NOT_FIXABLE:
                level = "error" if kev_violated and judged.kev else "note"
            case FindingDecision.VEX:
                level = "note"
                justification = string(visible(vex_note(judged.vex)) if judged.vex else "VEX")
                tail = f',"suppressions":[{{"kind":"external","status":"accepted","justification":{justification}}}]'
            case _:
                unreachable(decision)
        if decision != FindingDecision.COUNTED:
            vex = visible(vex_note(judged.vex)) if judged.vex else ""
            message += _DECISION_NOTE[decision].format(rule=visible(str(judged.rule)), vex=vex)
        elif judged.vex is not None:
            message += f"; {visible(vex_note(judged.vex))}"
        if judged.kev is not None:
            message += f"; {visible(kev_note(judged.kev))}"
        yield (
            f'{{"ruleId":{string(rule_id)},"ruleIndex":{rule_index},"level":"{level}",'
            f'"message":{{"text":{string(message)}}},"locations":{locations},'
            f'"partialFingerprints":{{"{LINE_HASH_KEY}":"{key}","{FINGERPRINT_KEY}":"{key}"}},'
            f'"properties":{{{image},"severity":{string(severity)},'
            f'"package":{string(package)},'
            f'"installedVersion":{string(visible(version if len(version) <= _FIELD else clip(version, _FIELD)))},'
            f'"fixedVersion":{string(visible(fixed if len(fixed) <= _FIELD else clip(fixed, _FIELD)))},'
            f'"decision":{string(decision)}}}{tail}}}'
        )


def _invocation(report: RunReport, dropped: int) -> dict[str, Any]:
    notifications = []
    for outcome in report.images:
        if outcome.error is not None:
            notifications.append(
                _notification("error", f"{outcome.ref}: {outcome.error.message}", "crgate/image-error")
            )
        elif outcome.findings is None and outcome.result is not None:
            notifications.append(
                _notification("warning", f"{outcome.ref}: findings were not fetched", "crgate/no-findings")
            )
        notifications.extend(
            _notification("warning", f"{outcome.ref}: {w}", "crgate/warning") for w in outcome.warnings
        )
    notifications.extend(_notification("warning", warning, "crgate/warning") for warning in report.warnings)
    if is_emulated(report):
        notifications.insert(0, _notification("warning", EMULATED_NOTE, "crgate/emulated"))
    if dropped:
        notifications.append(
            _notification(
                "warning",
                f"{dropped} less severe results were left out to stay within GitHub's limit of "
                f"{MAX_RESULTS} results per run; the JSON report lists every finding",
                "crgate/truncated",
            )
        )
    return {
        "executionSuccessful": report.exit_code in (0, 1),
        "exitCode": report.exit_code,
        "startTimeUtc": _time(report.started_at),
        "endTimeUtc": _time(report.finished_at),
        "toolExecutionNotifications": notifications,
    }


def _notification(level: str, text: str, rule: str) -> dict[str, Any]:
    return {"level": level, "message": {"text": visible(clip(text, 4000), lines=True)}, "descriptor": {"id": rule}}


def _image_properties(outcome: ImageOutcome) -> dict[str, Any]:
    return {
        "ref": visible(outcome.ref),
        "imageId": outcome.image_id,
        "scanResultId": outcome.scan_result_id,
        "verdict": outcome.verdict,
        "findings": None if outcome.findings is None else len(outcome.findings),
    }


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
