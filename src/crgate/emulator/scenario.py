"""The emulator's scenario file and its strict loader (YAML via ``crgate.yamlstrict``, or a dict); the
frozen data classes it builds are ``crgate.emulator.scenario_model`` (re-exported here).

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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from crgate import inputs
from crgate.emulator.identities import IDENTITY_KEYS, parse_identities
from crgate.emulator.scenario_model import (
    ANOMALIES,
    DEFAULT_SCAN_DURATION,
    END_STATUSES,
    GRPC_CODES,
    IMAGE_METHODS,
    METHODS,
    SEVERITY_NAMES,
    Fault,
    Finding,
    Image,
    LastResult,
    OperationError,
    Registry,
    Repository,
    RunningScan,
    ScanBehaviour,
    Scenario,
)
from crgate.errors import ConfigError
from crgate.yamlstrict import Rules, join_path, plain_data, read_document

__all__ = [
    "SEVERITY_NAMES",
    "END_STATUSES",
    "ANOMALIES",
    "GRPC_CODES",
    "IMAGE_METHODS",
    "METHODS",
    "DEFAULT_SCAN_DURATION",
    "Finding",
    "Fault",
    "OperationError",
    "LastResult",
    "RunningScan",
    "ScanBehaviour",
    "Image",
    "Repository",
    "Registry",
    "Scenario",
    "demo_scenario",
    "load_scenario",
    "scenario_from_dict",
]

_ID_RE = re.compile(r"[a-z0-9]+")
_REPO_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_ID = 50
# Scenarios are test data: generous bounds, merge keys honoured (a scenario may share image blocks).
SCENARIO_RULES = Rules(name="scenario", max_depth=32, max_nodes=1_000_000, max_expanded=1_000_000, merge_keys=True)


# ----------------------------------------------------------------------------------------------- loading


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario YAML file; raise ``ConfigError`` naming the file and key."""
    source = str(path)

    def error(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"emulator scenario {source}{'' if line is None else f':{line}'}: {message}")

    try:
        data = inputs.read_file(path, inputs.SCENARIO, error)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}") from None
    return _load_text(inputs.decode_utf8(data, error), source)


def demo_scenario() -> Scenario:
    """The built-in demo data (``demo.yaml`` shipped with the package)."""
    text = resources.files("crgate.emulator").joinpath("demo.yaml").read_text(encoding="utf-8")
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
                self.fail(join_path(path, str(key)), f"unknown key (allowed: {', '.join(allowed)})", value)
        for key in required:
            if value.get(key) is None:
                self.fail(join_path(path, key), "required key is missing", value)
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
        allowed = ("registries", "faults", "require_auth", "max_concurrent_scans", *IDENTITY_KEYS)
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
        registry_id = self.ident(raw["id"], join_path(path, "id"), data)
        items = self.seq(raw.get("repositories"), join_path(path, "repositories"), data)
        repositories = tuple(
            self.repository(item, f"{path}.repositories[{i}]", registry_id) for i, item in enumerate(items)
        )
        names = [repo.name for repo in repositories]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.fail(f"{path}.repositories[{i}].name", f"duplicate repository {name!r}", data)
        return Registry(id=registry_id, repositories=repositories)

    def repository(self, data: Any, path: str, registry_id: str) -> Repository:
        raw = self.mapping(data, path, ("name", "id", "images"), ("name",))
        name = self.string(raw["name"], join_path(path, "name"), data)
        if not _REPO_RE.fullmatch(name):
            self.fail(join_path(path, "name"), f"{name!r} is not a valid repository name (lowercase, a-z0-9._-/)", data)
        repo_id = (
            _derived_repository_id(registry_id, name)
            if raw.get("id") is None
            else self.ident(raw["id"], join_path(path, "id"), data)
        )
        items = self.seq(raw.get("images"), join_path(path, "images"), data)
        images = tuple(self.image(item, f"{path}.images[{i}]", registry_id, name) for i, item in enumerate(items))
        owners: dict[str, str] = {}
        for i, image in enumerate(images):
            for tag in image.tags:
                if tag in owners:
                    self.fail(f"{path}.images[{i}].tags", f"tag {tag!r} already names image {owners[tag]}", data)
                owners[tag] = image.id
        return Repository(id=repo_id, name=name, images=images)

    def image(self, data: Any, path: str, registry_id: str, repository: str) -> Image:
        allowed = ("id", "digest", "tags", "created_at", "compressed_size", "findings", "scan")
        raw = self.mapping(data, path, allowed, ("id", "digest"))
        digest = self.string(raw["digest"], join_path(path, "digest"), data)
        if not _DIGEST_RE.fullmatch(digest):
            self.fail(
                join_path(path, "digest"), f"expected 'sha256:' and 64 lowercase hex digits, got {digest!r}", data
            )
        tags_path = join_path(path, "tags")
        tags = tuple(
            self.string(tag, f"{tags_path}[{i}]", data)
            for i, tag in enumerate(self.seq(raw.get("tags"), tags_path, data))
        )
        if len(set(tags)) != len(tags):
            self.fail(tags_path, "duplicate tag", data)
        findings_path = join_path(path, "findings")
        return Image(
            id=self.ident(raw["id"], join_path(path, "id"), data),
            registry_id=registry_id,
            repository=repository,
            digest=digest,
            tags=tags,
            created_at=self.timestamp(raw.get("created_at"), join_path(path, "created_at"), data),
            compressed_size=self.integer(
                raw.get("compressed_size"), join_path(path, "compressed_size"), data, default=0
            ),
            findings=tuple(
                self.finding(item, f"{findings_path}[{i}]")
                for i, item in enumerate(self.seq(raw.get("findings"), findings_path, data))
            ),
            scan=self.scan(raw.get("scan"), join_path(path, "scan")),
        )

    def finding(self, data: Any, path: str) -> Finding:
        optional = ("version", "fixed_by", "link", "origin", "type", "source")
        raw = self.mapping(data, path, ("name", "severity", "package", *optional), ("name", "severity", "package"))
        texts = {key: self.text(raw.get(key), join_path(path, key), data) for key in optional}
        return Finding(
            name=self.string(raw["name"], join_path(path, "name"), data),
            severity=self.choice(raw["severity"], join_path(path, "severity"), data, SEVERITY_NAMES),
            package=self.string(raw["package"], join_path(path, "package"), data),
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
            err_path = join_path(path, "operation_error")
            err = self.mapping(raw["operation_error"], err_path, ("code", "message"), ("code",))
            code = self.choice(err["code"], join_path(err_path, "code"), data, GRPC_CODES)
            if code == "OK":
                self.fail(join_path(err_path, "code"), "an operation error cannot have code OK", data)
            message = self.text(err.get("message"), join_path(err_path, "message"), data)
            operation_error = OperationError(code=code, message=message or "scan failed")
        status = "ERROR" if operation_error else "READY"
        if raw.get("status") is not None:
            status = self.choice(raw["status"], join_path(path, "status"), data, END_STATUSES)
            if operation_error and status != "ERROR":
                self.fail(join_path(path, "status"), "must be ERROR when operation_error is set", data)
        anomaly = None
        if raw.get("anomaly") is not None:
            value = raw["anomaly"]
            if value not in ANOMALIES:
                self.fail(join_path(path, "anomaly"), f"expected one of {', '.join(ANOMALIES)}, got {value!r}", data)
            anomaly = value
        poll_interval = None
        if raw.get("poll_interval") is not None:
            poll_interval = self.number(raw["poll_interval"], join_path(path, "poll_interval"), data, default=0)
        faults_path = join_path(path, "faults")
        return ScanBehaviour(
            duration=self.number(raw.get("duration"), join_path(path, "duration"), data, default=DEFAULT_SCAN_DURATION),
            status=status,
            operation_error=operation_error,
            anomaly=anomaly,
            operation_not_found=self.integer(
                raw.get("operation_not_found"), join_path(path, "operation_not_found"), data, default=0
            ),
            poll_interval=poll_interval,
            faults=tuple(
                self.fault(item, f"{faults_path}[{i}]", IMAGE_METHODS)
                for i, item in enumerate(self.seq(raw.get("faults"), faults_path, data))
            ),
            last_result=self.last_result(raw.get("last_result"), join_path(path, "last_result")),
            running_scan=self.running_scan(raw.get("running_scan"), join_path(path, "running_scan")),
        )

    def running_scan(self, data: Any, path: str) -> RunningScan | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("remaining_seconds",))
        remaining = self.number(raw.get("remaining_seconds"), join_path(path, "remaining_seconds"), data, default=2.0)
        return RunningScan(remaining_seconds=remaining)

    def last_result(self, data: Any, path: str) -> LastResult | None:
        if data is None:
            return None
        raw = self.mapping(data, path, ("status", "age_seconds"))
        status = (
            "READY"
            if raw.get("status") is None
            else self.choice(raw["status"], join_path(path, "status"), data, END_STATUSES)
        )
        age = self.number(
            raw.get("age_seconds"), join_path(path, "age_seconds"), data, default=3600.0, minimum=-float("inf")
        )
        return LastResult(status=status, age_seconds=age)

    def fault(self, data: Any, path: str, methods: Sequence[str]) -> Fault:
        keys = ("method", "code", "count", "message", "lost_response", "after")
        raw = self.mapping(data, path, keys, ("method", "code"))
        method = raw["method"]
        if method not in methods:
            hint = " (only top-level faults may target it)" if method in METHODS else ""
            self.fail(join_path(path, "method"), f"expected one of {', '.join(methods)}, got {method!r}{hint}", data)
        code = self.choice(raw["code"], join_path(path, "code"), data, GRPC_CODES)
        lost = self.boolean(raw.get("lost_response"), join_path(path, "lost_response"), data, default=False)
        after = self.boolean(raw.get("after"), join_path(path, "after"), data, default=lost)
        if "lost_response" in raw and "after" in raw and after != lost:
            self.fail(join_path(path, "after"), "contradicts lost_response (after is its alias)", data)
        lost = after
        if lost and code == "OK":
            self.fail(join_path(path, "lost_response"), "needs an error code, not OK", data)
        return Fault(
            method=method,
            code=code,
            count=self.integer(raw.get("count"), join_path(path, "count"), data, default=1, minimum=1),
            message=self.text(raw.get("message"), join_path(path, "message"), data),
            lost_response=lost,
        )


def _derived_repository_id(registry_id: str, name: str) -> str:
    """A stable, id-shaped repository id: ``crprepo`` + 13 characters derived from the name."""
    return "crprepo" + hashlib.sha256(f"{registry_id}/{name}".encode()).hexdigest()[:13]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, Mapping) else type(value).__name__
    )
