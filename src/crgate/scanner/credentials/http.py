"""Tiny JSON-over-HTTP client (stdlib ``urllib``) for the token endpoint, GitHub's OIDC endpoint and the
VM metadata service. No redirects are followed (a bearer header must never travel to another host),
plain HTTP is allowed only to loopback and to the metadata service, and a failure becomes an
``HttpFailure`` that names the URL (without its query), the status and the server's error text.

``ssl``, ``urllib.request`` and ``urllib.error`` (which bring ``http.client``, ``email`` and
``tempfile``) load on the first request, not at import: a run on a static token or against a loopback
emulator (``--insecure``) never makes one.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crgate import __version__
from crgate.errors import ConfigError, MalformedResponseError, ScanError
from crgate.inputs import read_ca_file
from crgate.scanner.netutil import is_loopback_host
from crgate.textsafe import safe

if TYPE_CHECKING:
    import urllib.error
    import urllib.request

    from crgate.scanner.httpwatch import Watchdog

log = logging.getLogger("crgate.credentials")

USER_AGENT = f"crgate/{__version__}"
MAX_BODY = 1 << 20
_REQUEST_ID_HEADERS = ("x-request-id", "x-server-trace-id")


def safe_url(url: str) -> str:
    """``url`` without query, fragment or user info, made printable: fit for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return safe(urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")), 300)


def check_url(url: str, option: str, *, allow_plain_http: bool = False) -> str:
    """An absolute http(s) URL; plain http only to loopback (or where ``allow_plain_http``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{option}: '{safe_url(url)}' is not an http(s) URL")
    if parts.scheme == "http" and not allow_plain_http and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{option}: plain http is only allowed to loopback addresses; use https://")
    return url


class HttpFailure(Exception):
    """An HTTP exchange that failed: unreachable (``status`` None), an error status, or a bad body."""

    def __init__(
        self, url: str, status: int | None, message: str, request_ids: Sequence[str] = (), *, timed_out: bool = False
    ):
        self.timed_out = timed_out
        """No whole answer within the exchange's time (``Watchdog``): a timeout when the run's deadline passed."""
        self.url = safe_url(url)
        self.status = status
        self.message = safe(message)
        self.request_ids = tuple(dict.fromkeys(request_ids))
        super().__init__(f"{self.url}: {status}: {self.message}")

    def to_scan_error(self, context: str, *, hint: str = "") -> ScanError:
        """The user-facing error: what crgate tried, where, the status and server text, and a hint."""
        status = f"HTTP {self.status}" if self.status is not None else "unreachable"
        message = f"{context}: {self.message} ({status} from {self.url})" + (f". {hint}" if hint else "")
        return ScanError(message, code=f"HTTP {self.status}" if self.status else None, request_ids=self.request_ids)


@dataclass(frozen=True)
class HttpClient:
    """Requests with crgate's headers; ``ca_file`` replaces the system roots for https (as for gRPC)."""

    ca_file: str | None = None

    def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float, use_proxy: bool = True
    ) -> dict[str, Any]:
        """GET ``url`` and return its JSON object; HttpFailure otherwise."""
        return self._request(url, None, dict(headers or {}), timeout, use_proxy)

    def post_form(
        self, url: str, fields: Mapping[str, str], *, headers: Mapping[str, str] | None = None, timeout: float
    ) -> dict[str, Any]:
        """POST ``fields`` as ``application/x-www-form-urlencoded`` and return the JSON object answered."""
        body = urllib.parse.urlencode(fields).encode("ascii")
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self._request(url, body, all_headers, timeout, True)

    def _opener(self, use_proxy: bool, watchdog: Watchdog) -> urllib.request.OpenerDirector:
        import ssl
        import urllib.request

        if self.ca_file:  # read bounded and checked, as for gRPC, rather than by OpenSSL unbounded
            context = ssl.create_default_context(cadata=read_ca_file(self.ca_file).decode("ascii", "replace"))
        else:
            context = ssl.create_default_context()
        handlers: list[Any] = [*watchdog.handlers(context), _no_redirect()]
        handlers.append(urllib.request.ProxyHandler() if use_proxy else urllib.request.ProxyHandler({}))
        return urllib.request.build_opener(*handlers)

    def _request(
        self, url: str, body: bytes | None, headers: dict[str, str], timeout: float, use_proxy: bool
    ) -> dict[str, Any]:
        import http.client
        import urllib.error
        import urllib.request

        from crgate.scanner.httpwatch import Watchdog

        request_id = str(uuid.uuid4())
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "x-request-id": request_id, **headers}
        host = urllib.parse.urlsplit(url).hostname or ""
        request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
        log.debug("http %s %s request-id=%s timeout=%.1fs", request.get_method(), safe_url(url), request_id, timeout)
        ids = [request_id]
        # The whole exchange, not each byte, is bounded: a socket timeout restarts on every byte received.
        watchdog = Watchdog(timeout)
        late = HttpFailure(url, None, f"no complete answer within {timeout:.1f}s", ids, timed_out=True)
        try:
            with watchdog:
                opener = self._opener(use_proxy and not is_loopback_host(host), watchdog)
                with opener.open(request, timeout=max(timeout, 0.001)) as answer:
                    ids += _ids(answer.headers)
                    raw = answer.read(MAX_BODY + 1)
        except urllib.error.HTTPError as error:
            if watchdog.expired:
                raise late from None
            ids += _ids(error.headers)
            raise HttpFailure(url, error.code, _error_text(error), ids) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if watchdog.expired or isinstance(reason, TimeoutError):
                raise late from None
            raise HttpFailure(url, None, f"cannot connect: {reason}", ids) from None
        if watchdog.expired:  # what was read when the sockets were shut down is not the whole answer
            raise late
        if len(raw) > MAX_BODY:
            raise HttpFailure(url, 200, "answer is larger than 1 MiB", ids)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HttpFailure(url, 200, "answer is not JSON", ids) from None
        if not isinstance(data, dict):
            raise HttpFailure(url, 200, "answer is not a JSON object", ids)
        return data


def _no_redirect() -> urllib.request.HTTPRedirectHandler:
    """A handler that refuses every redirect (defined here, on first use, to keep urllib.request off import)."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
            raise urllib.error.HTTPError(req.full_url, code, f"unexpected redirect ({code}); not followed", headers, fp)

    return NoRedirect()


def require_str(data: Mapping[str, Any], key: str, url: str, what: str) -> str:
    """A non-empty string field of a JSON answer; MalformedResponseError otherwise (never quoting values)."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or any(ch.isspace() for ch in value.strip()):
        raise MalformedResponseError(f"{what}: the answer of {safe_url(url)} has no usable '{key}'")
    return value.strip()


def lifetime_of(data: Mapping[str, Any], key: str = "expires_in") -> float | None:
    """``expires_in`` seconds of an OAuth-style answer, when it is a sane number."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < 10**7 else None


def _ids(headers: Any) -> list[str]:
    if headers is None:
        return []
    return [safe(headers[name], 128) for name in _REQUEST_ID_HEADERS if headers.get(name)]


def _error_text(error: urllib.error.HTTPError) -> str:
    """The server's error in an OAuth JSON answer (``error``, ``error_description``), else the reason."""
    try:
        raw = error.read(MAX_BODY)
        data = json.loads(raw)
    except Exception:  # noqa: BLE001 - the status alone is still a message
        return str(error.reason or "error")
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("error", "error_description", "message") if isinstance(data.get(k), str)]
        if parts:
            return ": ".join(parts)
    return str(error.reason or "error")
