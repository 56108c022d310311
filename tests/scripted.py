"""A loopback HTTP server that answers each GET from a script and records what it received: the fake
registries and token realms of the registry-client and credential-destination tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


class Scripted:
    """A loopback HTTP server answering the n-th request with ``script[n]`` (the last one repeats);
    ``requests`` holds each request's path and headers (lower-case names)."""

    def __init__(self, *script: Handler):
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                owner.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                step = owner.script[min(len(owner.requests), len(owner.script)) - 1]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    step(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def respond(status: int, body: bytes, headers: Mapping[str, str]) -> Handler:
    """A step answering ``status`` with ``body`` and ``headers`` (``_`` in a name becomes ``-``)."""

    def step(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)

    return step
