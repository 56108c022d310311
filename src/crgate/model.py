"""Plain, frozen data that crosses module boundaries. No gRPC or YAML types ever leave their modules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crgate.exitcodes import ExitCode

if TYPE_CHECKING:
    from crgate.provenance import Provenance

# The six severities of Yandex's VulnerabilityStats, in the order users read them. "undefined" is what
# Yandex's docs call "other" vulnerabilities.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "negligible", "undefined")
# Policy threshold keys: every severity plus the sum of all of them.
THRESHOLD_KEYS: tuple[str, ...] = (*SEVERITIES, "total")


class Word(str, enum.Enum):
    """A word of crgate's vocabulary: compares, formats and serializes (JSON) as its plain value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class FindingDecision(Word):
    """What the policy made of one finding (precedence: ignored, vex, in_baseline, not_fixable, counted)."""

    COUNTED = "counted"
    IGNORED = "ignored"
    VEX = "vex"
    """A VEX statement says the image is ``not_affected`` by it, or that it is ``fixed``."""
    IN_BASELINE = "in_baseline"
    NOT_FIXABLE = "not_fixable"


class Origin(Word):
    """How an image's READY result was obtained."""

    SCANNED = "scanned"
    """A new scan, started by this run."""
    REUSED = "reused"
    """The image's last READY result, young enough for ``reuse.max_age``."""
    JOINED = "joined"
    """A scan someone else had already started (scan-on-push, another pipeline)."""


class Verdict(Word):
    """The verdict on one image or a whole run."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"

    @classmethod
    def of(cls, code: ExitCode) -> Verdict:
        """``pass`` for exit 0, ``fail`` for a violation, ``error`` for anything else."""
        return cls.PASS if code == ExitCode.PASS else cls.FAIL if code == ExitCode.VIOLATION else cls.ERROR


class ErrorKind(Word):
    """Why an image has no verdict; each crgate error class names its kind (``CrgateError.kind``)."""

    CONFIG = "config"
    SCAN = "scan"
    NOT_FOUND = "not_found"
    MALFORMED = "malformed"
    NOT_AN_IMAGE = "not_an_image"
    """An SBOM, attestation, signature or other artifact named where a container image was expected."""
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


class ImageState(Word):
    """The states progress shows for one image, in the order a run goes through them."""

    QUEUED = "queued"
    RESOLVING = "resolving"
    STARTING = "starting"
    SCANNING = "scanning"
    EXPANDED = "multi-platform: gating each platform image"
    """The reference names an index; its platform images have rows of their own."""
    WAITING_FOR_SLOT = "waiting for a scan slot"
    """The cloud refused to start a scan: its quota of concurrent scans is in use (by anyone)."""
    FETCHING_FINDINGS = "fetching findings"
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class SeverityCounts:
    """Vulnerability counts per severity, as the scanner reported them (never negative)."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    negligible: int = 0
    undefined: int = 0

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        """All six severities, zero included, in SEVERITIES order."""
        return {name: getattr(self, name) for name in SEVERITIES}

    def get(self, key: str) -> int:
        """Count for a threshold key (a severity or ``total``)."""
        return self.total if key == "total" else int(getattr(self, key))


@dataclass(frozen=True)
class ScanResult:
    """A finished, READY scan result (the client never hands out anything else)."""

    id: str
    image_id: str
    status: str
    counts: SeverityCounts
    scanned_at: dt.datetime | None = None
    statistics_missing: bool = False
    """The server sent no vulnerability statistics (proto3 omits an unset message, and zero counts are
    often left out): ``counts`` are then zeros until the listed findings are counted."""


@dataclass(frozen=True)
class ListedImage:
    """One entry of ``ImageService.List``: an image of a repository, as the image service knows it."""

    id: str
    repository_name: str
    """``<registry-id>/<repository>``."""
    digest: str
    tags: tuple[str, ...]
    created_at: dt.datetime | None

    @property
    def registry_id(self) -> str:
        return self.repository_name.split("/", 1)[0]

    @property
    def repository(self) -> str:
        return self.repository_name.split("/", 1)[1]


@dataclass(frozen=True)
class LastScan:
    """What the scanner holds for an image without scanning it: its last READY result, if any, and the
    status of its last finished scan (None: never scanned)."""

    result: ScanResult | None
    last_status: str | None


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference ``<host>/<registry-id>/<repository>[:tag][@sha256:digest]``."""

    raw: str
    host: str
    registry_id: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository_name(self) -> str:
        """The name ``ImageService.List(repository_name=...)`` expects: ``<registry-id>/<repo>``."""
        return f"{self.registry_id}/{self.repository}"


@dataclass(frozen=True)
class Target:
    """What the user named: a parsed reference (read from the registry, possibly several platform
    images), or a bare image id (``--image-id``: no registry read)."""

    label: str
    """How reports and progress name it: the reference as given, or the image id."""
    ref: ImageRef | None = None
    image_id: str | None = None


@dataclass(frozen=True)
class IgnoreRule:
    """``ignore:`` entry: a CVE (optionally only in packages / images matching globs) until a date."""

    id: str
    reason: str
    package: str | None = None
    images: tuple[str, ...] = ()
    expires: dt.date | None = None
    line: int | None = None
    """Line of the rule in the policy file, so warnings can point at it."""

    @property
    def label(self) -> str:
        """How reports name the rule: ``CVE-2023-4863 [package libwebp*] (policy line 12)``."""
        text = self.id
        if self.package:
            text += f" [package {self.package}]"
        if self.images:
            text += f" [images {', '.join(self.images)}]"
        if self.line:
            text += f" (policy line {self.line})"
        return text


@dataclass(frozen=True)
class BaselineSpec:
    """``baseline:``: only findings absent from this image's last READY scan count."""

    image: str
    missing: str = "fail"
    """``fail`` (exit 3 when the baseline cannot be obtained) or ``pass`` (set explicitly)."""


class VexStatus(Word):
    """The four statuses of an OpenVEX statement; ``not_affected`` and ``fixed`` take a finding out."""

    NOT_AFFECTED = "not_affected"
    AFFECTED = "affected"
    FIXED = "fixed"
    UNDER_INVESTIGATION = "under_investigation"

    @property
    def excludes(self) -> bool:
        return self in (VexStatus.NOT_AFFECTED, VexStatus.FIXED)


@dataclass(frozen=True)
class VexProduct:
    """One product of a VEX statement, as far as crgate can tie it to an image: by digest (a ``pkg:oci`` purl
    or a ``sha-256`` hash, optionally within a repository), by repository, or by reference (repository and
    tag). ``packages`` are its subcomponents as (name, version or None); empty = every package of the image.
    ``image`` is False for a product crgate cannot tie to an image (it matches nothing)."""

    label: str
    image: bool = True
    digest: str | None = None
    """``sha256:<hex>``: the image's own digest or its index's."""
    repository: str | None = None
    """``cr.yandex/<registry-id>/<repository>``."""
    tag: str | None = None
    packages: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class VexStatement:
    """One statement of a VEX document, checked (``not_affected`` has its justification or impact)."""

    document: str
    """The document's path as given (``--vex`` or the policy's ``vex:`` list)."""
    index: int
    """The statement's place in the document's ``statements`` (0-based)."""
    vulnerabilities: frozenset[str]
    """The vulnerability's name and aliases, uppercased."""
    name: str
    products: tuple[VexProduct, ...]
    status: VexStatus
    timestamp: dt.datetime
    """The statement's own ``timestamp``, else its document's."""
    justification: str | None = None
    impact_statement: str | None = None

    @property
    def label(self) -> str:
        """``vex/app.json statement 2 (CVE-2023-4863 not_affected)``."""
        return f"{self.document} statement {self.index} ({self.name} {self.status})"

    @property
    def reason(self) -> str:
        """The justification (or impact statement) that reports quote."""
        return self.justification or self.impact_statement or str(self.status)


@dataclass(frozen=True)
class VexDocument:
    """A VEX document as read: its path, the SHA-256 of its bytes, its statements."""

    path: str
    sha256: str
    statements: tuple[VexStatement, ...]
    format: str = "openvex"
    from_policy: bool = False
    """Named by the policy's ``vex:`` list (else by ``--vex``)."""
    pinned: bool = False
    """The policy pins its SHA-256 (``{path: ..., sha256: ...}``), and it matched."""


@dataclass(frozen=True)
class KevEntry:
    """One vulnerability of a catalog of known exploited vulnerabilities (CISA KEV)."""

    cve: str
    date_added: dt.date
    due_date: dt.date
    known_ransomware: str
    """``Known`` or ``Unknown``, as the catalog says."""

    @property
    def label(self) -> str:
        ransomware = "known ransomware use" if self.known_ransomware == "Known" else "no known ransomware use"
        return (
            f"known exploited (KEV, added {self.date_added.isoformat()}, due {self.due_date.isoformat()}, {ransomware})"
        )


@dataclass(frozen=True)
class KevCatalog:
    """A KEV catalog as read: its path, the SHA-256 of its bytes, its release and entries by CVE id (upper)."""

    path: str
    sha256: str
    version: str
    released: dt.datetime
    entries: Mapping[str, KevEntry]


@dataclass(frozen=True)
class KevPolicy:
    """``kev:``: more than ``max`` counted KEV-listed findings fail an image, whatever the thresholds say."""

    catalog: KevCatalog
    max: int = 0
    max_age: dt.timedelta | None = dt.timedelta(days=30)
    """Warn when the catalog's release is older than this; None: never."""


@dataclass(frozen=True)
class ImageRule:
    """One rule of ``images:``: the limits for the images its globs match (``None`` / empty: not set, the
    top-level key judges). ``thresholds`` replaces the top-level ones as a whole; ``ignore`` and ``vex`` come
    after the top-level ones."""

    index: int
    match: tuple[str, ...]
    """Shell globs on the canonical reference (``cr.yandex/<registry-id>/<repository>:<tag>``)."""
    line: int | None = None
    thresholds: Mapping[str, int] | None = None
    fixable_only: frozenset[str] = frozenset()
    """With ``thresholds``: the keys that count only fixable findings."""
    only_fixed: bool | None = None
    unscannable: str | None = None
    ignore: tuple[IgnoreRule, ...] = ()
    vex: tuple[VexDocument, ...] = ()

    @property
    def label(self) -> str:
        """``images[1] (cr.yandex/*/prod/*)``."""
        return f"images[{self.index}] ({', '.join(self.match)})"


@dataclass(frozen=True)
class Policy:
    """A loaded policy. ``thresholds`` holds only the limits that are set; absent = no limit."""

    version: int
    thresholds: Mapping[str, int]
    source: str
    """Where it came from: a file path, or ``built-in default``."""
    fixable_only: frozenset[str] = frozenset()
    """Threshold keys that count only findings with a known fix (``high: {max: 0, fixable_only: true}``)."""
    only_fixed: bool = False
    """``fixable_only`` for every threshold at once."""
    ignore: tuple[IgnoreRule, ...] = ()
    baseline: BaselineSpec | None = None
    reuse_max_age: dt.timedelta | None = None
    """Accept the image's last READY scan when younger than this; None or zero = always scan."""
    fail_on_stale_ignores: bool = False
    unscannable: str = "warn"
    """What to do with images outside Yandex registries (manifests): ``warn``, ``fail`` or ``skip``."""
    sha256: str | None = None
    """The SHA-256 (lowercase hex) of the policy's bytes as read (the built-in default: of its documented
    text); None for a policy built in code. What ``--policy-sha256`` pins and provenance records."""
    vex: tuple[VexDocument, ...] = ()
    """The VEX documents in force: the policy's ``vex:`` list, then ``--vex`` files (each with its sha256)."""
    kev: KevPolicy | None = None
    """``kev:`` (or ``--kev-catalog``): the catalog and the limit on KEV-listed findings."""
    images: tuple[ImageRule, ...] = ()
    """``images:``: rules by image pattern; the first that matches judges the image (``crgate.image_rules``)."""

    @property
    def uses_findings(self) -> bool:
        """True when judging needs the individual findings, not only the scan's counts (of any image)."""
        rules = any(r.fixable_only or r.only_fixed or r.ignore or r.vex for r in self.images)
        return bool(
            self.fixable_only or self.only_fixed or self.ignore or self.baseline or self.vex or self.kev or rules
        )

    def judging(self, rule: int | None) -> Policy:
        """The policy that judges an image matched by ``images[rule]`` (None: this one, without rules): the
        rule's keys in place of the top-level ones, its ignore rules and VEX documents after them."""
        if rule is None:
            return self if not self.images else dataclasses.replace(self, images=())
        chosen = self.images[rule]
        thresholds = self.thresholds if chosen.thresholds is None else chosen.thresholds
        return dataclasses.replace(
            self,
            thresholds=thresholds,
            fixable_only=self.fixable_only if chosen.thresholds is None else chosen.fixable_only,
            only_fixed=self.only_fixed if chosen.only_fixed is None else chosen.only_fixed,
            unscannable=self.unscannable if chosen.unscannable is None else chosen.unscannable,
            ignore=self.ignore + chosen.ignore,
            vex=self.vex + tuple(d for d in chosen.vex if d.path not in {v.path for v in self.vex}),
            images=(),
        )

    @property
    def all_ignore(self) -> tuple[IgnoreRule, ...]:
        """The top-level ignore rules, then every image rule's (for expiry and staleness)."""
        return self.ignore + tuple(rule for image in self.images for rule in image.ignore)

    @property
    def all_vex(self) -> tuple[VexDocument, ...]:
        """Every VEX document in force for some image, each once (top-level first)."""
        seen: dict[str, VexDocument] = {d.path: d for d in self.vex}
        for image in self.images:
            for document in image.vex:
                seen.setdefault(document.path, document)
        return tuple(seen.values())

    @property
    def source_files(self) -> tuple[tuple[str, str, str], ...]:
        """(kind, path, sha256) of every file the policy brought in besides itself: VEX documents and the KEV
        catalog, for the report's provenance."""
        files = [("vex", document.path, document.sha256) for document in self.all_vex]
        if self.kev is not None:
            files.append(("kev", self.kev.catalog.path, self.kev.catalog.sha256))
        return tuple(files)

    def counts_fixable_only(self, key: str) -> bool:
        return self.only_fixed or key in self.fixable_only


@dataclass(frozen=True)
class Violation:
    """One exceeded limit: ``count > limit``. ``severity`` is a threshold key, or ``kev`` for the limit on
    known exploited vulnerabilities (``kev.max``)."""

    severity: str
    count: int
    limit: int


@dataclass(frozen=True, slots=True)  # slots: 100,000 of them are half the memory and collector work
class Finding:
    """One vulnerability of a scan result (``ScannerService.ListVulnerabilities``), severity lowercased."""

    cve: str
    severity: str
    package: str
    version: str = ""
    fixed_by: str = ""
    """Empty when no fix is known."""
    link: str = ""
    source: str = ""
    origin: str = ""
    type: str = ""

    @property
    def fixable(self) -> bool:
        return bool(self.fixed_by)


@dataclass(frozen=True, slots=True)
class JudgedFinding:
    """A finding and the policy's decision about it (``rule`` names the ignore rule when ignored; ``vex`` the
    VEX statement that applied, whatever its status; ``kev`` the finding's KEV entry, when listed)."""

    finding: Finding
    decision: FindingDecision
    rule: str | None = None
    vex: VexStatement | None = None
    kev: KevEntry | None = None


ProgressCallback = Callable[[ImageState, "str | None"], None]
"""``(state, scan_result_id)``: what the scanner client reports while it obtains one image's result."""


@dataclass(frozen=True)
class ErrorInfo:
    """Why an image has no verdict: the user-facing message and what identifies the failing call."""

    kind: ErrorKind
    message: str
    exit_code: ExitCode
    code: str | None = None
    method: str | None = None
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSource:
    """What the registry said about the reference behind one gated image (its verified manifest)."""

    reference: str
    """The reference as the user gave it (``cr.yandex/crp1/app:1.4``)."""
    digest: str
    """The digest of the manifest gated: the platform image's, for an index."""
    pinned: str
    """The reference pinned to what it resolved to: ``<host>/<id>/<repo>@<digest of the index or image>``."""
    platform: str | None = None
    """``linux/arm64`` for a platform image of an index; None for a single-manifest image."""
    index_digest: str | None = None
    """The digest of the index the reference names, when it names one."""


@dataclass(frozen=True)
class ImageOutcome:
    """Everything known about one gated image: its scan, the limits it exceeds or why it has no result."""

    ref: str
    image_id: str | None = None
    scan_result_id: str | None = None
    result: ScanResult | None = None
    violations: tuple[Violation, ...] = ()
    error: ErrorInfo | None = None
    polls: int = 0
    elapsed: float = 0.0
    findings: tuple[JudgedFinding, ...] | None = None
    """Every finding with its decision; None when findings were not fetched (counts-only policy)."""
    counted: Mapping[str, int] | None = None
    """Per threshold key, the count its limit was checked against (after ignore/fixable/baseline rules)."""
    origin: Origin = Origin.SCANNED
    warnings: tuple[str, ...] = ()
    source: ImageSource | None = None
    """Where the image came from in the registry (None for ``--image-id``, or when the read failed)."""
    vex_applied: frozenset[tuple[str, int]] = frozenset()
    """(document, index) of every VEX statement that applied to one of its findings (for staleness)."""
    policy_rule: int | None = None
    """The index of the ``images:`` rule that judged it; None: the top-level keys did."""

    @property
    def exit_code(self) -> ExitCode:
        if self.error is not None:
            return self.error.exit_code
        if self.result is None:  # no result and no error cannot happen; never let it pass
            return ExitCode.SCAN_ERROR
        return ExitCode.VIOLATION if self.violations else ExitCode.PASS

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.exit_code)


@dataclass(frozen=True)
class BaselineInfo:
    """The baseline a run judged against (``baseline:`` in the policy): which image, which result."""

    ref: str
    image_id: str
    scan_result_id: str
    origin: str
    """``last READY result`` or how a new result was obtained (``scanned``, ``joined``)."""
    pairs: tuple[tuple[str, str], ...]
    """Its (CVE id, package) pairs, sorted: a finding in one of them is ``in_baseline``."""

    @property
    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.pairs)


@dataclass(frozen=True)
class RunReport:
    """The whole run: what every report format renders."""

    policy: Policy
    images: tuple[ImageOutcome, ...]
    exit_code: ExitCode
    tool_version: str
    started_at: dt.datetime
    finished_at: dt.datetime
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """Run-wide warnings: expiring/expired/stale ignore rules, a baseline judged without, ..."""
    stale_ignores: tuple[str, ...] = ()
    """Ignore rules that matched no finding of any image (a violation with fail_on_stale_ignores)."""
    stale_vex: tuple[str, ...] = ()
    """VEX statements in force that applied to no finding of any image (reported, never a violation)."""
    baseline: BaselineInfo | None = None
    unscannable: tuple[str, ...] = ()
    """Images named by manifests that lie outside Yandex Container Registry (``image (where)``)."""
    report_only: bool = False
    """``--report-only``: the verdict stands in every report, but violations alone do not fail the step."""
    provenance: Provenance | None = None
    """How the verdict was reached (``crgate.provenance``); None: only the policy is known (reports then
    record ``crgate.provenance.default_provenance``)."""

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.exit_code)

    def policy_of(self, outcome: ImageOutcome) -> Policy:
        """The limits that judged ``outcome``: its ``images:`` rule's, else the top-level ones."""
        return self.policy.judging(outcome.policy_rule)

    @property
    def process_exit_code(self) -> ExitCode:
        """What the process exits with: the verdict's code, but 0 for violations in a report-only run
        (errors never become a pass)."""
        if self.report_only and self.exit_code == ExitCode.VIOLATION:
            return ExitCode.PASS
        return self.exit_code
