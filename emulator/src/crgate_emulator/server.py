"""The emulator's lifecycle: a real ``grpc.server`` on (by default) loopback serving one scenario, in
plaintext or TLS (a CA generated at start), the registry's distribution API over HTTP(S) beside it, plus
the other HTTP endpoints when the scenario needs them."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import grpc

from crgate.errors import ConfigError
from crgate_emulator.authority import Authority
from crgate_emulator.http import HttpEndpoints
from crgate_emulator.registry import RegistryEndpoint
from crgate_emulator.scenario import Scenario
from crgate_emulator.services import add_services
from crgate_emulator.state import EmulatorState
from crgate_emulator.stats import EmulatorStats
from crgate_emulator.tls import TlsMaterial, generate

MAX_WORKERS = 32


class Emulator:
    """Yandex Container Registry scanner APIs on ``host:port`` (port 0 = any free port).

    ``clock`` (monotonic seconds) decides when scans finish; tests may inject a fake one. With ``tls``
    the server uses a certificate of a CA generated at start (``ca_file``), also valid for ``tls_names``
    (e.g. ``api.yandexcloud.kz``, to stand in for a production host behind a test proxy). When the scenario has
    federation, metadata or GitHub data, HTTP endpoints start too (``token_url``, ``metadata_address``,
    ``github_request_url``). The registry's distribution API is always served (``registry_url``; HTTPS
    with the same certificate in TLS mode).
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        tls: bool = False,
        tls_names: Sequence[str] = (),
    ):
        self.scenario = scenario
        self.tls_names = tuple(tls_names)
        self.host = host
        self.port = port
        self.tls = tls
        self.stats = EmulatorStats()
        self.state = EmulatorState(scenario, clock=clock)
        self.authority = Authority(scenario.identities, clock=clock, audience=scenario.region.iam_audience)
        self.http: HttpEndpoints | None = None
        self.registry: RegistryEndpoint | None = None
        self._clock = clock
        self.tls_material: TlsMaterial | None = None
        self._tmp: Path | None = None
        self._server: grpc.Server | None = None

    @property
    def ca_file(self) -> str:
        """Path of the generated CA certificate (TLS mode only)."""
        if self.tls_material is None:
            raise RuntimeError("the emulator is not started with tls=True")
        return str(self.tls_material.ca_file)

    def _http(self) -> HttpEndpoints:
        if self.http is None:
            raise RuntimeError("the scenario has no federation, metadata or github data: no HTTP endpoints")
        return self.http

    @property
    def token_url(self) -> str:
        return self._http().token_url

    @property
    def metadata_address(self) -> str:
        return self._http().metadata_address

    @property
    def github_request_url(self) -> str:
        return self._http().github_request_url

    @property
    def registry_url(self) -> str:
        """``http(s)://host:port`` of the distribution API (``--registry-url``); valid once started."""
        if self.registry is None:
            raise RuntimeError("the emulator is not started")
        return self.registry.url

    @property
    def address(self) -> str:
        """``host:port`` to dial (IPv6 hosts in brackets); valid once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> Emulator:
        """Bind and serve; ``ConfigError`` if the address cannot be bound."""
        if self._server is not None:
            return self
        server = grpc.server(ThreadPoolExecutor(max_workers=MAX_WORKERS), options=[("grpc.so_reuseport", 0)])
        add_services(server, self.state, self.stats, lambda: self.address, self.authority)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            if self.tls:
                self._tmp = Path(tempfile.mkdtemp(prefix="crgate-emulator-"))
                hosts = tuple(dict.fromkeys(("localhost", "127.0.0.1", "::1", self.host, *self.tls_names)))
                self.tls_material = generate(self._tmp, hosts)
                creds = grpc.ssl_server_credentials([(self.tls_material.key_pem, self.tls_material.cert_pem)])
                port = server.add_secure_port(f"{host}:{self.port}", creds)
            else:
                port = server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError as exc:
            self._cleanup()
            raise ConfigError(f"emulator: cannot listen on {host}:{self.port}: {exc}") from exc
        if port == 0:
            self._cleanup()
            raise ConfigError(f"emulator: cannot listen on {host}:{self.port}")
        self.port = port
        if self.scenario.identities.needs_http:
            self.http = HttpEndpoints(self.host, self.authority, self.stats, self.tls_material)
        self.registry = RegistryEndpoint(
            self.host, self.scenario, self.authority, self.stats, self.tls_material, clock=self._clock
        )
        server.start()
        self._server = server
        return self

    def _cleanup(self) -> None:
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def announcement(self) -> tuple[list[str], list[str]]:
        """What ``crgate emulator`` prints: stdout (the address, the CA file with TLS, the registry URL;
        scripts read them by position) and stderr (the same for people, and the HTTP endpoints)."""
        tls = self.tls_material is not None
        stdout = [self.address, *([self.ca_file] if tls else []), self.registry_url]
        mode = f"TLS, CA certificate {self.ca_file}" if tls else "plaintext gRPC"
        stderr = [
            f"crgate emulator listening on {self.address} ({mode}); Ctrl-C stops it",
            f"  registry (OCI distribution API) {self.registry_url}: pass it as --registry-url",
        ]
        if self.http is not None:
            stderr.append(
                f"  token exchange {self.token_url}, metadata service {self.metadata_address} "
                f"(YC_METADATA_ADDR), GitHub OIDC {self.github_request_url}"
            )
        return stdout, stderr

    def stop(self, grace: float | None = 0) -> None:
        """Stop serving; in-flight calls get ``grace`` seconds."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        self._cleanup()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout`` passes); True if it stopped."""
        if self._server is None:
            return True
        return bool(self._server.wait_for_termination(timeout))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
