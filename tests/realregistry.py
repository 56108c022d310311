"""A real OCI registry for tests: Debian's ``docker-registry`` (the CNCF distribution server) started on
a free loopback port in a temporary directory, stopped after, with one of its two auth modes:

- ``basic``: htpasswd (bcrypt), one user ``iam`` whose password is the test's IAM token;
- ``bearer``: distribution's token auth: the registry answers 401 with a ``Bearer`` challenge naming a
  token service and accepts only JWTs signed by a key whose certificate is in its ``rootcertbundle``.
  The token service is ``TokenService`` below (it plays Yandex's: Basic ``iam:<IAM token>`` in, a JWT
  granting pull, or nothing, out); the checking is the real registry's.

Missing ``docker-registry`` or ``bcrypt`` skips locally and fails in CI (``tests/integration.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from integration import need

BINARY = "/usr/bin/docker-registry"
USER = "iam"
STARTUP_SECONDS = 15.0

CONFIG = """version: 0.1
log:
  level: info  # for its "listening on 127.0.0.1:PORT" line: it picks its own port (addr :0)
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: crgate-test-secret
auth:
{auth}
"""
BASIC_AUTH = """  htpasswd:
    realm: crgate-test
    path: {htpasswd}"""
TOKEN_AUTH = """  token:
    realm: {realm}
    service: {service}
    issuer: crgate-test-token-service
    rootcertbundle: {certificate}"""
SERVICE = "crgate-test-registry"
LISTENING = re.compile(r'msg="listening on 127\.0\.0\.1:(\d+)"')


@dataclass
class RealRegistry:
    url: str
    user: str
    password: str
    process: subprocess.Popen
    log: Path
    token_service: TokenService | None = None

    def stop(self) -> None:
        if self.token_service is not None:
            self.token_service.stop()
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def registry_binary() -> str | None:
    return BINARY if Path(BINARY).exists() else shutil.which("docker-registry")


def start_real_registry(
    directory: Path, password: str, *, auth: str = "basic", pull_only: tuple[str, ...] = ()
) -> RealRegistry:
    """Start docker-registry in ``directory``; the one user is ``iam`` with ``password`` (in bearer
    mode, the tokens in ``pull_only`` authenticate too, but are granted nothing: a denied read)."""
    binary = registry_binary()
    need(binary, "Debian's docker-registry is not installed (apt-get install docker-registry)")
    try:
        import bcrypt
    except ImportError:
        bcrypt = None
    need(bcrypt, "the bcrypt package (a test extra) is not installed")
    assert binary is not None and bcrypt is not None
    token_service = None
    if auth == "bearer":
        token_service = TokenService(directory, password, denied=pull_only)
        auth_config = TOKEN_AUTH.format(
            realm=token_service.realm, service=SERVICE, certificate=token_service.certificate
        )
    else:
        htpasswd = directory / "htpasswd"
        htpasswd.write_text(f"{USER}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
        auth_config = BASIC_AUTH.format(htpasswd=htpasswd)
    config = directory / "config.yml"
    config.write_text(CONFIG.format(root=directory / "data", auth=auth_config))
    log = directory / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    # The registry binds port 0 and logs the port it got: a port probed free and then handed over could
    # be taken in between by another test worker's server.
    registry = RealRegistry("", USER, password, process, log, token_service)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not registry.url:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            registry.url = f"http://127.0.0.1:{found.group(1)}"
        elif process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            raise AssertionError(f"docker-registry did not start: {log.read_text()[-2000:]}")
        else:
            time.sleep(0.05)
    while True:
        try:
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=1).close()
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                return registry
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            raise AssertionError(f"docker-registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.05)


@dataclass
class TokenService:
    """The token service of a ``bearer`` registry, on its own loopback port.

    ``GET /token?service=...&scope=repository:<name>:<actions>`` with Basic ``iam:<password>`` answers
    ``{"token": <JWT>}``; the JWT is RS256, with the signing certificate in ``x5c`` (the registry checks
    it against ``rootcertbundle``), ``iss``/``aud``/``exp`` and an ``access`` list granting the scope's
    actions, or nothing for ``denied`` passwords. Other credentials get 401.
    """

    directory: Path
    password: str
    denied: tuple[str, ...] = ()
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crgate test token service")])
        now = dt.datetime.now(dt.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.certificate = self.directory / "token-signer.pem"
        self.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                service.requests.append(self.path)
                status, body = service.answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def authorization(self, scope: str) -> str:
        """A ``Bearer`` header for ``scope`` (the pusher's: ``repository:<name>:pull,push``)."""
        return "Bearer " + self._jwt(scope, granted=True)

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = password = ""
        if scheme.lower() != "basic" or user != USER or password not in (self.password, *self.denied):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        if query.get("service") != [SERVICE]:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]}
        scope = (query.get("scope") or [""])[0]
        return 200, {"token": self._jwt(scope, granted=password == self.password), "expires_in": 300}

    def _jwt(self, scope: str, *, granted: bool) -> str:
        import jwt

        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access = [{"type": kind, "name": name, "actions": actions.split(",")}] if granted and kind else []
        now = int(time.time())
        claims = {
            "iss": "crgate-test-token-service",
            "sub": USER,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": [self._x5c]})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
