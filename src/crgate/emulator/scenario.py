"""Scenario data for the emulator: frozen dataclasses and a strict YAML/dict loader.

A scenario describes registries, repositories and images, the findings a scan of each image reports,
and how scans and calls behave (duration, end status, injected faults, protocol anomalies). Format::

    require_auth: false          # true: every non-IAM call needs a valid bearer token (see identities.py
                                 # for service accounts, roles, keys and accepted tokens)
    max_concurrent_scans: 10     # RUNNING scans allowed at once (Yandex's quota); null = unlimited
    faults:                      # faults for any call of a method, whatever the image (e.g. ImageService.List)
      - {method: ImageService.List, code: UNAVAILABLE, count: 1}
    registries:
      - id: crpdemo              # [a-z0-9]+
        repositories:
          - name: app            # may contain slashes (team/app); Yandex's repository-name pattern
            id: crprepoapp       # optional; default derived from registry id and name
            images:
              - id: crpdemoclean00000001     # [a-z0-9]+, at most 50 chars, unique in the scenario
                digest: "sha256:<64 hex>"
                tags: [clean, "1.0"]         # strings; a tag names one image per repository
                created_at: 2026-01-01T00:00:00Z   # optional, default: emulator start time
                compressed_size: 31457280    # optional, bytes
                findings:                    # counts are always derived from these
                  - {name: CVE-2023-4863, severity: CRITICAL, package: libwebp7, version: 1.2.4-0.2,
                     fixed_by: 1.2.4-0.2+deb12u1, link: "https://...", origin: os, type: debian,
                     source: dpkg}
                scan:                        # all optional
                  duration: 0.2              # seconds from Scan until the operation is done
                  status: READY              # end status READY | ERROR (ERROR if operation_error is set)
                  operation_error: {code: INTERNAL, message: scanner crashed}
                  anomaly: null              # see ANOMALIES
                  operation_not_found: 0     # OperationService.Get answers NOT_FOUND this often first
                  poll_interval: null        # seconds, sent as header x-operation-poll-interval
                  faults: []                 # like top-level faults, for calls about this image only
                  last_result: null          # {status: READY|ERROR, age_seconds: 3600}: a finished
                                             # result that exists before any Scan (for GetLast/List);
                                             # a negative age puts scanned_at in the future (skew)
                  running_scan: null         # {remaining_seconds: 2}: a scan already RUNNING at start
                                             # (scan-on-push), found by List(status="RUNNING")

Faults: ``{method, code, count: 1, message: "", lost_response: false}``. ``method`` is
``Service.Method`` (see ``METHODS``); ``code`` a gRPC status name; ``OK`` lets calls through, so a
list is a script: ``[{code: OK, count: 2}, {code: UNAVAILABLE}]`` = two successes, one failure, then
success. Each call of a method takes one unit from the first unexhausted entry for that method. A
large ``count`` (1000) makes a fault persistent. ``lost_response: true`` runs the call (a Scan is
really started) and then answers with the error, as when a response is lost on the way back
(``after: true`` is an alias).
Top-level faults are consulted first, then the image's ``scan.faults``.

Registry-side keys (image ``platform``/``format``, repository ``indexes``, top-level ``registry``; an
image's ``digest`` may be omitted) are documented in ``crgate.emulator.multiarch``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml

from crgate.emulator import multiarch
from crgate.emulator.identities import IDENTITY_KEYS, Identities, parse_identities
from crgate.errors import ConfigError
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

_ID_RE = re.compile(r"[a-z0-9]+")
_REPO_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_ID = 50


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
    platform: str | None = None
    media_type: str = multiarch.oci.OCI_MANIFEST
    manifest: bytes = field(default=b"", repr=False, compare=False)
    """What the registry endpoint serves for this image (``crgate.emulator.oci``)."""

    @property
    def manifest_digest(self) -> str:
        """The sha256 of ``manifest``: the digest the registry endpoint knows the image by."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

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
    registry: multiarch.RegistrySettings = field(default_factory=multiarch.RegistrySettings)

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


# ----------------------------------------------------------------------------------------------- loading


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file; raise ``ConfigError`` naming the file and key."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"emulator scenario {source}: cannot read: {exc.strerror or exc}") from exc
    return _load_text(text, source)


def demo_scenario() -> Scenario:
    """The built-in demo data (``demo.yaml`` shipped with the package)."""
    text = resources.files("crgate.emulator").joinpath("demo.yaml").read_text(encoding="utf-8")
    return _load_text(text, "built-in demo.yaml")


def scenario_from_dict(data: Any, source: str = "<dict>") -> Scenario:
    """Validate already-parsed data (as from ``yaml.safe_load``)."""
    return _Parser(source).scenario(data)


def _load_text(text: str, source: str) -> Scenario:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        where = f"{source}:{line}" if line else source
        raise ConfigError(f"emulator scenario {where}: invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"emulator scenario {source}: invalid YAML: {exc}") from exc
    return scenario_from_dict(data, source)


class _LineDict(dict[str, Any]):
    """A mapping that remembers the line it started on."""

    line: int | None = None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and records line numbers of mappings."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Parser:
    """Turns plain data into a Scenario, collecting the key path for error messages."""

    def __init__(self, source: str):
        self.source = source

    # -- helpers

    def fail(self, path: str, message: str, node: Any = None) -> NoReturn:
        line = getattr(node, "line", None)
        where = f"{self.source}:{line}" if line else self.source
        raise ConfigError(f"emulator scenario {where} (key '{path or '<root>'}'): {message}")

    def mapping(self, value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.fail(_join(path, str(key)), f"unknown key (allowed: {', '.join(allowed)})", value)
        for key in required:
            if value.get(key) is None:
                self.fail(_join(path, key), "required key is missing", value)
        return dict(value)

    def seq(self, value: Any, path: str, parent: Any = None) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_kind(value)}", parent)
        return value

    def string(self, value: Any, path: str, parent: Any, *, default: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value:
            hint = " (quote it)" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            self.fail(path, f"expected a non-empty string, got {_kind(value)}{hint}", parent)
        return value

    def text(self, value: Any, path: str, parent: Any) -> str:
        """An optional free-text field: absent or null means empty."""
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_kind(value)} (quote it)", parent)
        return value

    def ident(self, value: Any, path: str, parent: Any) -> str:
        text = self.string(value, path, parent)
        if not _ID_RE.fullmatch(text) or len(text) > _MAX_ID:
            self.fail(path, f"{text!r} is not an id ([a-z0-9]+, at most {_MAX_ID} characters)", parent)
        return text

    def number(self, value: Any, path: str, parent: Any, *, default: float, minimum: float = 0.0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.fail(path, f"expected a number >= {minimum:g}, got {value!r}", parent)
        return float(value)

    def integer(self, value: Any, path: str, parent: Any, *, default: int, minimum: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected an integer >= {minimum}, got {value!r}", parent)
        return value

    def boolean(self, value: Any, path: str, parent: Any, *, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}", parent)
        return value

    def choice(self, value: Any, path: str, parent: Any, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value.upper() not in choices:
            self.fail(path, f"expected one of {', '.join(choices)}, got {value!r}", parent)
        return value.upper()

    def timestamp(self, value: Any, path: str, parent: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.fail(path, f"expected an RFC 3339 timestamp, got {value!r}", parent)
        if not isinstance(value, dt.datetime):
            self.fail(path, f"expected an RFC 3339 timestamp, got {value!r}", parent)
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    # -- structure

    def scenario(self, data: Any) -> Scenario:
        if data is None:
            self.fail("", "the scenario is empty")
        allowed = (
            "registries",
            "faults",
            "require_auth",
            "max_concurrent_scans",
            *IDENTITY_KEYS,
            *multiarch.SCENARIO_KEYS,
        )
        raw = self.mapping(data, "", allowed, ("registries",))
        registries = tuple(
            self.registry(item, f"registries[{i}]")
            for i, item in enumerate(self.seq(raw["registries"], "registries", data))
        )
        self.check_unique(registries, data)
        faults = tuple(
            self.fault(item, f"faults[{i}]", METHODS)
            for i, item in enumerate(self.seq(raw.get("faults"), "faults", data))
        )
        limit = raw.get("max_concurrent_scans", 10)
        return Scenario(
            registries=registries,
            faults=faults,
            require_auth=self.boolean(raw.get("require_auth"), "require_auth", data, default=False),
            max_concurrent_scans=None
            if limit is None
            else self.integer(limit, "max_concurrent_scans", data, default=10, minimum=1),
            source=self.source,
            identities=parse_identities(self, raw, data),
            registry=multiarch.parse_registry(self, raw.get("registry"), data),
        )

    def check_unique(self, registries: tuple[Registry, ...], node: Any) -> None:
        seen_registries: set[str] = set()
        seen_repos: set[str] = set()
        seen_images: set[str] = set()
        for i, registry in enumerate(registries):
            if registry.id in seen_registries:
                self.fail(f"registries[{i}].id", f"duplicate registry id {registry.id!r}", node)
            seen_registries.add(registry.id)
            for repository in registry.repositories:
                if repository.id in seen_repos:
                    self.fail(f"registries[{i}]", f"duplicate repository id {repository.id!r}", node)
                seen_repos.add(repository.id)
                for image in repository.images:
                    if image.id in seen_images:
                        self.fail(f"registries[{i}]", f"duplicate image id {image.id!r}", node)
                    seen_images.add(image.id)

    def registry(self, data: Any, path: str) -> Registry:
        raw = self.mapping(data, path, ("id", "repositories"), ("id",))
        registry_id = self.ident(raw["id"], _join(path, "id"), data)
        items = self.seq(raw.get("repositories"), _join(path, "repositories"), data)
        repositories = tuple(
            self.repository(item, f"{path}.repositories[{i}]", registry_id) for i, item in enumerate(items)
        )
        names = [repo.name for repo in repositories]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.fail(f"{path}.repositories[{i}].name", f"duplicate repository {name!r}", data)
        return Registry(id=registry_id, repositories=repositories)

    def repository(self, data: Any, path: str, registry_id: str) -> Repository:
        raw = self.mapping(data, path, ("name", "id", "images", *multiarch.REPOSITORY_KEYS), ("name",))
        name = self.string(raw["name"], _join(path, "name"), data)
        if not _REPO_RE.fullmatch(name):
            self.fail(_join(path, "name"), f"{name!r} is not a valid repository name (lowercase, a-z0-9._-/)", data)
        repo_id = (
            _derived_repository_id(registry_id, name)
            if raw.get("id") is None
            else self.ident(raw["id"], _join(path, "id"), data)
        )
        items = self.seq(raw.get("images"), _join(path, "images"), data)
        images = tuple(self.image(item, f"{path}.images[{i}]", registry_id, name) for i, item in enumerate(items))
        images += multiarch.index_images(self, raw.get("indexes"), path, data, registry_id, name, images)
        owners: dict[str, str] = {}
        for i, image in enumerate(images):
            for tag in image.tags:
                if tag in owners:
                    self.fail(f"{path}.images[{i}].tags", f"tag {tag!r} already names image {owners[tag]}", data)
                owners[tag] = image.id
        return Repository(id=repo_id, name=name, images=images)

    def image(self, data: Any, path: str, registry_id: str, repository: str) -> Image:
        allowed = ("id", "digest", "tags", "created_at", "compressed_size", "findings", "scan", *multiarch.IMAGE_KEYS)
        raw = self.mapping(data, path, allowed, ("id",))
        image_id = self.ident(raw["id"], _join(path, "id"), data)
        registry_side = multiarch.image_fields(self, raw, path, data, image_id, f"{registry_id}/{repository}")
        digest = registry_side.pop("digest")
        if not _DIGEST_RE.fullmatch(digest):
            self.fail(_join(path, "digest"), f"expected 'sha256:' and 64 lowercase hex digits, got {digest!r}", data)
        tags_path = _join(path, "tags")
        tags = tuple(
            self.string(tag, f"{tags_path}[{i}]", data)
            for i, tag in enumerate(self.seq(raw.get("tags"), tags_path, data))
        )
        if len(set(tags)) != len(tags):
            self.fail(tags_path, "duplicate tag", data)
        findings_path = _join(path, "findings")
        return Image(
            id=image_id,
            registry_id=registry_id,
            repository=repository,
            digest=digest,
            tags=tags,
            created_at=self.timestamp(raw.get("created_at"), _join(path, "created_at"), data),
            compressed_size=self.integer(raw.get("compressed_size"), _join(path, "compressed_size"), data, default=0),
            findings=tuple(
                self.finding(item, f"{findings_path}[{i}]")
                for i, item in enumerate(self.seq(raw.get("findings"), findings_path, data))
            ),
            scan=self.scan(raw.get("scan"), _join(path, "scan")),
            **registry_side,
        )

    def finding(self, data: Any, path: str) -> Finding:
        optional = ("version", "fixed_by", "link", "origin", "type", "source")
        raw = self.mapping(data, path, ("name", "severity", "package", *optional), ("name", "severity", "package"))
        texts = {key: self.text(raw.get(key), _join(path, key), data) for key in optional}
        return Finding(
            name=self.string(raw["name"], _join(path, "name"), data),
            severity=self.choice(raw["severity"], _join(path, "severity"), data, SEVERITY_NAMES),
            package=self.string(raw["package"], _join(path, "package"), data),
            **{**texts, "origin": texts["origin"] or "os"},
        )

    def scan(self, data: Any, path: str) -> ScanBehaviour:
        if data is None:
            return ScanBehaviour()
        allowed = (
            "duration",
            "status",
            "operation_error",
            "anomaly",
            "operation_not_found",
            "poll_interval",
            "faults",
            "last_result",
            "running_scan",
        )
        raw = self.mapping(data, path, allowed)
        operation_error = None
        if raw.get("operation_error") is not None:
            err_path = _join(path, "operation_error")
            err = self.mapping(raw["operation_error"], err_path, ("code", "message"), ("code",))
            code = self.choice(err["code"], _join(err_path, "code"), data, GRPC_CODES)
            if code == "OK":
                self.fail(_join(err_path, "code"), "an operation error cannot have code OK", data)
            message = self.text(err.get("message"), _join(err_path, "message"), data)
            operation_error = OperationError(code=code, message=message or "scan failed")
        status = "ERROR" if operation_error else "READY"
        if raw.get("status") is not None:
            status = self.choice(raw["status"], _join(path, "status"), data, END_STATUSES)
            if operation_error and status != "ERROR":
                self.fail(_join(path, "status"), "must be ERROR when operation_error is set", data)
        anomaly = None
        if raw.get("anomaly") is not None:
            value = raw["anomaly"]
            if value not in ANOMALIES:
                self.fail(_join(path, "anomaly"), f"expected one of {', '.join(ANOMALIES)}, got {value!r}", data)
            anomaly = value
        poll_interval = None
        if raw.get("poll_interval") is not None:
            poll_interval = self.number(raw["poll_interval"], _join(path, "poll_interval"), data, default=0)
        faults_path = _join(path, "faults")
        return ScanBehaviour(
            duration=self.number(raw.get("duration"), _join(path, "duration"), data, default=DEFAULT_SCAN_DURATION),
            status=status,
            operation_error=operation_error,
            anomaly=anomaly,
            operation_not_found=self.integer(
                raw.get("operation_not_found"), _join(path, "operation_not_found"), data, default=0
            ),
            poll_interval=poll_interval,
            faults=tuple(
                self.fault(item, f"{faults_path}[{i}]", IMAGE_METHODS)
                for i, item in enumerate(self.seq(raw.get("faults"), faults_path, data))
            ),
            last_result=self.last_result(raw.get("last_result"), _join(path, "last_result")),
            running_scan=self.running_scan(raw.get("running_scan"), _join(path, "running_scan")),
        )

    def running_scan(self, data: Any, path: str) -> RunningScan | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("remaining_seconds",))
        remaining = self.number(raw.get("remaining_seconds"), _join(path, "remaining_seconds"), data, default=2.0)
        return RunningScan(remaining_seconds=remaining)

    def last_result(self, data: Any, path: str) -> LastResult | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("status", "age_seconds"))
        status = (
            "READY"
            if raw.get("status") is None
            else self.choice(raw["status"], _join(path, "status"), data, END_STATUSES)
        )
        age = self.number(
            raw.get("age_seconds"), _join(path, "age_seconds"), data, default=3600.0, minimum=-float("inf")
        )
        return LastResult(status=status, age_seconds=age)

    def fault(self, data: Any, path: str, methods: Sequence[str]) -> Fault:
        keys = ("method", "code", "count", "message", "lost_response", "after")
        raw = self.mapping(data, path, keys, ("method", "code"))
        method = raw["method"]
        if method not in methods:
            hint = " (only top-level faults may target it)" if method in METHODS else ""
            self.fail(_join(path, "method"), f"expected one of {', '.join(methods)}, got {method!r}{hint}", data)
        code = self.choice(raw["code"], _join(path, "code"), data, GRPC_CODES)
        lost = self.boolean(raw.get("lost_response"), _join(path, "lost_response"), data, default=False)
        after = self.boolean(raw.get("after"), _join(path, "after"), data, default=lost)
        if "lost_response" in raw and "after" in raw and after != lost:
            self.fail(_join(path, "after"), "contradicts lost_response (after is its alias)", data)
        lost = after
        if lost and code == "OK":
            self.fail(_join(path, "lost_response"), "needs an error code, not OK", data)
        return Fault(
            method=method,
            code=code,
            count=self.integer(raw.get("count"), _join(path, "count"), data, default=1, minimum=1),
            message=self.text(raw.get("message"), _join(path, "message"), data),
            lost_response=lost,
        )


def _derived_repository_id(registry_id: str, name: str) -> str:
    """A stable, id-shaped repository id: ``crprepo`` + 13 characters derived from the name."""
    return "crprepo" + hashlib.sha256(f"{registry_id}/{name}".encode()).hexdigest()[:13]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, Mapping) else type(value).__name__
    )
