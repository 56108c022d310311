"""From command-line options to an authenticated connection: choose the credential source (before any
network call, so a misconfiguration is exit 2 and never retried as an outage), resolve the endpoints,
build the token source and obtain the first token. ``check`` and ``doctor`` share it.

Imports of gRPC and the credential code happen inside the functions: ``--help`` stays light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from crgate.errors import ConfigError
from crgate.model import ImageRef
from crgate.provenance import Setting, SettingSource
from crgate.regions import DEFAULT_REGION, Region, api_hosts, refuse_foreign_override, region_of

if TYPE_CHECKING:
    import threading

    from crgate.registry import RegistryClient
    from crgate.scanner.client import ScannerClient
    from crgate.scanner.credentials.choose import CredentialChoice, CredentialOptions
    from crgate.scanner.credentials.tokens import TokenObserver, TokenSource
    from crgate.scanner.endpoints import Endpoints
    from crgate.scanner.transport import Connection
    from crgate.timing import Deadline

log = logging.getLogger("crgate.connect")

ENV_ENDPOINT = "YC_ENDPOINT"


@dataclass(frozen=True)
class ConnectOptions:
    """Endpoint, TLS and credential options of a command.

    ``region`` (``crgate.regions.region_of`` the run's references) decides the production endpoints when
    neither ``endpoint`` nor an API root is given, and always the service-account JWT audience.
    """

    credentials: CredentialOptions
    endpoint: str | None = None
    api_endpoint: str | None = None
    insecure: bool = False
    ca_file: str | None = None
    region: Region = DEFAULT_REGION


@dataclass
class Session:
    """An open connection with its endpoints and credentials; close it when done."""

    connection: Connection
    endpoints: Endpoints
    choice: CredentialChoice
    token_source: TokenSource | None
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.connection.close()


def api_root(options: ConnectOptions, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The discovery root and where it came from (``--api-endpoint`` or ``YC_ENDPOINT``), if any;
    ConfigError when ``YC_ENDPOINT`` alone names a host other than a Yandex API root."""
    if options.endpoint and options.api_endpoint:
        raise ConfigError("--endpoint and --api-endpoint exclude each other: --endpoint already names every service")
    if options.api_endpoint:
        return options.api_endpoint, "--api-endpoint"
    value = env.get(ENV_ENDPOINT, "").strip()
    if value and not options.endpoint:
        from crgate.scanner.netutil import split_address

        # Discovery at this root names the services that receive the token: from the environment alone,
        # only Yandex's own roots (an earlier CI step could set the variable and listen on loopback).
        refuse_foreign_override(
            split_address(value)[0],
            value,
            variable=ENV_ENDPOINT,
            flag="--api-endpoint",
            known=api_hosts(),
            what="a Yandex Cloud API root",
        )
        return value, ENV_ENDPOINT
    if value:
        log.info("ignoring %s: --endpoint names every service", ENV_ENDPOINT)
    return None


def with_region(options: ConnectOptions, refs: Iterable[ImageRef], env: Mapping[str, str]) -> ConnectOptions:
    """``options`` carrying the region of the run's references (``crgate.regions.region_of``; an API root
    from ``--api-endpoint``/``YC_ENDPOINT`` decides when only image ids are given). ConfigError (exit 2)
    when the references mix regions or contradict a known API root; call it before any network call."""
    root = api_root(options, env)
    return dataclasses.replace(options, region=region_of(refs, api_endpoint=root[0] if root else None))


def is_local(options: ConnectOptions, env: Mapping[str, str]) -> bool:
    """True when every call goes to this machine (an emulator): credentials are optional then."""
    from crgate.scanner.netutil import is_loopback

    if options.endpoint:
        return is_loopback(options.endpoint)
    root = api_root(options, env)
    return root is not None and is_loopback(root[0])


def choose(options: ConnectOptions, env: Mapping[str, str]) -> CredentialChoice:
    """Stage 1 (no network): the credential source; ConfigError on conflicts and bad flags."""
    from crgate.scanner.credentials.choose import choose_credentials

    if options.insecure and options.ca_file:
        raise ConfigError("--ca-file and --insecure exclude each other: --insecure means no TLS at all")
    api_root(options, env)  # --endpoint with --api-endpoint is refused here, before any network call
    return choose_credentials(options.credentials, env, loopback=is_local(options, env))


def resolve_endpoints(
    options: ConnectOptions, env: Mapping[str, str], deadline: Deadline, *, trace_id: str | None = None
) -> Endpoints:
    """Stage 2: where each service lives (discovery is the only network call here)."""
    from crgate.scanner import endpoints

    if options.endpoint:
        return endpoints.single(endpoints.check_address(options.endpoint, "--endpoint"))
    root = api_root(options, env)
    if root is None:
        region = options.region
        if region.endpoints:
            return endpoints.production(region)
        return endpoints.discover(  # a region whose services Yandex names only through discovery
            region.api_root,
            f"{region.title}, the region of the references",
            deadline,
            insecure=options.insecure,
            ca_file=options.ca_file,
            trace_id=trace_id,
        )
    address, origin = root
    endpoints.check_address(address, origin)
    return endpoints.discover(
        address, origin, deadline, insecure=options.insecure, ca_file=options.ca_file, trace_id=trace_id
    )


def connect(
    options: ConnectOptions,
    env: Mapping[str, str],
    choice: CredentialChoice,
    found: Endpoints,
    deadline: Deadline,
    *,
    observer: TokenObserver | None = None,
    trace_id: str | None = None,
) -> Session:
    """Stage 3: the connection and its token source (the metadata probe may run here; no token yet)."""
    from crgate.scanner.credentials.choose import build_token_source, credential_notes
    from crgate.scanner.credentials.http import HttpClient
    from crgate.scanner.iam import IamClient
    from crgate.scanner.transport import Connection

    connection = Connection(found.settings(insecure=options.insecure, ca_file=options.ca_file), trace_id=trace_id)
    try:
        source = build_token_source(
            choice,
            options.credentials,
            env,
            iam=IamClient(connection, deadline),
            http=HttpClient(ca_file=options.ca_file),
            deadline=deadline,
            observer=observer,
            target=f"Yandex Cloud ({found.source})",
            iam_audience=options.region.iam_audience,
        )
    except BaseException:
        connection.close()
        raise
    connection.use_token_source(source)
    return Session(
        connection=connection, endpoints=found, choice=choice, token_source=source, notes=credential_notes(choice)
    )


@dataclass
class Clients:
    """What a gating run talks to: the scanner (gRPC) and the registry (HTTP), over one session."""

    session: Session
    scanner: ScannerClient
    registry: RegistryClient

    def close(self) -> None:
        self.session.close()


def open_clients(
    options: ConnectOptions,
    env: Mapping[str, str],
    deadline: Deadline,
    *,
    registry_url: str | None,
    cancel: threading.Event,
    observer: TokenObserver | None = None,
) -> Clients:
    """The session (first token obtained) and the scanner and registry clients built on it; the registry
    reads manifests with the same credentials (Docker's ``iam`` user and the IAM token)."""
    from crgate.registry import RegistryClient
    from crgate.scanner.client import ScannerClient

    session = open_session(options, env, deadline, observer=observer)
    try:
        registry = RegistryClient(token_source=session.token_source, registry_url=registry_url, ca_file=options.ca_file)
    except BaseException:
        session.close()
        raise
    return Clients(session, ScannerClient(session.connection, cancel=cancel), registry)


def open_session(
    options: ConnectOptions,
    env: Mapping[str, str],
    deadline: Deadline,
    *,
    observer: TokenObserver | None = None,
    trace_id: str | None = None,
) -> Session:
    """All stages, ending with the first token obtained: everything a run needs before its first RPC."""
    choice = choose(options, env)
    found = resolve_endpoints(options, env, deadline, trace_id=trace_id)
    session = connect(options, env, choice, found, deadline, observer=observer, trace_id=trace_id)
    try:
        if session.token_source is not None:
            session.token_source.token()
    except BaseException:
        session.close()
        raise
    return session


def on_emulator(
    stack: contextlib.ExitStack[bool | None], options: ConnectOptions, data: str | None, registry_url: str | None
) -> tuple[ConnectOptions, str]:
    """``options`` and the registry URL pointed at the built-in emulator (``--emulator``), started for the
    rest of the command (``stack``)."""
    if options.endpoint or options.api_endpoint or registry_url:
        raise ConfigError(
            "--emulator excludes --endpoint, --api-endpoint and --registry-url: --emulator serves its own"
        )
    emulator = stack.enter_context(start_emulator("--emulator", data))
    return dataclasses.replace(options, endpoint=emulator.address, insecure=True), emulator.registry_url


EMULATOR_INSTALL = "pip install 'crgate[emulator]' (from a crgate checkout: pip install ./emulator)"
"""What to run when the emulator is missing: it is a distribution of its own, ``crgate-emulator``."""


class EmulatorServer(Protocol):
    """What crgate uses of ``crgate_emulator.Emulator``."""

    @property
    def address(self) -> str: ...
    @property
    def registry_url(self) -> str: ...
    def start(self) -> EmulatorServer: ...
    def announcement(self) -> tuple[list[str], list[str]]: ...
    def stop(self, grace: float | None = 0) -> None: ...
    def __enter__(self) -> EmulatorServer: ...  # starts it
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def start_emulator(
    what: str, data: str | None, *, host: str = "127.0.0.1", port: int = 0, tls: bool = False
) -> EmulatorServer:
    """The emulator (not started yet) serving ``data`` (a scenario file, else its demo) for ``what``
    (``--emulator``, ``crgate emulator``).

    The one place crgate imports the emulator, a distribution of its own (``crgate-emulator``) that
    ``pip install crgate`` does not install: without it, a ConfigError (exit 2) names what to install.
    """
    try:
        from crgate_emulator import Emulator, scenario_of
    except ImportError as error:
        if error.name is not None and error.name.split(".")[0] != "crgate_emulator":
            raise  # the emulator is there but one of its own imports failed: a broken install, not a missing one
        raise ConfigError(f"{what} needs crgate's emulator, which is not installed: {EMULATOR_INSTALL}") from None
    return Emulator(scenario_of(data), host=host, port=port, tls=tls)


@dataclass(frozen=True)
class PlannedSettings:
    """Where a run will send its calls, known before any call (for the loosenings block)."""

    api_endpoint: Setting
    registry: Setting
    token_endpoint: Setting
    federation: bool
    """Whether a federation exchange is asked for (by flag or variable): only then is the token endpoint used."""
    metadata_address: Setting
    """``YC_METADATA_ADDR`` when set (where the VM metadata service, a source of tokens, is looked for)."""


def planned_settings(
    options: ConnectOptions,
    env: Mapping[str, str],
    refs: Iterable[ImageRef],
    *,
    registry_url: str | None,
    registry_source: SettingSource,
    emulator: bool,
) -> PlannedSettings:
    """The API endpoint, registry and token endpoint a run will use, and where each came from: the
    default, a flag, the environment (``YC_ENDPOINT``, ``CRGATE_REGISTRY_URL``, ``YC_TOKEN_ENDPOINT``),
    or ``--emulator``. ``registry_source``: where ``registry_url`` came from (click knows)."""
    from crgate.scanner.credentials.choose import ENV_METADATA_ADDR, ENV_SA_ID, ENV_TOKEN_ENDPOINT
    from crgate.scanner.credentials.sources import DEFAULT_TOKEN_ENDPOINT

    by_emulator = Setting(("crgate's built-in emulator",), SettingSource.EMULATOR, "--emulator")
    root = api_root(options, env)
    if emulator:
        api = by_emulator
    elif options.endpoint:
        api = Setting((options.endpoint,), SettingSource.FLAG, "--endpoint")
    elif root is not None:
        source = SettingSource.FLAG if root[1].startswith("--") else SettingSource.ENVIRONMENT
        api = Setting((root[0],), source, root[1])
    else:
        api = _default_api(options.region)
    if emulator:
        registry = by_emulator
    elif registry_url:
        name = "--registry-url" if registry_source == SettingSource.FLAG else "CRGATE_REGISTRY_URL"
        registry = Setting((registry_url,), registry_source, name)
    else:
        registry = Setting(tuple(sorted({f"https://{ref.host}" for ref in refs})), SettingSource.DEFAULT)
    credentials = options.credentials
    if credentials.token_endpoint:
        token = Setting((credentials.token_endpoint,), SettingSource.FLAG, "--token-endpoint")
    elif env.get(ENV_TOKEN_ENDPOINT, "").strip():
        token = Setting((env[ENV_TOKEN_ENDPOINT].strip(),), SettingSource.ENVIRONMENT, ENV_TOKEN_ENDPOINT)
    else:
        token = Setting((DEFAULT_TOKEN_ENDPOINT,), SettingSource.DEFAULT)
    federation = bool(credentials.federation_sa_id or env.get(ENV_SA_ID, "").strip())
    address = env.get(ENV_METADATA_ADDR, "").strip()
    metadata = Setting((address,), SettingSource.ENVIRONMENT, ENV_METADATA_ADDR) if address else Setting(())
    return PlannedSettings(api, registry, token, federation, metadata)


def _default_api(region: Region) -> Setting:
    if region.endpoints:
        return Setting(tuple(f"{service} {address}" for service, address in region.endpoints), SettingSource.DEFAULT)
    return Setting((region.api_root,), SettingSource.DEFAULT)


@dataclass(frozen=True)
class UsedSettings:
    """What a run actually used, once connected (provenance); never a secret."""

    api_endpoint: Setting
    registry: Setting
    token_endpoint: Setting
    credential_kind: str
    credential_source: str | None


def used_settings(planned: PlannedSettings, session: Session | None, emulator_registry: str | None) -> UsedSettings:
    """``planned`` made exact by the open ``session`` (the addresses it resolved, the credential it chose;
    None: no call was made) and, for ``--emulator``, the emulator's registry URL."""
    if session is None:
        nothing = Setting((), SettingSource.DEFAULT)
        return UsedSettings(nothing, nothing, nothing, "none", None)
    found = session.endpoints
    values = (
        (found.endpoint,) if found.endpoint else tuple(f"{service} {address}" for service, address in found.addresses)
    )
    api = Setting(values, planned.api_endpoint.source, planned.api_endpoint.name)
    registry = planned.registry
    if emulator_registry is not None:
        registry = Setting((emulator_registry,), SettingSource.EMULATOR, "--emulator")
    candidate = session.choice.candidate
    kind = candidate.kind if candidate else ("metadata" if session.token_source is not None else "none")
    origin = candidate.origin if candidate else ("metadata service" if session.token_source is not None else None)
    token = planned.token_endpoint
    if kind != "federation":
        token = Setting((), token.source, token.name)
    return UsedSettings(api, registry, token, kind, origin)
