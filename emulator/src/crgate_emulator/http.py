"""The emulator's loopback HTTP endpoints: the workload identity federation token exchange (HTTPS in
TLS mode, like ``auth.yandex.cloud``), the VM metadata service and GitHub Actions' OIDC token endpoint.

Each answer carries ``x-request-id`` (the client's, echoed) and ``x-server-trace-id``.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crgate_emulator.authority import Authority, ExchangeRefused
from crgate_emulator.stats import EmulatorStats
from crgate_emulator.tls import TlsMaterial

TOKEN_PATH = "/oauth/token"
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
GITHUB_PATH = "/github/oidc-token"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
FORM_FIELDS = ("grant_type", "requested_token_type", "audience", "subject_token", "subject_token_type")
MAX_FORM = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    """Routes to the three endpoints; ``server.emulator`` holds the authority and stats."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self.headers.get("x-request-id") or str(uuid.uuid4()))
        self.send_header("x-server-trace-id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, error: str, description: str) -> None:
        self._answer(status, {"error": error, "error_description": description})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urllib.parse.urlsplit(self.path)
        authority, stats = self.server.authority, self.server.stats
        if parts.path == METADATA_PATH and self.server.serves_metadata:
            stats.record_call("HTTP metadata", {k.lower(): v for k, v in self.headers.items()})
            if self.headers.get("Metadata-Flavor") != "Google":
                return self._refuse(403, "forbidden", "Missing Metadata-Flavor:Google header")
            account = authority.identities.metadata_service_account
            if account is None:
                return self._refuse(404, "not_found", "no service account is attached to this VM")
            token, _, lifetime = authority.issue(account)
            return self._answer(200, {"access_token": token, "expires_in": int(lifetime) or 1, "token_type": "Bearer"})
        if parts.path == GITHUB_PATH and self.server.serves_metadata:
            audience = urllib.parse.parse_qs(parts.query).get("audience", [""])[0]
            stats.record_call("HTTP github", {"audience": audience})
            github = authority.identities.github
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if github is None or scheme.lower() != "bearer" or token != github.request_token:
                return self._refuse(401, "unauthorized", "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            return self._answer(200, {"value": github.id_token})
        return self._refuse(404, "not_found", f"no such endpoint {parts.path}")

    def do_POST(self) -> None:  # noqa: N802
        if urllib.parse.urlsplit(self.path).path != TOKEN_PATH or not self.server.serves_token:
            return self._refuse(404, "not_found", "no such endpoint")
        self.server.stats.record_call("HTTP token exchange", {})
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self._refuse(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_FORM:
            return self._refuse(400, "invalid_request", "empty or oversized form")
        try:
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(), strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return self._refuse(400, "invalid_request", "malformed form")
        fields: dict[str, str] = {}
        for name in FORM_FIELDS:
            values = form.get(name, [])
            if len(values) != 1 or not values[0]:
                return self._refuse(400, "invalid_request", f"{name} is required (exactly once)")
            fields[name] = values[0]
        if fields["grant_type"] != TOKEN_EXCHANGE_GRANT:
            return self._refuse(400, "unsupported_grant_type", f"grant_type must be {TOKEN_EXCHANGE_GRANT}")
        if fields["requested_token_type"] != ACCESS_TOKEN_TYPE:
            return self._refuse(400, "invalid_request", f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
        if fields["subject_token_type"] != ID_TOKEN_TYPE:
            return self._refuse(400, "invalid_request", f"subject_token_type must be {ID_TOKEN_TYPE}")
        try:
            account = self.server.authority.account_of_subject_token(fields["subject_token"], fields["audience"])
        except ExchangeRefused as refused:
            return self._refuse(refused.status, refused.error, refused.description)
        token, _, lifetime = self.server.authority.issue(account)
        return self._answer(
            200,
            {
                "access_token": token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": "Bearer",
                "expires_in": int(lifetime) or 1,
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, authority: Authority, stats: EmulatorStats, *, token: bool, metadata: bool):
        super().__init__((host, 0), _Handler)
        self.authority = authority
        self.stats = stats
        self.serves_token = token
        self.serves_metadata = metadata


class HttpEndpoints:
    """Two small servers on ``host``: the token exchange (HTTPS with ``tls``), metadata + GitHub OIDC (HTTP)."""

    def __init__(self, host: str, authority: Authority, stats: EmulatorStats, tls: TlsMaterial | None = None):
        self._token = _Server(host, authority, stats, token=True, metadata=False)
        self._metadata = _Server(host, authority, stats, token=False, metadata=True)
        self._scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            self._token.socket = context.wrap_socket(self._token.socket, server_side=True)
            self._scheme = "https"
        self._host = f"[{host}]" if ":" in host else host
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            for server in (self._token, self._metadata)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def token_url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._token.server_address[1]}{TOKEN_PATH}"

    @property
    def metadata_address(self) -> str:
        """``HOST:PORT`` for ``YC_METADATA_ADDR``."""
        return f"{self._host}:{self._metadata.server_address[1]}"

    @property
    def github_request_url(self) -> str:
        """For ``ACTIONS_ID_TOKEN_REQUEST_URL`` (GitHub's carries a query already; so does this one)."""
        return f"http://{self.metadata_address}{GITHUB_PATH}?api-version=2.0"

    def stop(self) -> None:
        for server in (self._token, self._metadata):
            server.shutdown()
            server.server_close()
