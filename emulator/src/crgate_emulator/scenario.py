"""Scenario data for the emulator: frozen dataclasses and a strict YAML/dict loader.

A scenario describes registries, repositories and images, the findings a scan of each image reports,
and how scans and calls behave (duration, end status, injected faults, protocol anomalies). Format::

    require_auth: false          # true: every non-IAM call needs a valid bearer token (see identities.py
                                 # for service accounts, roles, keys and accepted tokens)
    region: ru-central1          # or kz1: the emulated installation; its IAM wants JWTs with its audience
    quota: {limit: 10}           # concurrent scans per cloud, other clients' scans, refusal (clouds.py)
    scan_list_filter: supported  # or INVALID_ARGUMENT / UNIMPLEMENTED: ScannerService.List refuses any
                                 # filter (status="RUNNING"), as a server without filtering might
    faults:                      # faults for any call of a method, whatever the image (e.g. ImageService.List)
      - {method: ImageService.List, code: UNAVAILABLE, count: 1}
    chaos: {seed: 42, rate: 0.3} # random faults on a share of all calls, the same for a seed: dropped
                                 # connections, lost answers, stalls, transient codes, malformed answers,
                                 # quota refusals, revoked tokens (keys and kinds: see chaos.py)
    registries:
      - id: crpdemo              # [a-z0-9]+
        cloud: null              # optional: a cloud declared under `clouds:` (clouds.py); default cloud
        folder: null             # optional: the folder id the registry lives in (ImageService.List by
                                 # folder_id lists every registry of it); default DEFAULT_FOLDER_ID
        scan_policy: null        # optional: scan on push and rescan schedules (scanpolicy.py)
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
                     source: trivy}          # as the real scanner: source trivy; language packages
                                             # have origin lang and type jar, gobinary, python-pkg...
                scan:                        # all optional
                  duration: 0.2              # seconds from Scan until the operation is done
                  status: READY              # end status READY | ERROR (ERROR if operation_error is set)
                  operation_error: {code: INTERNAL, message: scanner crashed}
                  anomaly: null              # see ANOMALIES
                  operation_not_found: 0     # OperationService.Get answers NOT_FOUND this often first
                  poll_interval: null        # seconds, sent as header x-operation-poll-interval on
                                             # Scan, OperationService.Get and a running scan's
                                             # ScannerService.Get
                  faults: []                 # like top-level faults, for calls about this image only
                  last_result: null          # {status: READY|ERROR, age_seconds: 3600}: a finished
                                             # result that exists before any Scan (for GetLast/List);
                                             # a negative age puts scanned_at in the future (skew);
                                             # aged results carry the image's findings, and an image
                                             # without one was never scanned (an audit's finding)
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
image's ``digest`` may be omitted) are documented in ``crgate_emulator.multiarch``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crgate import inputs
from crgate.errors import ConfigError
from crgate.model import SeverityCounts
from crgate.regions import DEFAULT_REGION, REGIONS, Region, region_named
from crgate.yamlstrict import Rules, plain_data, read_document
from crgate_emulator import multiarch
from crgate_emulator.chaos import ChaosSettings, parse_chaos
from crgate_emulator.clouds import DEFAULT_CLOUD_ID, Cloud, check_cloud, parse_clouds
from crgate_emulator.fields import GRPC_CODES, FieldParser, join
from crgate_emulator.identities import IDENTITY_KEYS, Identities, parse_identities
from crgate_emulator.scanpolicy import REGISTRY_KEYS as SCAN_POLICY_KEYS
from crgate_emulator.scanpolicy import ScanPolicySpec, parse_scan_policy

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
    "ScanPolicyService.GetByRegistry",
    "IamTokenService.Create",
    "ApiEndpointService.List",
    "ApiEndpointService.Get",
)
DEFAULT_SCAN_DURATION = 0.2
# How ScannerService.List answers a request with a `filter` (crgate's status="RUNNING" lookup):
# "supported", or refused the way a server without filtering might refuse it.
LIST_FILTER_ANSWERS: tuple[str, ...] = ("SUPPORTED", "INVALID_ARGUMENT", "UNIMPLEMENTED")
SCENARIO_KEYS = ("region", "scan_list_filter")
QUOTA_KEYS_TOP = ("quota", "clouds", "max_concurrent_scans")

_REPO_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class ScenarioVulnerability:
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
    findings: tuple[ScenarioVulnerability, ...] = ()
    scan: ScanBehaviour = field(default_factory=ScanBehaviour)
    platform: str | None = None
    media_type: str = multiarch.oci.OCI_MANIFEST
    manifest: bytes = field(default=b"", repr=False, compare=False)
    """What the registry endpoint serves for this image (``crgate_emulator.oci``)."""

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


DEFAULT_FOLDER_ID = "b1gemulatorfolder001"


@dataclass(frozen=True)
class Registry:
    id: str
    repositories: tuple[Repository, ...] = ()
    cloud_id: str = DEFAULT_CLOUD_ID
    folder_id: str = DEFAULT_FOLDER_ID
    scan_policy: ScanPolicySpec | None = None
    """Its scan policy (``crgate_emulator.scanpolicy``); None: the registry has none."""


@dataclass(frozen=True)
class Scenario:
    """Everything the emulator serves."""

    registries: tuple[Registry, ...] = ()
    faults: tuple[Fault, ...] = ()
    require_auth: bool = False
    source: str = "<dict>"
    identities: Identities = field(default_factory=Identities)
    clouds: tuple[Cloud, ...] = (Cloud(DEFAULT_CLOUD_ID),)
    region: Region = DEFAULT_REGION
    scan_list_filter: str = "SUPPORTED"  # one of LIST_FILTER_ANSWERS
    chaos: ChaosSettings | None = None
    """Random faults on a share of calls (``crgate_emulator.chaos``); None: only the scripted ones."""

    @property
    def max_concurrent_scans(self) -> int | None:
        """The default cloud's quota of concurrent scans (None: unlimited)."""
        return self.clouds[0].quota.limit

    def cloud(self, cloud_id: str) -> Cloud:
        return next(cloud for cloud in self.clouds if cloud.id == cloud_id)

    def cloud_of(self, image: Image) -> Cloud:
        """The cloud whose quota a scan of ``image`` counts against."""
        registry = next(registry for registry in self.registries if registry.id == image.registry_id)
        return self.cloud(registry.cloud_id)

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


# Scenarios are test data: generous bounds, merge keys honoured (a scenario may share image blocks).
SCENARIO_RULES = Rules(name="scenario", max_depth=32, max_nodes=1_000_000, max_expanded=1_000_000, merge_keys=True)


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file (bounded in size and structure); ``ConfigError`` names the
    file and key."""
    source = str(path)

    def error(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"emulator scenario {source}{'' if line is None else f':{line}'}: {message}")

    return _load_text(inputs.read_text(path, inputs.SCENARIO, error), source)


def scenario_of(path: str | Path | None) -> Scenario:
    """The scenario of a file (``--data``, ``--emulator-data``), else the built-in demo."""
    return load_scenario(path) if path else demo_scenario()


def demo_scenario() -> Scenario:
    """The built-in demo data (``demo.yaml`` shipped with the package)."""
    text = resources.files("crgate_emulator").joinpath("demo.yaml").read_text(encoding="utf-8")
    return _load_text(text, "built-in demo.yaml")


def scenario_from_dict(data: Any, source: str = "<dict>") -> Scenario:
    """Validate already-parsed data (as from ``yaml.safe_load``)."""
    return _Parser(source).scenario(data)


def _load_text(text: str, source: str) -> Scenario:
    def error(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ConfigError:
        where = f"{source}:{line}" if line else source
        return ConfigError(f"emulator scenario {where}: {message}")

    root = read_document(text, SCENARIO_RULES, error)
    return scenario_from_dict(None if root is None else plain_data(root, error), source)


class _Parser(FieldParser):
    """Turns plain data into a Scenario, collecting the key path for error messages."""

    # -- structure

    def scenario(self, data: Any) -> Scenario:
        if data is None:
            self.fail("", "the scenario is empty")
        allowed = (
            "registries",
            "faults",
            "chaos",
            "require_auth",
            *SCENARIO_KEYS,
            *QUOTA_KEYS_TOP,
            *IDENTITY_KEYS,
            *multiarch.SCENARIO_KEYS,
        )
        raw = self.mapping(data, "", allowed, ("registries",))
        clouds = parse_clouds(self, raw, data)
        registries = tuple(
            self.registry(item, f"registries[{i}]", clouds)
            for i, item in enumerate(self.seq(raw["registries"], "registries", data))
        )
        self.check_unique(registries, data)
        if isinstance(raw.get("faults"), str):
            why = "expected a list of scripted faults; random faults are the chaos: key (chaos: {seed: 42})"
            self.fail("faults", why, data)
        faults = tuple(
            self.fault(item, f"faults[{i}]", METHODS)
            for i, item in enumerate(self.seq(raw.get("faults"), "faults", data))
        )
        region = DEFAULT_REGION
        if raw.get("region") is not None:
            name = self.string(raw["region"], "region", data)
            if name not in (known.name for known in REGIONS):
                self.fail("region", f"expected one of {', '.join(r.name for r in REGIONS)}, got {name!r}", data)
            region = region_named(name)
        list_filter = "SUPPORTED"
        if raw.get("scan_list_filter") is not None:
            list_filter = self.choice(raw["scan_list_filter"], "scan_list_filter", data, LIST_FILTER_ANSWERS)
        return Scenario(
            registries=registries,
            faults=faults,
            require_auth=self.boolean(raw.get("require_auth"), "require_auth", data, default=False),
            source=self.source,
            identities=parse_identities(self, raw, data),
            clouds=clouds,
            region=region,
            scan_list_filter=list_filter,
            registry=multiarch.parse_registry(self, raw.get("registry"), data),
            chaos=parse_chaos(self, raw.get("chaos"), METHODS),
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

    def registry(self, data: Any, path: str, clouds: tuple[Cloud, ...]) -> Registry:
        raw = self.mapping(data, path, ("id", "cloud", "folder", "repositories", *SCAN_POLICY_KEYS), ("id",))
        registry_id = self.ident(raw["id"], join(path, "id"), data)
        folder_id = DEFAULT_FOLDER_ID
        if raw.get("folder") is not None:
            folder_id = self.ident(raw["folder"], join(path, "folder"), data)
        cloud_id = DEFAULT_CLOUD_ID
        if raw.get("cloud") is not None:
            cloud_id = check_cloud(self, self.ident(raw["cloud"], join(path, "cloud"), data), clouds, path, data)
        items = self.seq(raw.get("repositories"), join(path, "repositories"), data)
        repositories = tuple(
            self.repository(item, f"{path}.repositories[{i}]", registry_id) for i, item in enumerate(items)
        )
        names = [repo.name for repo in repositories]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.fail(f"{path}.repositories[{i}].name", f"duplicate repository {name!r}", data)
        scan_policy = parse_scan_policy(self, raw.get("scan_policy"), join(path, "scan_policy"), registry_id)
        return Registry(
            id=registry_id, repositories=repositories, cloud_id=cloud_id, folder_id=folder_id, scan_policy=scan_policy
        )

    def repository(self, data: Any, path: str, registry_id: str) -> Repository:
        raw = self.mapping(data, path, ("name", "id", "images", *multiarch.REPOSITORY_KEYS), ("name",))
        name = self.string(raw["name"], join(path, "name"), data)
        if not _REPO_RE.fullmatch(name):
            self.fail(join(path, "name"), f"{name!r} is not a valid repository name (lowercase, a-z0-9._-/)", data)
        repo_id = (
            _derived_repository_id(registry_id, name)
            if raw.get("id") is None
            else self.ident(raw["id"], join(path, "id"), data)
        )
        items = self.seq(raw.get("images"), join(path, "images"), data)
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
        image_id = self.ident(raw["id"], join(path, "id"), data)
        registry_side = multiarch.image_fields(self, raw, path, data, image_id, f"{registry_id}/{repository}")
        digest = registry_side.pop("digest")
        if not _DIGEST_RE.fullmatch(digest):
            self.fail(join(path, "digest"), f"expected 'sha256:' and 64 lowercase hex digits, got {digest!r}", data)
        tags_path = join(path, "tags")
        tags = tuple(
            self.string(tag, f"{tags_path}[{i}]", data)
            for i, tag in enumerate(self.seq(raw.get("tags"), tags_path, data))
        )
        if len(set(tags)) != len(tags):
            self.fail(tags_path, "duplicate tag", data)
        findings_path = join(path, "findings")
        return Image(
            id=image_id,
            registry_id=registry_id,
            repository=repository,
            digest=digest,
            tags=tags,
            created_at=self.timestamp(raw.get("created_at"), join(path, "created_at"), data),
            compressed_size=self.integer(raw.get("compressed_size"), join(path, "compressed_size"), data, default=0),
            findings=tuple(
                self.finding(item, f"{findings_path}[{i}]")
                for i, item in enumerate(self.seq(raw.get("findings"), findings_path, data))
            ),
            scan=self.scan(raw.get("scan"), join(path, "scan")),
            **registry_side,
        )

    def finding(self, data: Any, path: str) -> ScenarioVulnerability:
        optional = ("version", "fixed_by", "link", "origin", "type", "source")
        raw = self.mapping(data, path, ("name", "severity", "package", *optional), ("name", "severity", "package"))
        texts = {key: self.text(raw.get(key), join(path, key), data) for key in optional}
        return ScenarioVulnerability(
            name=self.string(raw["name"], join(path, "name"), data),
            severity=self.choice(raw["severity"], join(path, "severity"), data, SEVERITY_NAMES),
            package=self.string(raw["package"], join(path, "package"), data),
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
            err_path = join(path, "operation_error")
            err = self.mapping(raw["operation_error"], err_path, ("code", "message"), ("code",))
            code = self.choice(err["code"], join(err_path, "code"), data, GRPC_CODES)
            if code == "OK":
                self.fail(join(err_path, "code"), "an operation error cannot have code OK", data)
            message = self.text(err.get("message"), join(err_path, "message"), data)
            operation_error = OperationError(code=code, message=message or "scan failed")
        status = "ERROR" if operation_error else "READY"
        if raw.get("status") is not None:
            status = self.choice(raw["status"], join(path, "status"), data, END_STATUSES)
            if operation_error and status != "ERROR":
                self.fail(join(path, "status"), "must be ERROR when operation_error is set", data)
        anomaly = None
        if raw.get("anomaly") is not None:
            value = raw["anomaly"]
            if value not in ANOMALIES:
                self.fail(join(path, "anomaly"), f"expected one of {', '.join(ANOMALIES)}, got {value!r}", data)
            anomaly = value
        poll_interval = None
        if raw.get("poll_interval") is not None:
            poll_interval = self.number(raw["poll_interval"], join(path, "poll_interval"), data, default=0)
        faults_path = join(path, "faults")
        return ScanBehaviour(
            duration=self.number(raw.get("duration"), join(path, "duration"), data, default=DEFAULT_SCAN_DURATION),
            status=status,
            operation_error=operation_error,
            anomaly=anomaly,
            operation_not_found=self.integer(
                raw.get("operation_not_found"), join(path, "operation_not_found"), data, default=0
            ),
            poll_interval=poll_interval,
            faults=tuple(
                self.fault(item, f"{faults_path}[{i}]", IMAGE_METHODS)
                for i, item in enumerate(self.seq(raw.get("faults"), faults_path, data))
            ),
            last_result=self.last_result(raw.get("last_result"), join(path, "last_result")),
            running_scan=self.running_scan(raw.get("running_scan"), join(path, "running_scan")),
        )

    def running_scan(self, data: Any, path: str) -> RunningScan | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("remaining_seconds",))
        remaining = self.number(raw.get("remaining_seconds"), join(path, "remaining_seconds"), data, default=2.0)
        return RunningScan(remaining_seconds=remaining)

    def last_result(self, data: Any, path: str) -> LastResult | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("status", "age_seconds"))
        status = (
            "READY"
            if raw.get("status") is None
            else self.choice(raw["status"], join(path, "status"), data, END_STATUSES)
        )
        age = self.number(
            raw.get("age_seconds"), join(path, "age_seconds"), data, default=3600.0, minimum=-float("inf")
        )
        return LastResult(status=status, age_seconds=age)

    def fault(self, data: Any, path: str, methods: Sequence[str]) -> Fault:
        keys = ("method", "code", "count", "message", "lost_response", "after")
        raw = self.mapping(data, path, keys, ("method", "code"))
        method = raw["method"]
        if method not in methods:
            hint = " (only top-level faults may target it)" if method in METHODS else ""
            self.fail(join(path, "method"), f"expected one of {', '.join(methods)}, got {method!r}{hint}", data)
        code = self.choice(raw["code"], join(path, "code"), data, GRPC_CODES)
        lost = self.boolean(raw.get("lost_response"), join(path, "lost_response"), data, default=False)
        after = self.boolean(raw.get("after"), join(path, "after"), data, default=lost)
        if "lost_response" in raw and "after" in raw and after != lost:
            self.fail(join(path, "after"), "contradicts lost_response (after is its alias)", data)
        lost = after
        if lost and code == "OK":
            self.fail(join(path, "lost_response"), "needs an error code, not OK", data)
        return Fault(
            method=method,
            code=code,
            count=self.integer(raw.get("count"), join(path, "count"), data, default=1, minimum=1),
            message=self.text(raw.get("message"), join(path, "message"), data),
            lost_response=lost,
        )


def _derived_repository_id(registry_id: str, name: str) -> str:
    """A stable, id-shaped repository id: ``crprepo`` + 13 characters derived from the name."""
    return "crprepo" + hashlib.sha256(f"{registry_id}/{name}".encode()).hexdigest()[:13]
