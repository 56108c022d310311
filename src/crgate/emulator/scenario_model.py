"""The emulator's scenario as frozen data: registries, repositories, images, findings and how scans and
calls behave. The file format and its loader are ``crgate.emulator.scenario``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from crgate.emulator.identities import Identities
from crgate.model import SeverityCounts

SEVERITY_NAMES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED")
END_STATUSES: tuple[str, ...] = ("READY", "ERROR")
ANOMALIES: tuple[str, ...] = (
    "done_without_result",  # done=true with neither error nor response
    "wrong_response_type",  # response is an Any holding an Image
    "missing_stats",  # ScanResult without the vulnerabilities field
    "negative_count",  # VulnerabilityStats.critical == -1
    "wrong_image_id",  # ScanResult.image_id is not the scanned image
    "wrong_metadata_type",  # metadata is an Any holding DeleteImageMetadata
    "running_status_when_done",  # done=true, but the ScanResult says RUNNING
    "error_before_done",  # done=false with error set; later done with a READY response
    "stats_mismatch",  # the ScanResult's stats count one critical more than the listed findings
)
GRPC_CODES: tuple[str, ...] = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# Methods whose calls concern one image, so per-image faults can apply to them.
IMAGE_METHODS: tuple[str, ...] = (
    "ScannerService.Scan",
    "ScannerService.Get",
    "ScannerService.GetLast",
    "ScannerService.List",
    "ScannerService.ListVulnerabilities",
    "OperationService.Get",
    "OperationService.Cancel",
    "ImageService.Get",
)
METHODS: tuple[str, ...] = (
    *IMAGE_METHODS,
    "ImageService.List",
    "IamTokenService.Create",
    "ApiEndpointService.List",
    "ApiEndpointService.Get",
)
DEFAULT_SCAN_DURATION = 0.2


@dataclass(frozen=True)
class Finding:
    """One vulnerable package: a ``Vulnerability`` on the wire."""

    name: str
    severity: str
    package: str
    version: str = ""
    fixed_by: str = ""
    link: str = ""
    origin: str = "os"
    type: str = ""
    source: str = ""


@dataclass(frozen=True)
class Fault:
    """A scripted answer for calls of ``method``: ``count`` calls get ``code`` (``OK`` = pass through)."""

    method: str
    code: str
    count: int = 1
    message: str = ""
    lost_response: bool = False


@dataclass(frozen=True)
class OperationError:
    """The ``google.rpc.Status`` a failed scan operation carries."""

    code: str
    message: str


@dataclass(frozen=True)
class LastResult:
    """A finished scan result that exists before the emulator starts."""

    status: str = "READY"
    age_seconds: float = 3600.0


@dataclass(frozen=True)
class RunningScan:
    """A scan that is already RUNNING when the emulator starts (not started by any client)."""

    remaining_seconds: float = 2.0


@dataclass(frozen=True)
class ScanBehaviour:
    """How scans of one image behave."""

    duration: float = DEFAULT_SCAN_DURATION
    status: str = "READY"
    operation_error: OperationError | None = None
    anomaly: str | None = None
    operation_not_found: int = 0
    poll_interval: float | None = None
    faults: tuple[Fault, ...] = ()
    last_result: LastResult | None = None
    running_scan: RunningScan | None = None


@dataclass(frozen=True)
class Image:
    """An image in a repository."""

    id: str
    registry_id: str
    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    created_at: dt.datetime | None = None
    compressed_size: int = 0
    findings: tuple[Finding, ...] = ()
    scan: ScanBehaviour = field(default_factory=ScanBehaviour)

    @property
    def repository_name(self) -> str:
        """``<registry-id>/<repository>``, which is also ``Image.name`` on the wire."""
        return f"{self.registry_id}/{self.repository}"

    def counts(self) -> SeverityCounts:
        """Counts per severity, derived from the findings."""
        totals = {name.lower(): 0 for name in SEVERITY_NAMES}
        for finding in self.findings:
            totals[finding.severity.lower()] += 1
        return SeverityCounts(**totals)


@dataclass(frozen=True)
class Repository:
    id: str
    name: str
    images: tuple[Image, ...] = ()


@dataclass(frozen=True)
class Registry:
    id: str
    repositories: tuple[Repository, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """Everything the emulator serves."""

    registries: tuple[Registry, ...] = ()
    faults: tuple[Fault, ...] = ()
    require_auth: bool = False
    max_concurrent_scans: int | None = 10
    source: str = "<dict>"
    identities: Identities = field(default_factory=Identities)

    def images(self) -> Iterator[Image]:
        for registry in self.registries:
            for repository in registry.repositories:
                yield from repository.images

    def image(self, image_id: str) -> Image | None:
        return next((image for image in self.images() if image.id == image_id), None)

    def repository(self, repository_id: str) -> Repository | None:
        for registry in self.registries:
            for repository in registry.repositories:
                if repository.id == repository_id:
                    return repository
        return None
