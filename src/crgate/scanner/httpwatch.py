"""One HTTP exchange bounded as a whole, not per byte.

A socket timeout restarts on every byte received, so a server that drips its headers or body one byte at
a time would keep a read alive far past any deadline. ``Watchdog`` shuts down every socket of one
exchange when its time is up (the blocked read then ends at once); the caller asks ``expired`` after the
exchange, whatever it returned or raised, because a shut-down socket can look like a short answer.

Used by the registry client and the credential HTTP client (imported where they make their first
request: ``urllib.request`` is not for ``--help``).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.request
from collections.abc import Callable
from types import TracebackType
from typing import Any


class Watchdog:
    """Shuts down the sockets it adopted ``seconds`` after ``__enter__``."""

    def __init__(self, seconds: float):
        self.seconds = max(0.001, seconds)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    def adopt(self, sock: socket.socket) -> None:
        with self._lock:
            if self._expired:
                _shut(sock)
            self._sockets.append(sock)

    def handlers(self, context: Any | None = None) -> list[urllib.request.BaseHandler]:
        """urllib handlers for http and https (``context``: the TLS context) whose sockets this watches."""
        return [_WatchedHTTP(self), _WatchedHTTPS(self, context)]

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched(watchdog: Watchdog, connection: type[http.client.HTTPConnection]) -> Callable[..., Any]:
    """A connection factory for ``do_open`` whose new sockets (and a proxy tunnel's) the watchdog adopts."""

    def make(host: str, **options: Any) -> http.client.HTTPConnection:
        made = connection(host, **options)
        create = made._create_connection  # type: ignore[attr-defined]  # http.client's own hook

        def created(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            watchdog.adopt(sock)
            return sock

        made._create_connection = created  # type: ignore[attr-defined]
        return made

    return make


class _WatchedHTTP(urllib.request.HTTPHandler):
    def __init__(self, watchdog: Watchdog):
        super().__init__()
        self._watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(self._watchdog, http.client.HTTPConnection), req)  # type: ignore[arg-type]


class _WatchedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: Watchdog, context: Any | None):
        super().__init__(context=context)
        self._watchdog = watchdog
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = _watched(self._watchdog, http.client.HTTPSConnection)
        return self.do_open(connection, req, context=self._tls)  # type: ignore[arg-type]
