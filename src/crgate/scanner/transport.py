"""gRPC channels, request headers and error translation: the only place that touches ``grpc`` itself.

Every call carries ``x-request-id`` (fresh per call), a run-wide ``x-client-trace-id`` and, when a
token is configured, ``authorization``. A failed call becomes an ``RpcFailure`` that remembers the
method, status code, server message and every request id seen in headers or trailers, so the error a
user finally reads says exactly which call failed and how to find it in Yandex's logs.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from crgate import __version__
from crgate.errors import ConfigError, ImageNotFoundError, ScanError

log = logging.getLogger("crgate.scanner")

USER_AGENT = f"crgate/{__version__}"

# Yandex Cloud's production endpoints (api-notes: Endpoints).
PRODUCTION_ENDPOINTS = {
    "scanner": "container-registry.api.cloud.yandex.net:443",
    "image": "container-registry.api.cloud.yandex.net:443",
    "operation": "operation.api.cloud.yandex.net:443",
}

_REQUEST_ID_HEADERS = ("x-request-id", "x-server-trace-id")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_SERVER_TEXT = 1000


def server_text(text: str) -> str:
    """Server-supplied text made safe to print: no terminal control sequences, bounded length."""
    cleaned = _CONTROL.sub("?", text).replace("\n", " ")
    return cleaned if len(cleaned) <= MAX_SERVER_TEXT else cleaned[:MAX_SERVER_TEXT] + "..."


def is_loopback(address: str) -> bool:
    """True when ``HOST:PORT`` names this machine (plaintext gRPC is only allowed there)."""
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. ``endpoint`` set = one address for every service."""

    endpoint: str | None = None
    insecure: bool = False
    iam_token: str | None = None
    per_call_timeout: float = 20.0

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        token = "<set>" if self.iam_token else None
        return (
            f"ConnectionSettings(endpoint={self.endpoint!r}, insecure={self.insecure}, iam_token={token}, "
            f"per_call_timeout={self.per_call_timeout})"
        )


class RpcFailure(Exception):
    """A gRPC call that failed; internal to the scanner package (see ``to_scan_error``)."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str, request_ids: Sequence[str]):
        self.method = method
        self.code = code
        self.details = server_text(details)
        self.request_ids = tuple(dict.fromkeys(request_ids))
        super().__init__(f"{method}: {code.name}: {details}")

    def to_scan_error(self, context: str, *, scan_result_id: str | None = None) -> ScanError:
        """The user-facing error, with a hint for the codes users can act on."""
        hint = _HINTS.get(self.code, "")
        cls = ImageNotFoundError if self.code == grpc.StatusCode.NOT_FOUND else ScanError
        message = f"{context}: {self.details or 'no message'}" + (f". {hint}" if hint else "")
        return cls(
            message,
            code=self.code.name,
            method=self.method,
            request_ids=self.request_ids,
            scan_result_id=scan_result_id,
        )


_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "The IAM token is missing, invalid or expired: pass --iam-token or set "
    "YC_IAM_TOKEN with a fresh token (yc iam create-token).",
    grpc.StatusCode.PERMISSION_DENIED: "The identity lacks a role: grant it "
    "container-registry.images.scanner on the registry or folder.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "The cloud's scan quota (10 concurrent scans) is in use: "
    "lower --concurrency or retry later.",
}


class Connection:
    """Channels to the scanner, image and operation services, plus the per-call header logic."""

    def __init__(self, settings: ConnectionSettings, *, trace_id: str | None = None):
        self.settings = settings
        self.trace_id = trace_id or str(uuid.uuid4())
        self._channels: dict[str, grpc.Channel] = {}
        if settings.insecure:
            for address in self._addresses().values():
                if not is_loopback(address):
                    raise ConfigError(
                        f"--insecure (plaintext gRPC) is only allowed to loopback addresses, not '{address}'; "
                        "drop --insecure to use TLS"
                    )

    def _addresses(self) -> dict[str, str]:
        if self.settings.endpoint:
            return {name: self.settings.endpoint for name in PRODUCTION_ENDPOINTS}
        return dict(PRODUCTION_ENDPOINTS)

    def channel(self, service: str) -> grpc.Channel:
        """The (shared, lazily opened) channel for ``scanner``, ``image`` or ``operation``."""
        address = self._addresses()[service]
        if address not in self._channels:
            options = [("grpc.primary_user_agent", USER_AGENT), ("grpc.enable_retries", 0)]
            if self.settings.insecure:
                self._channels[address] = grpc.insecure_channel(address, options=options)
            else:
                creds = grpc.ssl_channel_credentials()
                self._channels[address] = grpc.secure_channel(address, creds, options=options)
        return self._channels[address]

    def close(self) -> None:
        """Close every channel; in-flight calls end at once with CANCELLED."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def call(
        self,
        method: str,
        rpc: Any,
        request: Any,
        *,
        timeout: float,
        extra_metadata: Sequence[tuple[str, str]] = (),
    ) -> tuple[Any, dict[str, str]]:
        """One unary call. Returns (response, response headers); raises RpcFailure."""
        request_id = str(uuid.uuid4())
        metadata = [("x-request-id", request_id), ("x-client-trace-id", self.trace_id), *extra_metadata]
        if self.settings.iam_token:
            metadata.append(("authorization", f"Bearer {self.settings.iam_token}"))
        log.debug("call %s request-id=%s timeout=%.1fs", method, request_id, timeout)
        try:
            response, call = rpc.with_call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise _failure(method, error, request_id) from None
        headers = _metadata_dict(call.initial_metadata())
        return response, headers


def _metadata_dict(metadata: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, bytes):
            continue
        result.setdefault(key.lower(), value)
    return result


def _failure(method: str, error: grpc.RpcError, request_id: str) -> RpcFailure:
    code = grpc.StatusCode.UNKNOWN
    details = str(error)
    ids = [request_id]
    call: Any = error
    accessors: list[Callable[[], Any]] = []
    if isinstance(error, grpc.Call):
        code = call.code() or grpc.StatusCode.UNKNOWN
        details = call.details() or ""
        accessors = [call.initial_metadata, call.trailing_metadata]
    for accessor in accessors:
        try:
            headers = _metadata_dict(accessor())
        except Exception:  # metadata is best effort on a failed call
            continue
        ids.extend(server_text(headers[name]) for name in _REQUEST_ID_HEADERS if name in headers)
    return RpcFailure(method, code, details, ids)
