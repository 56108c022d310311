"""The emulator's registry endpoint: the OCI distribution API for the scenario's images, answering the
way Debian's ``docker-registry`` (the CNCF distribution server, 2.8) does for the same requests.

Served: ``GET /v2/`` (the API check), ``GET``/``HEAD /v2/<registry-id>/<repo>/manifests/<tag|digest>``
and, for the Bearer flow, ``GET /token``. Answers carry ``Docker-Distribution-Api-Version``; manifests
``Content-Type``, ``Docker-Content-Digest`` and ``Etag``; errors the distribution JSON
(``{"errors": [{"code": "MANIFEST_UNKNOWN", ...}]}``). ``Accept`` is honoured as distribution does: an
OCI index or manifest is only served to a client that accepts it (404 ``MANIFEST_UNKNOWN`` otherwise),
a Docker manifest list falls back to its linux/amd64 image for a client that accepts only Docker v2.

Authentication, when the scenario has ``require_auth: true``, is Yandex's: user ``iam`` with an IAM
token the emulator's IAM issued (or a configured one) as the password; either answered directly
(``registry.auth: basic``) or through the distribution token flow (``bearer``, the default): a 401
with ``WWW-Authenticate: Bearer realm=<url>/token,service=...,scope=...``, the token endpoint takes the
Basic credentials and hands out a short-lived registry token for the scope. Reading needs a role that
may download images; a token without one gets an ``insufficient_scope`` token (bearer) or 403 DENIED.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crgate_emulator import oci
from crgate_emulator.authority import Authority
from crgate_emulator.identities import SCANNER_ROLE
from crgate_emulator.multiarch import RegistrySettings
from crgate_emulator.rpc import GrpcAbort
from crgate_emulator.scenario import Image, Scenario
from crgate_emulator.stats import EmulatorStats
from crgate_emulator.tls import TlsMaterial

# Roles that may download images (Yandex's role docs: the scanner role includes downloading).
PULL_ROLES = frozenset(
    {
        SCANNER_ROLE,
        "container-registry.images.puller",
        "container-registry.images.pusher",
        "container-registry.editor",
        "container-registry.admin",
        "editor",
        "admin",
    }
)
REGISTRY_USER = "iam"
TOKEN_PATH = "/token"
_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_MANIFEST_PATH = re.compile(r"/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)")


class _Refusal(Exception):
    """An error answer: status, distribution error code and message, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, detail: Any = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.detail = status, code, message, headers or {}, detail


class RegistryState:
    """Scenario manifests by repository, registry tokens and the fault script, behind one lock."""

    def __init__(self, scenario: Scenario, authority: Authority, clock: Callable[[], float] = time.monotonic):
        self.scenario = scenario
        self.settings: RegistrySettings = scenario.registry
        self.authority = authority
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, frozenset[str], float]] = {}  # token -> (account, repos, expiry)
        self._faults_left = [fault.count for fault in self.settings.faults]
        self._images: dict[str, list[Image]] = {}
        for image in scenario.images():
            self._images.setdefault(image.repository_name, []).append(image)

    def lookup(self, name: str, reference: str) -> Image | None:
        """The image a tag or digest names in repository ``name`` (digests: the manifest's own)."""
        for image in self._images.get(name, []):
            if reference in image.tags or reference == image.manifest_digest:
                return image
        return None

    def by_digest(self, name: str, digest: str) -> Image | None:
        return next((i for i in self._images.get(name, []) if i.manifest_digest == digest), None)

    def take_fault(self) -> int | None:
        with self._lock:
            for index, fault in enumerate(self.settings.faults):
                if self._faults_left[index] > 0:
                    self._faults_left[index] -= 1
                    return fault.status
        return None

    # -- authentication

    def account_of_basic(self, authorization: str) -> str:
        """The service account behind ``Basic iam:<IAM token>``; _Refusal 401 otherwise."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise _Refusal(401, "UNAUTHORIZED", "authentication required")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refusal(401, "UNAUTHORIZED", "authentication required") from None
        if user != REGISTRY_USER or not password:
            raise _Refusal(401, "UNAUTHORIZED", "authentication required")
        try:
            return self.authority.identify(f"Bearer {password}")
        except GrpcAbort:
            raise _Refusal(401, "UNAUTHORIZED", "authentication required") from None

    def may_pull(self, account_id: str) -> bool:
        account = self.authority.identities.account(account_id)
        return bool(account and set(account.roles) & PULL_ROLES)

    def issue_token(self, account_id: str, repositories: frozenset[str]) -> str:
        token = "crt." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (account_id, repositories, self._clock() + self.settings.token_lifetime)
        return token

    def token_grants(self, token: str, name: str | None) -> bool | None:
        """None: not a live token; else whether it grants pull on ``name`` (None: any valid token)."""
        with self._lock:
            entry = self._tokens.get(token)
            now = self._clock()
        if entry is None or now >= entry[2]:
            return None
        return name is None or name in entry[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        return

    # -- answers

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {"Docker-Distribution-Api-Version": "registry/2.0", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", self.headers.get("x-request-id") or str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, refusal: _Refusal) -> None:
        error: dict[str, Any] = {"code": refusal.code, "message": refusal.message}
        if refusal.detail is not None or refusal.status == 401:
            error["detail"] = refusal.detail
        body = json.dumps({"errors": [error]}).encode()
        self._send(refusal.status, body, {"Content-Type": "application/json; charset=utf-8", **refusal.headers})

    def _plain_404(self) -> None:
        self._send(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})

    # -- routing

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        stats = self.server.stats
        try:
            if path == TOKEN_PATH and self.server.state.settings.auth == "bearer":
                stats.record_call("HTTP registry token", {})
                return self._token()
            if path == "/v2/":
                stats.record_call("HTTP registry /v2/", {})
                self._authorize(None)
                return self._send(200, b"{}", {"Content-Type": "application/json; charset=utf-8"})
            match = _MANIFEST_PATH.fullmatch(path)
            if match is None or not _NAME.fullmatch(match["name"]):
                return self._plain_404()
            seen = {
                k.lower(): v for k, v in self.headers.items() if k.lower() in ("accept", "user-agent", "x-request-id")
            }
            stats.record_call("HTTP registry manifest", seen)
            return self._manifest(match["name"], match["reference"])
        except _Refusal as refusal:
            # A 401 to a request without credentials is the protocol's challenge, not an error answer.
            if refusal.status != 401 or self.headers.get("Authorization"):
                stats.record_error("HTTP registry", str(refusal.status))
            else:
                stats.record_call("HTTP registry challenge", {})
            return self._refuse(refusal)

    def _authorize(self, name: str | None) -> None:
        """Check the request's credentials for pulling from ``name`` (None: the /v2/ check)."""
        state = self.server.state
        if not state.scenario.require_auth:
            return
        authorization = self.headers.get("Authorization", "")
        scope = f"repository:{name}:pull" if name else ""
        # What distribution names in a 401's detail: the access that was wanted (null for /v2/).
        wanted = [{"Type": "repository", "Class": "", "Name": name, "Action": "pull"}] if name else None
        if state.settings.auth == "basic":
            challenge = {"WWW-Authenticate": 'Basic realm="crgate-emulator"'}
            try:
                account = state.account_of_basic(authorization)
            except _Refusal as refusal:
                refusal.headers.update(challenge)
                refusal.detail = wanted
                raise
            if name is not None and not state.may_pull(account):
                raise _Refusal(403, "DENIED", "requested access to the resource is denied")
            return
        params = f'realm="{self.server.registry_url}{TOKEN_PATH}",service="{self.server.service}"'
        if scope:
            params += f',scope="{scope}"'
        scheme, _, token = authorization.partition(" ")
        granted = state.token_grants(token.strip(), name) if scheme.lower() == "bearer" else None
        if granted is None:
            challenge = {"WWW-Authenticate": f"Bearer {params}"}
            raise _Refusal(401, "UNAUTHORIZED", "authentication required", challenge, detail=wanted)
        if not granted:
            challenge = {"WWW-Authenticate": f'Bearer {params},error="insufficient_scope"'}
            raise _Refusal(401, "UNAUTHORIZED", "authentication required", challenge, detail=wanted)

    def _token(self) -> None:
        state = self.server.state
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        account = state.account_of_basic(self.headers.get("Authorization", ""))
        repositories = set()
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and "pull" in actions.split(",") and state.may_pull(account):
                repositories.add(name)
        token = state.issue_token(account, frozenset(repositories))
        lifetime = int(state.settings.token_lifetime)
        body = json.dumps({"token": token, "access_token": token, "expires_in": lifetime}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _manifest(self, name: str, reference: str) -> None:
        state = self.server.state
        self._authorize(name)
        fault = state.take_fault()
        if fault is not None:
            raise _Refusal(fault, "UNAVAILABLE" if fault >= 500 else "UNKNOWN", f"injected fault: HTTP {fault}")
        if ":" in reference:
            if not _DIGEST.fullmatch(reference):
                raise _Refusal(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        elif not _TAG.fullmatch(reference):
            raise _Refusal(400, "TAG_INVALID", "manifest tag did not match URI")
        image = state.lookup(name, reference)
        if image is None:
            detail = {"Name": name, "Revision": reference} if ":" in reference else {"Tag": reference}
            raise _Refusal(404, "MANIFEST_UNKNOWN", "manifest unknown", detail=detail)
        image = self._negotiated(name, image, by_digest=":" in reference)
        digest = image.manifest_digest
        shown = digest
        if state.settings.anomaly == "wrong_digest_header":
            shown = oci.digest_of(image.manifest + b" ")
        self._send(
            200,
            image.manifest,
            {"Content-Type": image.media_type, "Docker-Content-Digest": shown, "Etag": f'"{shown}"'},
        )

    def _negotiated(self, name: str, image: Image, *, by_digest: bool) -> Image:
        """What distribution 2.8 serves for this ``Accept``."""
        accepted = {
            part.split(";", 1)[0].strip().lower()
            for header in self.headers.get_all("Accept") or []
            for part in header.split(",")
        }
        kind = image.media_type
        if kind in accepted:
            return image
        if kind == oci.OCI_INDEX:
            raise _Refusal(404, "MANIFEST_UNKNOWN", "OCI index found, but accept header does not support OCI indexes")
        if kind == oci.OCI_MANIFEST:
            raise _Refusal(
                404, "MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI manifests"
            )
        if kind == oci.DOCKER_MANIFEST_LIST and oci.DOCKER_MANIFEST in accepted:
            for entry in json.loads(image.manifest)["manifests"]:
                if entry.get("platform", {}).get("architecture") == "amd64" and entry["platform"].get("os") == "linux":
                    fallback = self.server.state.by_digest(name, entry["digest"])
                    if fallback is not None:
                        return fallback
            raise _Refusal(404, "MANIFEST_UNKNOWN", "manifest unknown")
        if kind == oci.DOCKER_MANIFEST and by_digest:
            return image
        raise _Refusal(400, "MANIFEST_INVALID", "manifest invalid", detail={})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, state: RegistryState, stats: EmulatorStats):
        super().__init__((host, 0), _Handler)
        self.state = state
        self.stats = stats
        self.registry_url = ""
        self.service = ""


class RegistryEndpoint:
    """The distribution API on ``host`` (any free port), HTTPS with ``tls``."""

    def __init__(
        self,
        host: str,
        scenario: Scenario,
        authority: Authority,
        stats: EmulatorStats,
        tls: TlsMaterial | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._server = _Server(host, RegistryState(scenario, authority, clock), stats)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        shown_host = f"[{host}]" if ":" in host else host
        address = f"{shown_host}:{self._server.server_address[1]}"
        self.url = f"{scheme}://{address}"
        self._server.registry_url = self.url
        self._server.service = address
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
