"""gRPC channels, request headers and error translation: where channels are opened and every ``grpc``
error becomes a crgate error (the other scanner modules use only ``grpc.StatusCode``).

Every call carries ``x-request-id`` (fresh per call), a run-wide ``x-client-trace-id`` and, when
credentials are configured, ``authorization`` with a token from a ``TokenSource`` (refreshed before it
expires; an UNAUTHENTICATED answer gets one refresh and one retry). A failed call becomes an
``RpcFailure`` that remembers the method, status code, server message and every request id seen in
headers or trailers, so the error a user finally reads says exactly which call failed and how to find
it in Yandex's logs. Channels use TLS with the system roots, or the CAs of ``ca_file``.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from crgate import __version__
from crgate.errors import ConfigError, ImageNotFoundError, ScanError
from crgate.inputs import read_ca_file
from crgate.regions import MAIN
from crgate.scanner.netutil import is_loopback
from crgate.textsafe import safe

if TYPE_CHECKING:
    from crgate.scanner.credentials.tokens import TokenSource

log = logging.getLogger("crgate.scanner")

USER_AGENT = f"crgate/{__version__}"

# Yandex Cloud's production endpoints by crgate's service name (the main region's, crgate.regions): where a
# service goes when nothing else names one.
PRODUCTION_ENDPOINTS = dict(MAIN.endpoints)

_REQUEST_ID_HEADERS = ("x-request-id", "x-server-trace-id")
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

# The old name of crgate.textsafe.safe, still imported by scanner/client.py; new code calls safe().

__all__ = ["Connection", "ConnectionSettings", "RpcFailure", "is_loopback"]


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. ``endpoint`` set = one address for every service; otherwise
    ``addresses`` (service name -> address, e.g. from discovery) over the production defaults."""

    endpoint: str | None = None
    insecure: bool = False
    iam_token: str | None = None
    per_call_timeout: float = 20.0
    ca_file: str | None = None
    addresses: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # never let a token reach a log through repr()
        token = "<set>" if self.iam_token else None
        return (
            f"ConnectionSettings(endpoint={self.endpoint!r}, insecure={self.insecure}, iam_token={token}, "
            f"per_call_timeout={self.per_call_timeout}, ca_file={self.ca_file!r}, addresses={self.addresses!r})"
        )

    def address_of(self, service: str) -> str:
        """The address crgate dials for ``scanner``, ``image``, ``operation`` or ``iam``."""
        if self.endpoint:
            return self.endpoint
        return dict(self.addresses).get(service) or PRODUCTION_ENDPOINTS[service]


class RpcFailure(Exception):
    """A gRPC call that failed; internal to the scanner package (see ``to_scan_error``)."""

    def __init__(
        self,
        method: str,
        code: grpc.StatusCode,
        details: str,
        request_ids: Sequence[str],
        *,
        hint: str | None = None,
        retryable: bool = True,
    ):
        self.method = method
        self.code = code
        self.details = safe(details)
        self.request_ids = tuple(dict.fromkeys(safe(r, 128) for r in request_ids))
        self.hint = hint
        self.retryable = retryable
        """False when retrying cannot help even for a transient code (an answer over crgate's limits)."""
        self.earlier_attempts = 0
        """How many attempts of the same call failed before this answer (``call_with_retries`` sets it):
        any of them may have been carried out by the server although its answer never arrived."""
        super().__init__(f"{method}: {code.name}: {self.details}")

    def with_note(self, note: str) -> RpcFailure:
        """The same failure with a note on why crgate stopped retrying it."""
        return RpcFailure(
            self.method, self.code, f"{self.details} ({note})", self.request_ids, hint=self.hint, retryable=False
        )

    def to_scan_error(self, context: str, *, scan_result_id: str | None = None, hint: str | None = None) -> ScanError:
        """The user-facing error, with a hint for the codes users can act on (``hint`` overrides it)."""
        hint = hint or self.hint or _HINTS.get(self.code, "")
        # NOT_FOUND means "no such image" only where an image is looked up; elsewhere it is an API error.
        image_lookup = self.method in ("ImageService.List", "ImageService.Get", "ScannerService.Scan")
        cls = ImageNotFoundError if self.code == grpc.StatusCode.NOT_FOUND and image_lookup else ScanError
        message = f"{context}: {self.details or 'no message'}" + (f". {hint}" if hint else "")
        return cls(
            message,
            code=self.code.name,
            method=self.method,
            request_ids=self.request_ids,
            scan_result_id=scan_result_id,
        )


# A page of 1,000 findings is a few hundred KiB; anything near this is a broken or hostile answer.
MAX_RECEIVE_BYTES = 32 * 1024 * 1024
# grpc-python reports answers over the receive limits as RESOURCE_EXHAUSTED raised on the client side.
_LOCAL_LIMIT = re.compile(r"larger than max|metadata size exceeds|exceeds.*limit", re.IGNORECASE)

_HINTS = {
    grpc.StatusCode.UNAUTHENTICATED: "The server wants credentials: pass --iam-token, --sa-key or "
    "--federation-sa-id (crgate doctor shows which source crgate picked).",
    grpc.StatusCode.PERMISSION_DENIED: "The identity lacks a role: grant it "
    "container-registry.images.scanner on the registry or folder.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "The cloud's scan quota (10 concurrent scans) is in use: "
    "lower --concurrency or retry later.",
}


class Connection:
    """Channels to the scanner, image and operation services, plus the per-call header logic."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        trace_id: str | None = None,
        token_source: TokenSource | None = None,
    ):
        self.settings = settings
        self.trace_id = trace_id or str(uuid.uuid4())
        self.token_source = token_source
        self._channels: dict[str, grpc.Channel] = {}
        self._root_certificates: bytes | None = None
        if settings.insecure:
            if settings.ca_file:
                raise ConfigError("--ca-file and --insecure exclude each other: --insecure means no TLS at all")
            for address in self._addresses().values():
                if not is_loopback(address):
                    raise ConfigError(
                        f"--insecure (plaintext gRPC) is only allowed to loopback addresses, not '{address}'; "
                        "drop --insecure to use TLS"
                    )
        elif settings.ca_file:
            self._root_certificates = read_ca_file(settings.ca_file)

    def _addresses(self) -> dict[str, str]:
        return {name: self.settings.address_of(name) for name in PRODUCTION_ENDPOINTS}

    def address(self, service: str) -> str:
        """The address of ``scanner``, ``image``, ``operation`` or ``iam``."""
        return self.settings.address_of(service)

    def use_token_source(self, source: TokenSource | None) -> None:
        """Send tokens of ``source`` with every authenticated call from now on."""
        self.token_source = source

    def channel(self, service: str) -> grpc.Channel:
        """The (shared, lazily opened) channel for ``scanner``, ``image``, ``operation`` or ``iam``."""
        address = self.address(service)
        if address not in self._channels:
            options = [
                ("grpc.primary_user_agent", USER_AGENT),
                ("grpc.enable_retries", 0),
                ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ]
            if self.settings.insecure:
                self._channels[address] = grpc.insecure_channel(address, options=options)
            else:
                creds = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
                self._channels[address] = grpc.secure_channel(address, creds, options=options)
        return self._channels[address]

    def probe(self, service: str, timeout: float) -> None:
        """Prove a service answers gRPC over this channel (TCP, TLS, HTTP/2) without using any API: a
        health check that any answer but UNAVAILABLE or a timeout counts as reached; RpcFailure otherwise."""
        check = self.channel(service).unary_unary(HEALTH_CHECK)
        request_id = str(uuid.uuid4())
        metadata = [("x-request-id", request_id), ("x-client-trace-id", self.trace_id)]
        try:
            check(b"", timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            failure = _failure(f"connect to {self.address(service)}", error, request_id)
            if failure.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                failure.hint = "Wrong address, firewall, proxy, or a TLS certificate this machine does not trust?"
                raise failure from None

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
        anonymous: bool = False,
    ) -> tuple[Any, dict[str, str]]:
        """One unary call. Returns (response, response headers); raises RpcFailure.

        ``anonymous`` calls (IAM token exchange, discovery) carry no token. Otherwise an UNAUTHENTICATED
        answer invalidates the token; when the source can get a fresh one, the call is repeated once.
        """
        for attempt in (1, 2):
            request_id = str(uuid.uuid4())
            metadata = [("x-request-id", request_id), ("x-client-trace-id", self.trace_id), *extra_metadata]
            token = None if anonymous else self._token()
            if token:
                metadata.append(("authorization", f"Bearer {token}"))
            log.debug("call %s request-id=%s timeout=%.1fs", method, request_id, timeout)
            try:
                response, call = rpc.with_call(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as error:
                failure = _failure(method, error, request_id)
                if failure.code == grpc.StatusCode.UNAUTHENTICATED and not anonymous:
                    source = self.token_source
                    if attempt == 1 and token and source is not None and source.invalidate(token):
                        log.info("%s: UNAUTHENTICATED; refreshing the token and retrying once", method)
                        continue
                    failure.hint = self._unauthenticated_hint(retried=attempt > 1)
                elif failure.code == grpc.StatusCode.PERMISSION_DENIED and self.token_source is not None:
                    failure.hint = (
                        f"The identity ({self.token_source.description}) lacks a role: grant it "
                        "container-registry.images.scanner on the registry or its folder."
                    )
                raise failure from None
            headers = _metadata_dict(call.initial_metadata())
            return response, headers
        raise AssertionError("unreachable")  # the loop returns or raises

    def _token(self) -> str | None:
        if self.token_source is not None:
            return self.token_source.token()
        return self.settings.iam_token

    def _unauthenticated_hint(self, *, retried: bool) -> str:
        source = self.token_source
        if source is None:
            return _HINTS[grpc.StatusCode.UNAUTHENTICATED]
        if retried:
            return (
                f"The credentials ({source.description}) were rejected even with a freshly obtained token: "
                "check that they are valid, not revoked, and belong to this cloud."
            )
        return (
            f"The token ({source.description}) is invalid or expired and crgate cannot refresh it: "
            "pass a fresh one (yc iam create-token), or use --sa-key / --federation-sa-id, which crgate refreshes."
        )


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
        ids.extend(safe(headers[name]) for name in _REQUEST_ID_HEADERS if name in headers)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _LOCAL_LIMIT.search(details):
        return RpcFailure(
            method,
            code,
            details,
            ids,
            hint="The server's answer is over crgate's size limits (a broken or hostile answer); it was not retried.",
            retryable=False,
        )
    return RpcFailure(method, code, details, ids)
