"""An endpoint that does not speak gRPC at all (HTTP/1, garbage frames, silence)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from conftest import run_cli
from hostile import (
    REF,
    REPORT_VALIDATOR,
    StubRegistry,
)


class RawTcpServer:
    """Accepts connections on loopback and answers each with ``reply`` (or nothing), then closes."""

    def __init__(self, reply: bytes | None):
        import socket

        self.connections = 0
        self._reply = reply
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[Any] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            if self._reply is None:
                self._held.append(conn)  # accept, then say nothing
                continue
            try:
                conn.recv(65536)
                conn.sendall(self._reply)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3),
        (b"\x00\x00\x04\x07\x00\x00\x00\x00\x00garbage-frames" * 10, 3),
        (None, 4),  # accepts the connection and never speaks
    ],
    ids=["http1", "garbage", "silent"],
)
def test_endpoint_that_does_not_speak_grpc(reply, code):
    fake = RawTcpServer(reply)
    registry = StubRegistry()  # the manifest read succeeds; the gRPC endpoint is what misbehaves
    try:
        args = ["check", "--endpoint", fake.address, "--registry-url", registry.url, "--insecure"]
        result = run_cli([*args, "--progress", "none", "--timeout", "1.5", REF, "--format", "json"])
    finally:
        fake.stop()
        registry.stop()
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)
    REPORT_VALIDATOR.validate(doc)
    assert result.code == code, result.output
    assert doc["images"][0]["error"]["method"] in ("ImageService.List", None)
    assert fake.connections <= 10
