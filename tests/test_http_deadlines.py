"""Every HTTP read is bounded by the time left on the run, not per byte (issue 18, item 5).

A socket timeout restarts on every byte received: a registry or metadata service that drips its
headers or body one byte at a time kept a ``--timeout 5`` run alive for 15 s (the runner's backstop ended
it). Each server here would take a minute to finish its answer; that the run ends at all, with exit 4,
and that the server sees its connection closed, proves the read was cut at the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import DIGEST_A, check_args, image, run_cli, scenario
from scripted import Scripted

CLEAN = "cr.yandex/crptest/app:clean"
DRIP_SECONDS = 60.0
"""How long each dripping answer would take to finish: far beyond the runs' --timeout of 2 s."""


class Drip:
    """A step sending ``head`` and then ``body`` one byte at a time, spread over ``DRIP_SECONDS``;
    ``closed`` is set when the client has cut the connection (a write failed)."""

    def __init__(self, *, drip_headers: bool):
        self.drip_headers = drip_headers
        self.closed = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        body = b'{"access_token": "t1.dripped", "expires_in": 3600}' + b" " * 600
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        slow = head + body if self.drip_headers else body
        pause = DRIP_SECONDS / len(slow)
        try:
            if not self.drip_headers:
                handler.wfile.write(head)
            for byte in slow:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:
            self.closed.set()


@pytest.fixture
def dripping() -> Iterator[Callable[..., tuple[Scripted, Drip]]]:
    servers: list[Scripted] = []

    def start(*, drip_headers: bool) -> tuple[Scripted, Drip]:
        step = Drip(drip_headers=drip_headers)
        server = Scripted(step)
        servers.append(server)
        return server, step

    yield start
    for server in servers:
        server.stop()


def with_registry(args: list[str], url: str) -> list[str]:
    at = args.index("--registry-url")
    return [*args[: at + 1], url, *args[at + 2 :]]


@pytest.mark.parametrize("drip_headers", [True, False], ids=["headers", "body"])
def test_a_dripping_registry_is_cut_at_the_deadline(start_emulator, dripping, drip_headers) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    registry, step = dripping(drip_headers=drip_headers)
    result = run_cli([*with_registry(check_args(emu, CLEAN), registry.url), "--timeout", "2"])
    assert result.code == 4, result.output
    assert "the --timeout of 2s passed while reading from the registry" in result.output
    assert step.closed.wait(DRIP_SECONDS / 2), "the registry still had its connection open"
    assert len(registry.requests) == 1, "one read cut at the deadline, not one per-byte timeout after another"
    assert emu.stats.scans_started == 0


@pytest.mark.parametrize("drip_headers", [True, False], ids=["headers", "body"])
def test_a_dripping_metadata_service_is_cut_at_the_deadline(start_emulator, dripping, drip_headers) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    metadata, step = dripping(drip_headers=drip_headers)
    address = metadata.url.removeprefix("http://")
    result = run_cli([*check_args(emu, CLEAN), "--metadata", "--timeout", "2"], env={"YC_METADATA_ADDR": address})
    assert result.code == 4, result.output
    assert "the --timeout of 2s passed while the metadata service answered" in result.output
    assert step.closed.wait(DRIP_SECONDS / 2), "the metadata service still had its connection open"
    assert emu.stats.scans_started == 0
