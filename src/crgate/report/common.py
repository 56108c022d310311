"""What the formats share: stable ids, ordering, limit rows, and the work one run's writing does once.

Pure helpers over the plain model; nothing here reads a clock or the environment, so every format is a
deterministic function of its ``RunReport`` and its ``Context``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NoReturn

from crgate.defaults import DEFAULT_SARIF_LOCATION
from crgate.model import (
    SEVERITIES,
    THRESHOLD_KEYS,
    Finding,
    FindingDecision,
    ImageOutcome,
    JudgedFinding,
    KevEntry,
    Policy,
    RunReport,
    VexStatement,
    Violation,
)

# Fixed namespace for crgate's name-based UUIDs: the same image, CVE and package always give the same id.
NAMESPACE = uuid.UUID("6f2f0d8e-61a4-5b0c-9d43-0c7c2a6f3e11")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
"""Each severity's place in SEVERITIES (0 = critical): the one ordering every format sorts by."""
MAX_LINK = 2000
_NAMESPACE_BYTES = NAMESPACE.bytes
_sha1 = hashlib.sha1
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 4122 variant digit


def unreachable(value: NoReturn) -> NoReturn:
    """The ``case _:`` of a ``match`` over an enum: mypy fails the build when a member has no case
    (``typing.assert_never``, which Python 3.10 lacks); at run time a value outside the enum raises."""
    raise AssertionError(f"unexpected value {value!r}")


def finding_uuid(image: str, cve: str, package: str) -> str:
    """A deterministic UUID (v5) for one finding of one image: ``uuid.uuid5`` computed on the hex digest
    (no UUID object; GitLab and SARIF reports need one per finding)."""
    digest = _sha1(_NAMESPACE_BYTES + f"{image}\x1f{cve}\x1f{package}".encode()).hexdigest()
    # Version 5 in the 13th digit, the RFC 4122 variant in the two top bits of the 17th.
    return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}"


def repository_of(ref: str) -> str:
    """An image reference without its tag, digest and platform label (``cr.yandex/crp1/app:1.2`` and
    ``cr.yandex/crp1/app:multi [linux/arm64/v8]`` -> ``cr.yandex/crp1/app``).

    Alerts keyed on the repository survive a rebuild under a new tag; a bare image id stays as it is.
    """
    name = ref.split(" [", 1)[0].split("@", 1)[0]  # a reference holds no space: " [" starts the label
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash >= 0 else name


@dataclass(frozen=True)
class ImageIdentity:
    """What a finding's alert is keyed on besides the CVE and the package: the image's repository and
    platform, never its tag or digest (a retag, a rerun or a digest reference keeps the alert)."""

    repository: str
    """The reference as given without tag, digest and platform label; the image id for ``--image-id``."""
    platform: str
    """``linux/arm64`` for a platform image of an index; empty when crgate does not know it."""


def image_identity(outcome: ImageOutcome) -> ImageIdentity:
    """The repository and platform of one gated image (see ``ImageIdentity``)."""
    source = outcome.source
    if source is None:
        return ImageIdentity(repository_of(outcome.ref), "")
    return ImageIdentity(repository_of(source.reference), source.platform or "")


def alert_key(identity: ImageIdentity, cve: str, package: str) -> str:
    """32 hex digits naming one vulnerability of one package in one repository and platform: the same
    for every tag, digest reference and run, different for another platform, package or CVE."""
    repository, platform = identity.repository, identity.platform
    # Each part prefixed with its length, so no text inside a part can shift the boundaries.
    text = f"crgate-alert/v2 {len(repository)}:{repository}{len(platform)}:{platform}{len(cve)}:{cve}{package}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def finding_order(judged: JudgedFinding) -> tuple[int, int, str, str]:
    """Most severe first; among equals fixable first, then by CVE and package (stable across runs)."""
    finding = judged.finding
    return (
        SEVERITY_RANK.get(finding.severity, len(SEVERITIES)),
        0 if finding.fixable else 1,
        finding.cve,
        finding.package,
    )


_CVE_AND_PACKAGE = attrgetter("finding.cve", "finding.package")


def _severity_and_fix(judged: JudgedFinding) -> int:
    finding = judged.finding
    return 2 * SEVERITY_RANK.get(finding.severity, len(SEVERITIES)) + (0 if finding.fixed_by else 1)


def sorted_findings(findings: Iterable[JudgedFinding]) -> list[JudgedFinding]:
    """``sorted(findings, key=finding_order)``, in two stable sorts (by CVE and package with a key made in C,
    then by severity and fix): the same order, ties included, in half the time for 100,000 findings."""
    ordered = sorted(findings, key=_CVE_AND_PACKAGE)
    ordered.sort(key=_severity_and_fix)
    return ordered


@dataclass(frozen=True)
class Grouped:
    """One image's findings split by decision, and the counted ones by severity; every list is in
    ``finding_order`` (most severe first). Every decision and severity is a key (empty lists included)."""

    by_decision: Mapping[FindingDecision, list[JudgedFinding]]
    counted_by_severity: Mapping[str, list[JudgedFinding]]
    """Severities beyond SEVERITIES (never decoded, but a constructed report may hold them) come last."""


def grouped(findings: Iterable[JudgedFinding]) -> Grouped:
    """``findings`` (in ``finding_order``) grouped, keeping their order."""
    by_decision: dict[FindingDecision, list[JudgedFinding]] = {decision: [] for decision in FindingDecision}
    by_severity: dict[str, list[JudgedFinding]] = {severity: [] for severity in SEVERITIES}
    counted = FindingDecision.COUNTED
    for judged in findings:
        by_decision[judged.decision].append(judged)
        if judged.decision == counted:
            severity = judged.finding.severity
            if severity not in by_severity:
                by_severity[severity] = []
            by_severity[severity].append(judged)
    return Grouped(by_decision, by_severity)


@dataclass
class Context:
    """One writing of a run's reports: the options every format reads, and work done once for all.

    ``write_all`` hands the same context to every format it writes, so the findings of an image are
    sorted once however many formats list them.
    """

    report: RunReport
    location: str = DEFAULT_SARIF_LOCATION
    """Repository-relative path that SARIF and Code Quality entries point at (line 1)."""
    invocation: dict[str, str] = field(default_factory=dict)
    """CI run the cosign predicate names (``uri``, ``event_id``, ``builder.id``); empty outside CI."""
    sarif_category: str = "crgate"
    """SARIF ``automationDetails.id`` is ``<category>/``: GitHub code scanning keeps one set of alerts per
    category, so uploads from a matrix of image sets need one each."""
    keep_finding_lines: bool = False
    """Keep each image's JSON finding lines for a second format (the JSON report and cosign-vuln share them)."""
    _sorted: dict[int, tuple[ImageOutcome, list[JudgedFinding]]] = field(default_factory=dict, repr=False)
    _grouped: dict[int, tuple[ImageOutcome, Grouped]] = field(default_factory=dict, repr=False)
    _lines: dict[int, tuple[ImageOutcome, list[str]]] = field(default_factory=dict, repr=False)

    def sorted_findings(self, outcome: ImageOutcome) -> list[JudgedFinding]:
        """The image's findings, most severe first (``finding_order``); computed once per image."""
        cached = self._sorted.get(id(outcome))
        if cached is None or cached[0] is not outcome:
            cached = (outcome, sorted_findings(outcome.findings or ()))
            self._sorted[id(outcome)] = cached
        return cached[1]

    def grouped(self, outcome: ImageOutcome) -> Grouped:
        """The image's sorted findings grouped by decision and severity (``grouped``); computed once per image,
        so the formats that list only some of them (counted, ignored) each skip a pass over all of them."""
        cached = self._grouped.get(id(outcome))
        if cached is None or cached[0] is not outcome:
            cached = (outcome, grouped(self.sorted_findings(outcome)))
            self._grouped[id(outcome)] = cached
        return cached[1]

    def finding_lines(self, outcome: ImageOutcome, encode: Callable[[JudgedFinding], str]) -> Iterable[str]:
        """``encode`` of each of the image's findings (in the scanner's order), made once when kept."""
        findings = outcome.findings or ()
        if not self.keep_finding_lines:
            return map(encode, findings)
        cached = self._lines.get(id(outcome))
        if cached is None or cached[0] is not outcome:
            cached = (outcome, [encode(judged) for judged in findings])
            self._lines[id(outcome)] = cached
        return cached[1]


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_WEB_URI = re.compile(
    r"https?://(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+(?::[0-9]{1,5})?"  # host (no user info), port
    rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"  # path, query, fragment
)
"""An http(s) URI as RFC 3986 spells one: only its characters, every ``%`` followed by two hex digits."""


def is_web_link(link: str) -> bool:
    """True for an http(s) URL safe to put in a report as a link or URI field: not absurdly long, a valid
    RFC 3986 URI (so no space, control, non-ASCII or ``<>"{}|\\^``` character), without user info."""
    return len(link) <= MAX_LINK and link.startswith(("https://", "http://")) and _WEB_URI.fullmatch(link) is not None


def describe_finding(finding: Finding) -> str:
    """``curl 7.88.1 (fixed in 7.88.2)`` / ``(no fix known)``."""
    version = f" {finding.version}" if finding.version else ""
    fix = f"fixed in {finding.fixed_by}" if finding.fixed_by else "no fix known"
    return f"{finding.package}{version} ({fix})"


@dataclass(frozen=True)
class LimitRow:
    """One policy limit as checked for one image."""

    key: str
    count: int
    limit: int
    violated: bool


KEV_KEY = "kev"
"""The key of the KEV limit (``kev.max``) among the limits, counts and violations."""
KEV_ROW = "known exploited (KEV)"
"""How the human formats name the KEV limit."""
_OUT_OF_COUNTS = (FindingDecision.IGNORED, FindingDecision.VEX)


def vex_note(statement: VexStatement) -> str:
    """``VEX not_affected (vulnerable_code_not_present): vex/app.json statement 2``."""
    reason = statement.justification or statement.impact_statement
    detail = f" ({reason})" if reason else ""
    return f"VEX {statement.status}{detail}: {statement.document} statement {statement.index}"


def kev_note(entry: KevEntry) -> str:
    """``known exploited (KEV, added 2024-01-02, due 2024-01-23, known ransomware use)``."""
    return entry.label


def limit_name(key: str) -> str:
    """How the human formats name a limit: its key, or ``known exploited (KEV)`` for ``kev``."""
    return KEV_ROW if key == KEV_KEY else key


def violation_text(violation: Violation) -> str:
    """``high 3 > 0``, ``known exploited (KEV) 1 > 0``."""
    return f"{limit_name(violation.severity)} {violation.count} > {violation.limit}"


def kev_findings(findings: Iterable[JudgedFinding]) -> list[JudgedFinding]:
    """The findings that count against ``kev.max`` (KEV-listed, and neither ignored nor taken out by VEX:
    the baseline and fixable-only limits do not take them out), in the order given."""
    return [judged for judged in findings if judged.kev is not None and judged.decision not in _OUT_OF_COUNTS]


def limit_rows(policy: Policy, outcome: ImageOutcome) -> list[LimitRow]:
    """Every limit of the policy with the count it was checked against (empty when there is no result);
    the KEV limit (key ``kev``) last when the policy has one."""
    if outcome.result is None:
        return []
    violated = {violation.severity: violation.count for violation in outcome.violations}
    rows = []
    for key in THRESHOLD_KEYS:
        if key not in policy.thresholds:
            continue
        checked = outcome.counted[key] if outcome.counted is not None else outcome.result.counts.get(key)
        count = violated.get(key, checked)
        rows.append(LimitRow(key, count, policy.thresholds[key], key in violated))
    if policy.kev is not None:
        checked = outcome.counted.get(KEV_KEY, 0) if outcome.counted is not None else 0
        rows.append(LimitRow(KEV_KEY, violated.get(KEV_KEY, checked), policy.kev.max, KEV_KEY in violated))
    return rows


def violated_severities(outcome: ImageOutcome) -> set[str]:
    """Severities whose findings made this image fail (``total`` makes every severity count; the KEV limit
    names no severity)."""
    keys = {violation.severity for violation in outcome.violations} - {KEV_KEY}
    return set(SEVERITIES) if "total" in keys else keys
