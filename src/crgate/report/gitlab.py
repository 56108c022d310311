"""GitLab container-scanning report, schema 15.0.7 (``artifacts: reports: container_scanning``).

One vulnerability per finding per image, with a deterministic UUID (uuid5 over image + CVE + package),
the CVE as the first (primary) identifier, and ``location.image`` / ``operating_system`` /
``dependency``. GitLab shows this report on Ultimate only (the Code Quality report shows everywhere).

How GitLab tells vulnerabilities apart (``Gitlab::Ci::Reports::Security::Locations::ContainerScanning``):
by the primary identifier and a location fingerprint, SHA-1 of ``<image without tag>:<package name>``,
where the image loses the part after its last ``:`` unless that part looks like a version (``1.4.2`` is
kept, so every release would be a new vulnerability). On a branch other than the default one GitLab
takes ``default_branch_image`` instead of ``image`` when a vulnerability of the project already has an
image that begins like it. So:

- ``location.image`` is pullable and pinned: ``<repository>@sha256:<digest of the manifest gated>`` (a
  platform image's own digest for a platform of an index). GitLab's rule makes it ``<repository>@sha256``:
  the same for every tag, rerun and digest reference of the repository. Without a reference
  (``--image-id``) it is ``<image id>:image-id``, which keeps the id.
- The platform of an index's image is part of the package name (``curl [linux/arm64]``), the only place
  in GitLab's key that can hold it: otherwise both platforms' findings of one CVE in one package would be
  one vulnerability, and fixing one platform would close both.
- No ``default_branch_image``: crgate cannot know the default branch's image, and a value without a tag
  would make GitLab's key an empty image name (shared by every image of the project).

``operating_system`` is the image's distribution: the ``type`` of an OS package finding (``debian``).
A language package (``origin: lang``, ``type`` such as ``jar``, ``gobinary``, ``python-pkg``) names its
package type, not an operating system, so its vulnerabilities carry the distribution the image's OS
findings name (the most frequent, ties by name), else the os of the image's platform (``linux``), else
``unknown``; the package type goes into the description.

Written as a stream: one vulnerability per line (``crgate.report.jsonout``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from operator import attrgetter
from typing import Any, TextIO

from crgate.model import FindingDecision, ImageOutcome, JudgedFinding, RunReport
from crgate.report.common import (
    Context,
    clip,
    describe_finding,
    finding_uuid,
    image_identity,
    is_web_link,
    kev_note,
    vex_note,
)
from crgate.report.jsonout import Splice, string
from crgate.report.provenance import EMULATED_NOTE, is_emulated, provenance_of
from crgate.report.provenance import properties as provenance_properties
from crgate.textsafe import visible

SCHEMA_VERSION = "15.0.7"
SCHEMA_URL = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v15.0.7/dist/"
    "container-scanning-report-format.json"
)
VENDOR = {"name": "crgate"}
URL = "https://github.com/crgate/crgate"
SCANNER = {
    "id": "yandex-container-registry",
    "name": "Yandex Cloud Container Registry vulnerability scanner",
    "version": "v1",
    "vendor": {"name": "Yandex Cloud"},
    "url": "https://yandex.cloud/en/docs/container-registry/concepts/vulnerability-scanner",
}
EMULATOR_SCANNER = {  # an emulated run names the emulator, never Yandex's scanner
    "id": "crgate-emulator",
    "name": "crgate's built-in emulator (EMULATED: not Yandex Cloud)",
    "version": "v1",
    "vendor": {"name": "crgate"},
    "url": URL,
}
LANGUAGE_ORIGIN = "lang"
_SEVERITY = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "negligible": "Info",
    "undefined": "Unknown",
}
_DECISION_NOTE = {  # every decision (a test checks); added to the description of a finding not counted
    FindingDecision.COUNTED: "",
    FindingDecision.IGNORED: "Ignored by the crgate policy rule {rule}.",
    FindingDecision.NOT_FIXABLE: "Not counted by crgate: the policy limits only fixable findings.",
    FindingDecision.IN_BASELINE: "Not counted by crgate: already in the baseline image.",
    FindingDecision.VEX: "Not counted by crgate: {vex}.",
}
_ORIGIN_AND_TYPE = attrgetter("finding.origin", "finding.type")
_IDENTIFIER_TYPES = frozenset(("cve", "ghsa", "dsa", "dla", "usn", "rhsa", "alas", "osv", "go", "pysec"))


def write(context: Context, out: TextIO) -> None:
    splice = Splice()
    report = context.report
    vulnerabilities = splice.array(
        line for outcome in report.images for line in _vulnerabilities(outcome, context.sorted_findings(outcome))
    )
    splice.write(out, document(report, vulnerabilities), indent=1, ensure_ascii=False)


def document(report: RunReport, vulnerabilities: Any) -> dict[str, Any]:
    """The report's document around ``vulnerabilities`` (a list, or a ``Splice`` placeholder)."""
    tool = {"id": "crgate", "name": "crgate", "version": report.tool_version, "vendor": VENDOR, "url": URL}
    failed = any(outcome.error is not None for outcome in report.images)
    return {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": tool,
            "scanner": EMULATOR_SCANNER if is_emulated(report) else SCANNER,
            "type": "container_scanning",
            "start_time": _time(report.started_at),
            "end_time": _time(report.finished_at),
            "status": "failure" if failed or report.exit_code not in (0, 1) else "success",
            "messages": _messages(report),
            "options": provenance_options(report),
        },
        "vulnerabilities": vulnerabilities,
        "remediations": [],
    }


def provenance_options(report: RunReport) -> list[dict[str, Any]]:
    """The run's provenance as ``scan.options`` (the one place of the schema for a scan's settings):
    ``crgate.provenance.*`` names, each value a string, integer, boolean or null, as the schema allows."""
    return [
        {"name": name, "value": clip(value, 10_000) if isinstance(value, str) else value, "source": "other"}
        for name, value in provenance_properties(report)
    ]


def image_os(findings: list[JudgedFinding], platform: str = "") -> str:
    """The distribution the image's OS package findings name most often (ties by name), else the os of
    ``platform`` (``linux`` of ``linux/arm64``), else ``unknown``."""
    # Counted in C over (origin, type) pairs, of which an image has a handful, then filtered.
    pairs = Counter(map(_ORIGIN_AND_TYPE, findings))
    names = Counter({kind: n for (origin, kind), n in pairs.items() if origin != LANGUAGE_ORIGIN and kind})
    if not names:
        return platform.partition("/")[0] or "unknown"
    return min(names.items(), key=lambda item: (-item[1], item[0]))[0]


def pullable_image(outcome: ImageOutcome) -> str:
    """``location.image``: ``<repository>@<digest gated>``; without a registry read, the reference as given
    (its label cut off), or ``<image id>:image-id`` for a bare image id (no ``/``)."""
    source = outcome.source
    if source is not None:
        return f"{image_identity(outcome).repository}@{source.digest}"
    reference = outcome.ref.split(" [", 1)[0]
    return reference if "/" in reference else f"{reference}:image-id"


def _vulnerabilities(outcome: ImageOutcome, findings: list[JudgedFinding]) -> Iterator[str]:
    """One JSON line per finding; what is the same for every finding of the image is encoded once."""
    ref = visible(outcome.ref)
    platform = image_identity(outcome).platform
    distribution = string(visible(clip(image_os(findings, platform), 200)))
    image = f'"image": {string(visible(pullable_image(outcome)))}}}'
    in_platform = f" [{platform}]" if platform else ""
    # Values that repeat across findings (identifier kinds, operating systems), encoded once each.
    kinds: dict[str, str] = {}
    systems: dict[str, str] = {}
    uuid, encoded = finding_uuid, string  # locals: this loop runs once per finding
    for judged in findings:
        finding = judged.finding
        # Every text a person reads is visible (no control or bidi character: GitLab stores it in PostgreSQL,
        # which refuses NUL, and renders the rest).
        cve, package, version = finding.cve, visible(finding.package), visible(finding.version)
        cve = visible(cve if len(cve) <= 200 else clip(cve, 200)) or "UNKNOWN"
        cve_text = encoded(cve)
        prefix = cve.partition("-")[0]
        kind = kinds.get(prefix)
        if kind is None:
            kind = kinds[prefix] = prefix.lower() if prefix.lower() in _IDENTIFIER_TYPES else "other"
        if is_web_link(finding.link):
            link = encoded(finding.link)
            references = f', "url": {link}}}], "links": [{{"url": {link}}}]'
        else:
            references = '}], "links": []'
        language = finding.origin == LANGUAGE_ORIGIN
        described = describe_finding(finding)
        if language and finding.type:
            described += f" ({finding.type} package)"
        description = f"{cve} ({visible(finding.severity)}) in {visible(described)} of image {ref}."
        note = _DECISION_NOTE[judged.decision]
        if note:
            vex = visible(vex_note(judged.vex)) if judged.vex else "VEX"
            description += " " + note.format(rule=visible(str(judged.rule)), vex=vex)
        elif judged.vex is not None:
            description += f" {visible(vex_note(judged.vex))}."
        if judged.kev is not None:
            note = visible(kev_note(judged.kev))
            description += f" {note[:1].upper()}{note[1:]}."  # not str.capitalize: it would write "kev"
        if language or not finding.type:
            system = distribution
        else:
            system = systems.get(finding.type) or systems.setdefault(
                finding.type, encoded(visible(clip(finding.type, 200)))
            )
        name = f"{cve} in {package}{in_platform}"
        solution = ""
        if finding.fixed_by:
            solution = f', "solution": {encoded(clip(f"Upgrade {package} to {visible(finding.fixed_by)}", 7000))}'
        if len(package) > 500 or not package:
            package = clip(package, 500) or "unknown"
        package += in_platform
        yield (
            f'{{"id": "{uuid(ref, finding.cve, finding.package)}", '
            f'"name": {encoded(name if len(name) <= 255 else clip(name, 255))}, '
            f'"description": {encoded(description if len(description) <= 10_000 else clip(description, 10_000))}, '
            f'"severity": "{_SEVERITY.get(finding.severity, "Unknown")}", '
            f'"identifiers": [{{"type": "{kind}", "name": {cve_text}, "value": {cve_text}{references}, '
            f'"location": {{"dependency": {{"package": {{"name": {encoded(package)}}}, '
            f'"version": {encoded(version if len(version) <= 500 else clip(version, 500))}}}, '
            f'"operating_system": {system}, {image}{solution}}}'
        )


def _messages(report: RunReport) -> list[dict[str, str]]:
    messages = []
    for outcome in report.images:
        if outcome.error is not None:
            messages.append({"level": "fatal", "value": _message(f"{outcome.ref}: {outcome.error.message}")})
        messages.extend({"level": "warn", "value": _message(f"{outcome.ref}: {w}")} for w in outcome.warnings)
    messages.extend({"level": "warn", "value": _message(warning)} for warning in report.warnings)
    if is_emulated(report):
        messages.append({"level": "warn", "value": _message(EMULATED_NOTE)})
    messages.extend(
        {"level": "warn", "value": _message(f"loosened: {item.describe()}")}
        for item in provenance_of(report).loosenings
    )
    messages.append({"level": "info", "value": f"crgate verdict: {report.verdict} (exit {report.exit_code})"})
    if report.report_only:
        messages.append({"level": "warn", "value": "report-only run: crgate exited 0 for policy violations"})
    return messages


def _message(text: str) -> str:
    return visible(clip(text, 10_000), lines=True)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
