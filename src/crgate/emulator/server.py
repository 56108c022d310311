"""The emulator's lifecycle: a real ``grpc.server`` on (by default) loopback serving one scenario."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import grpc

from crgate.emulator.scenario import Scenario
from crgate.emulator.services import add_services
from crgate.emulator.state import EmulatorState
from crgate.emulator.stats import EmulatorStats
from crgate.errors import ConfigError

MAX_WORKERS = 32


class Emulator:
    """Yandex Container Registry scanner APIs on ``host:port`` (port 0 = any free port).

    ``clock`` (monotonic seconds) decides when scans finish; tests may inject a fake one.
    """

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.scenario = scenario
        self.host = host
        self.port = port
        self.stats = EmulatorStats()
        self.state = EmulatorState(scenario, clock=clock)
        self._server: grpc.Server | None = None

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
        add_services(server, self.state, self.stats, lambda: self.address)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError as exc:
            raise ConfigError(f"emulator: cannot listen on {host}:{self.port}: {exc}") from exc
        if port == 0:
            raise ConfigError(f"emulator: cannot listen on {host}:{self.port}")
        self.port = port
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = 0) -> None:
        """Stop serving; in-flight calls get ``grace`` seconds."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

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
