"""Plain, frozen data that crosses module boundaries. No gRPC or YAML types ever leave their modules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# The six severities of Yandex's VulnerabilityStats, in the order users read them. "undefined" is what
# Yandex's docs call "other" vulnerabilities.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "negligible", "undefined")
# Policy threshold keys: every severity plus the sum of all of them.
THRESHOLD_KEYS: tuple[str, ...] = (*SEVERITIES, "total")


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

    @property
    def uses_findings(self) -> bool:
        """True when judging needs the individual findings, not only the scan's counts."""
        return bool(self.fixable_only or self.only_fixed or self.ignore or self.baseline)

    def counts_fixable_only(self, key: str) -> bool:
        return self.only_fixed or key in self.fixable_only


@dataclass(frozen=True)
class Violation:
    """One exceeded limit: ``count > limit``."""

    severity: str
    count: int
    limit: int


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class JudgedFinding:
    """A finding and the policy's decision about it (``rule`` names the ignore rule when ignored)."""

    finding: Finding
    decision: str
    rule: str | None = None


ProgressCallback = Callable[[str, "str | None"], None]
"""``(state, scan_result_id)`` from the scanner client: ``running`` (each poll) and ``done``."""


@dataclass
class ScanTracker:
    """What one image's scan has revealed so far (mutable, filled in by the scanner client while it
    works); read by the CLI to say which scans were left running when a run is interrupted."""

    image_id: str | None = None
    operation_id: str | None = None
    scan_result_id: str | None = None
    polls: int = 0
    finished: bool = False


@dataclass(frozen=True)
class ErrorInfo:
    """Why an image has no verdict: the user-facing message and what identifies the failing call."""

    kind: str
    """``config``, ``scan``, ``not_found``, ``malformed``, ``timeout`` or ``interrupted``."""
    message: str
    exit_code: int
    code: str | None = None
    method: str | None = None
    request_ids: tuple[str, ...] = ()


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
    origin: str = "scanned"
    """How the result was obtained: ``scanned`` (a new scan), ``reused`` or ``joined``."""
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        if self.result is None:  # no result and no error cannot happen; never let it pass
            return 3
        return 1 if self.violations else 0

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "fail"}.get(self.exit_code, "error")


@dataclass(frozen=True)
class RunReport:
    """The whole run: what every report format renders."""

    policy: Policy
    images: tuple[ImageOutcome, ...]
    exit_code: int
    tool_version: str
    started_at: dt.datetime
    finished_at: dt.datetime
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """Run-wide warnings: expiring/expired/stale ignore rules, a baseline judged without, ..."""
    stale_ignores: tuple[str, ...] = ()
    """Ignore rules that matched no finding of any image (a violation with fail_on_stale_ignores)."""
    baseline: Mapping[str, object] | None = None
    """The baseline used: ref, image_id, scan_result_id, origin and its (CVE, package) pairs."""
    unscannable: tuple[str, ...] = ()
    """Images named by manifests that lie outside Yandex Container Registry (``image (where)``)."""

    @property
    def verdict(self) -> str:
        return {0: "pass", 1: "fail"}.get(self.exit_code, "error")
