"""A small client of the OCI distribution API: read the manifest behind an image reference.

    client = RegistryClient(token_source=source, registry_url=None, ca_file=None)
    resolved = client.resolve(parse_image_ref("cr.yandex/crp.../app:1.0"), deadline, platforms=())

Why not a library: the maintained Python OCI clients (oras-py, python-dxf) pull in ``requests`` and
more, follow redirects with credentials, bound neither answer size nor total time, do not verify
manifest digests, and oras-py validates every manifest against the OCI image-manifest schema (so an
index or a Docker manifest list fails) and exits the process on HTTP errors. crgate needs one GET with
Docker's authentication, so this is that GET over stdlib ``urllib``, written to the distribution spec.

What it guarantees: the ``Accept`` header lists the OCI index, Docker manifest list, OCI manifest and
Docker v2 manifest types; auth answers the registry's ``WWW-Authenticate`` challenge the way ``docker
login -u iam`` does (Basic ``iam:<IAM token>``, or the Bearer token flow of the distribution token
spec with those credentials), with one refresh of a rejected IAM token; TLS verifies against the system
roots or ``ca_file``; plain http only to loopback; redirects are followed only within the same origin;
the body is at most ``MAX_MANIFEST_BYTES`` and the whole read ends by the run's ``Deadline``; the
bytes' sha256 must equal the digest asked for and the ``Docker-Content-Digest`` sent. Every failure
is one of the errors in ``crgate.registry.errors`` (exit 3), or ``ScanTimeoutError`` when the
deadline passes (exit 4); nothing falls back to anything.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import json
import logging
import random
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crgate import __version__
from crgate.errors import ConfigError, MalformedResponseError, ScanTimeoutError
from crgate.model import ImageRef
from crgate.regions import refuse_foreign_override, registry_hosts
from crgate.registry.auth import Challenge, check_realm, parse_challenges, pick_challenge
from crgate.registry.errors import (
    ROLES_HINT,
    DigestMismatchError,
    ManifestNotFoundError,
    RegistryAccessDenied,
    RegistryError,
)
from crgate.registry.index import ACCEPTED_TYPES, Manifest, Platform, Resolved, parse_manifest, select
from crgate.scanner.credentials.tokens import TokenSource
from crgate.scanner.httpwatch import Watchdog
from crgate.scanner.netutil import is_loopback_host
from crgate.textsafe import safe
from crgate.timing import Deadline, RetryPolicy

log = logging.getLogger("crgate.registry")

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""OCI's recommended manifest size limit; a bigger answer is refused, never truncated."""
MAX_TOKEN_ANSWER = 64 * 1024
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 3
PER_REQUEST_TIMEOUT = 30.0
DEFAULT_TOKEN_LIFETIME = 60.0  # the token spec's default when the answer has no expires_in
REGISTRY_USER = "iam"  # docker login -u iam -p <IAM token>
RETRY = RetryPolicy(initial=0.5, multiplier=2.0, cap=4.0, max_attempts=3)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"crgate/{__version__}"
_CREDENTIAL = re.compile(r"[\x21-\x7e]{1,8192}")  # what may go into an Authorization header
_REQUEST_ID_HEADERS = ("x-request-id", "x-server-trace-id")


@dataclass(frozen=True)
class FetchedManifest:
    """The verified bytes of one manifest, as the registry sent them."""

    reference: str
    data: bytes
    content_type: str | None
    digest: str
    """sha256 of ``data``: checked against the digest asked for and ``Docker-Content-Digest``."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    challenges: tuple[str, ...]
    request_ids: tuple[str, ...]


class RegistryClient:
    """Reads manifests from the registries of image references. Thread-safe; one per run.

    ``token_source`` gives the IAM token used as the ``iam`` user's password (None: anonymous, so a
    registry that wants credentials is a denied read). ``registry_url`` replaces ``https://<host of the
    reference>`` for every reference (``--registry-url``; plain http only to loopback). ``ca_file``
    replaces the system roots for https.
    """

    def __init__(
        self,
        *,
        token_source: TokenSource | None,
        registry_url: str | None = None,
        ca_file: str | None = None,
        retry: RetryPolicy = RETRY,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        per_request_timeout: float = PER_REQUEST_TIMEOUT,
    ):
        self._token_source = token_source
        self._registry_url = check_registry_url(registry_url) if registry_url else None
        # The system roots take tens of milliseconds to load: only when an https registry is asked.
        self._context = _ssl_context(ca_file) if ca_file else None
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._per_request = per_request_timeout
        self._lock = threading.Lock()
        self._auth: dict[tuple[str, str], tuple[str, float | None]] = {}  # (base, repo) -> (header, expiry)

    # ------------------------------------------------------------------------------------------ public

    def base_url(self, ref: ImageRef) -> str:
        """Where the distribution API of ``ref`` is: ``--registry-url``, else ``https://<host>``."""
        return self._registry_url or f"https://{ref.host}"

    def resolve(self, ref: ImageRef, deadline: Deadline, platforms: Sequence[Platform] = ()) -> Resolved:
        """The images ``ref`` gates (see ``crgate.registry.index.select``), from its verified manifest."""
        fetched = self.fetch(ref, deadline)
        manifest = parse_manifest(fetched.data, fetched.content_type, reference=ref.raw)

        def child(digest: str) -> Manifest:  # an index entry's own manifest: is it a container image?
            raw = f"{ref.host}/{ref.registry_id}/{ref.repository}@{digest}"
            entry = dataclasses.replace(ref, raw=raw, tag=None, digest=digest)
            answer = self.fetch(entry, deadline)
            return parse_manifest(answer.data, answer.content_type, reference=f"{raw} (listed in {ref.raw})")

        return select(manifest, reference=ref.raw, digest=fetched.digest, platforms=platforms, child=child)

    def fetch(self, ref: ImageRef, deadline: Deadline) -> FetchedManifest:
        """GET the manifest of ``ref`` (by digest when it has one, else by tag), verified."""
        reference = ref.digest or ref.tag or "latest"
        base = self.base_url(ref)
        url = f"{base}/v2/{ref.registry_id}/{ref.repository}/manifests/{reference}"
        answer = self._authorized_get(url, base, ref.repository_name, deadline, what=ref.raw)
        if answer.status == 200:
            return _verified(ref, answer, url)
        raise self._failure(ref, answer, url)

    # ------------------------------------------------------------------------------------ auth rounds

    def _authorized_get(self, url: str, base: str, repository: str, deadline: Deadline, *, what: str) -> _Answer:
        """GET with the cached credentials; a 401 is answered from its challenge, and when the fresh
        credentials are refused too, the IAM token is refreshed once (if its source can) and tried again."""
        key = (base, repository)
        header = self._cached(key)
        answered_with: str | None = None  # the IAM token behind ``header`` when it was made for this read
        refreshed = False
        while True:
            headers = {"Accept": ", ".join(ACCEPTED_TYPES)}
            if header:
                headers["Authorization"] = header
            answer = self._exchange(url, headers, deadline)
            if answer.status != 401:
                return answer
            with self._lock:
                self._auth.pop(key, None)
            source = self._token_source
            if source is None:
                raise RegistryAccessDenied(
                    f"reading the manifest of {what}: the registry at {base} wants credentials and crgate has none "
                    f"(HTTP 401{_server_errors(answer)}). Pass --iam-token, --sa-key or --federation-sa-id. "
                    + ROLES_HINT,
                    code="HTTP 401",
                    request_ids=answer.request_ids,
                )
            if answered_with is not None:
                if refreshed or not source.invalidate(answered_with):
                    raise RegistryAccessDenied(
                        f"reading the manifest of {what}: the registry at {base} refused the credentials "
                        f"({source.description}) (HTTP 401{_server_errors(answer)}). " + ROLES_HINT,
                        code="HTTP 401",
                        request_ids=answer.request_ids,
                    )
                refreshed = True
            challenge = pick_challenge(parse_challenges(answer.challenges), base)
            header, answered_with, refreshed = self._answer_challenge(
                challenge, base, repository, deadline, what, refreshed
            )

    def _cached(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            entry = self._auth.get(key)
        if entry is None:
            return None
        header, expires = entry
        return header if expires is None or time.monotonic() < expires else None

    def _basic(self) -> tuple[str, str]:
        """``Basic iam:<IAM token>`` and the token in it."""
        assert self._token_source is not None
        token = self._token_source.token()
        if not _CREDENTIAL.fullmatch(token):
            raise RegistryError("the IAM token contains characters that cannot travel in an HTTP header")
        return "Basic " + base64.b64encode(f"{REGISTRY_USER}:{token}".encode()).decode("ascii"), token

    def _answer_challenge(
        self, challenge: Challenge, base: str, repository: str, deadline: Deadline, what: str, refreshed: bool
    ) -> tuple[str, str, bool]:
        """The Authorization header that answers ``challenge`` (cached for the repository), the IAM token
        it was made with, and whether that token was refreshed by now (the token service may refuse a
        stale one once)."""
        key = (base, repository)
        if challenge.scheme == "basic":
            header, iam_token = self._basic()
            with self._lock:
                self._auth[key] = (header, None)
            return header, iam_token, refreshed
        realm = check_realm(challenge.realm, base)
        query = {"scope": f"repository:{repository}:pull"}
        if challenge.params.get("service"):
            query = {"service": challenge.params["service"], **query}
        separator = "&" if urllib.parse.urlsplit(realm).query else "?"
        token_url = realm + separator + urllib.parse.urlencode(query)
        assert self._token_source is not None
        while True:
            basic, iam_token = self._basic()
            answer = self._exchange(token_url, {"Accept": "application/json", "Authorization": basic}, deadline)
            if answer.status not in (401, 403):
                break
            if refreshed or not self._token_source.invalidate(iam_token):
                raise RegistryAccessDenied(
                    f"reading the manifest of {what}: the registry's token service refused the credentials "
                    f"({self._token_source.description}) (HTTP {answer.status}{_server_errors(answer)}). " + ROLES_HINT,
                    code=f"HTTP {answer.status}",
                    request_ids=answer.request_ids,
                )
            refreshed = True
        if answer.status != 200:
            raise RegistryError(
                f"reading the manifest of {what}: the registry's token service answered HTTP {answer.status}"
                f"{_server_errors(answer)}",
                code=f"HTTP {answer.status}",
                request_ids=answer.request_ids,
            )
        token, lifetime = _registry_token(answer, what)
        header = f"Bearer {token}"
        with self._lock:
            self._auth[key] = (header, time.monotonic() + max(1.0, lifetime - 5.0))
        return header, iam_token, refreshed

    # ------------------------------------------------------------------------------------- transport

    def _exchange(self, url: str, headers: dict[str, str], deadline: Deadline) -> _Answer:
        """One GET, following same-origin redirects and retrying transient failures under ``deadline``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._follow(url, headers, deadline)
            except _Unreachable:
                if attempt >= self._retry.max_attempts or not self._may_wait(attempt, deadline):
                    raise
                continue
            retryable = answer.status in RETRYABLE_STATUSES and attempt < self._retry.max_attempts
            if retryable and self._may_wait(attempt, deadline):
                continue
            return answer

    def _may_wait(self, attempt: int, deadline: Deadline) -> bool:
        delay = self._retry.delay(attempt, self._rng)
        if delay >= deadline.remaining():
            return False
        self._sleep(delay)
        return True

    def _follow(self, url: str, headers: dict[str, str], deadline: Deadline) -> _Answer:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._once(current, headers, deadline)
            if answer.status not in (301, 302, 303, 307, 308):
                return answer
            target = urllib.parse.urljoin(current, answer.headers.get("location", ""))
            if _origin(target) != _origin(current):
                raise RegistryError(
                    f"the registry at {_origin(current)} redirected a manifest read to another host "
                    f"({safe(_origin(target), 100)}); crgate does not take credentials there: "
                    "set --registry-url to the registry that serves the manifests",
                    code=f"HTTP {answer.status}",
                    request_ids=answer.request_ids,
                )
            current = target
        raise RegistryError(f"the registry at {_origin(url)} redirected more than {MAX_REDIRECTS} times")

    def _once(self, url: str, headers: dict[str, str], deadline: Deadline) -> _Answer:
        if deadline.expired():
            raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed before the registry was asked")
        request_id = str(uuid.uuid4())
        request = urllib.request.Request(
            url, headers={"User-Agent": USER_AGENT, "x-request-id": request_id, **headers}, method="GET"
        )
        host = urllib.parse.urlsplit(url).hostname or ""
        timeout = deadline.call_timeout(self._per_request)
        # The whole exchange, not each byte, is bounded: a socket timeout restarts on every byte received.
        watchdog = Watchdog(timeout)
        handlers: list[Any] = [
            _KeepRedirects(),
            *watchdog.handlers(self._tls_context() if url.startswith("https:") else None),
        ]
        handlers.append(urllib.request.ProxyHandler({}) if is_loopback_host(host) else urllib.request.ProxyHandler())
        opener = urllib.request.build_opener(*handlers)
        log.debug("registry GET %s request-id=%s", _without_query(url), request_id)
        try:
            with watchdog:
                try:
                    response = opener.open(request, timeout=timeout)
                except urllib.error.HTTPError as error:
                    response = error
                with response:
                    status = int(response.status or 0)
                    response_headers = response.headers
                    length = response_headers.get("Content-Length") or ""
                    if status == 200 and length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
                        raise MalformedResponseError(
                            f"the registry at {_origin(url)} announced a manifest of {int(length)} bytes, over "
                            f"crgate's limit of {MAX_MANIFEST_BYTES} (OCI's recommended maximum)"
                        )
                    body = _read_bounded(response, MAX_MANIFEST_BYTES if status == 200 else MAX_ERROR_BODY, deadline)
            if watchdog.expired:  # what was read when the sockets were shut down is not the whole answer
                raise TimeoutError
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if watchdog.expired or isinstance(reason, TimeoutError) or isinstance(error, TimeoutError):
                if deadline.expired():
                    raise ScanTimeoutError(
                        f"the --timeout of {deadline.seconds:g}s passed while reading from the registry"
                    ) from None
                raise _Unreachable(
                    f"the registry at {_origin(url)} did not answer within {timeout:.0f}s", request_ids=(request_id,)
                ) from None
            raise _Unreachable(
                f"cannot reach the registry at {_origin(url)}: {safe(str(reason), 300)}",
                request_ids=(request_id,),
            ) from None
        if status == 200 and len(body) > MAX_MANIFEST_BYTES:
            raise MalformedResponseError(
                f"the registry at {_origin(url)} sent more than {MAX_MANIFEST_BYTES} bytes for a manifest "
                "(OCI's recommended maximum); refused"
            )
        lowered = {k.lower(): v for k, v in response_headers.items()}
        ids = [request_id] + [safe(lowered[h], 128) for h in _REQUEST_ID_HEADERS if lowered.get(h)]
        return _Answer(
            status=status,
            headers=lowered,
            body=body,
            challenges=tuple(response_headers.get_all("WWW-Authenticate") or ()),
            request_ids=tuple(dict.fromkeys(ids)),
        )

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = _ssl_context(None)
            return self._context

    # -------------------------------------------------------------------------------------- failures

    def _failure(self, ref: ImageRef, answer: _Answer, url: str) -> Exception:
        what = f"reading the manifest of {ref.raw} from {_origin(url)}"
        status = answer.status
        codes = _error_codes(answer)
        if status == 404:
            asked = f"digest {ref.digest}" if ref.digest else f"tag '{ref.tag}'"
            hint = (
                ". Is the push still in flight, or is the tag, registry id or repository wrong? Check with: "
                f"yc container image list --repository-name {ref.repository_name}"
                if codes
                else " (not a distribution API answer: is --registry-url right?)"
            )
            return ManifestNotFoundError(
                f"{what}: not found: the registry has no manifest for {asked} in {ref.repository_name}"
                f"{_server_errors(answer)}"
                f"{hint}",
                code="HTTP 404",
                request_ids=answer.request_ids,
            )
        if status == 403 or "DENIED" in codes:
            return RegistryAccessDenied(
                f"{what}: access denied (HTTP {status}{_server_errors(answer)}). " + ROLES_HINT,
                code=f"HTTP {status}",
                request_ids=answer.request_ids,
            )
        return RegistryError(
            f"{what}: the registry answered HTTP {status}{_server_errors(answer)}",
            code=f"HTTP {status}",
            request_ids=answer.request_ids,
        )


def check_registry_url(url: str, option: str = "--registry-url", *, from_environment: bool = False) -> str:
    """An absolute http(s) URL without query or credentials; plain http only to loopback.

    ``from_environment``: the URL came only from ``CRGATE_REGISTRY_URL`` (``option``), which whoever shapes
    the job can set; then it must name one of Yandex's registry hosts, since the registry receives the
    IAM token and says which digest a tag names (``crgate.regions.refuse_foreign_override``).
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{option}: '{safe(url, 100)}' is not an http(s) URL (e.g. https://cr.yandex)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{option}: the URL must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(f"{option}: plain http is only allowed to loopback addresses; use https://")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ConfigError(f"{option}: '{safe(url, 100)}' has an invalid port") from None
    if from_environment:
        refuse_foreign_override(
            parts.hostname,
            url.strip(),
            variable=option,
            flag="--registry-url",
            known=registry_hosts(),
            what="a Yandex Container Registry host",
        )
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class _Unreachable(RegistryError):
    """No answer at all (connection refused, reset, timed out): the one failure worth a retry."""


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back (as HTTPError) so crgate decides; urllib would follow with credentials."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    if not ca_file:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        why = getattr(error, "strerror", None) or error
        raise ConfigError(f"--ca-file {ca_file}: not usable for https: {why}") from None


def _read_bounded(response: Any, limit: int, deadline: Deadline) -> bytes:
    """At most ``limit + 1`` bytes, in chunks, checking the deadline between them (a slow drip ends)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        if deadline.expired():
            raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed while reading from the registry")
        chunk = response.read1(min(65536, limit + 1 - size))  # what has arrived: read() waits for it all
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _verified(ref: ImageRef, answer: _Answer, url: str) -> FetchedManifest:
    computed = "sha256:" + hashlib.sha256(answer.body).hexdigest()
    if ref.digest and computed != ref.digest:
        raise DigestMismatchError(
            f"the registry at {_origin(url)} answered {ref.raw} with bytes whose sha256 is {computed}, "
            "not the digest asked for: refused",
            request_ids=answer.request_ids,
        )
    sent = answer.headers.get("docker-content-digest")
    if sent:
        algorithm, _, value = sent.strip().partition(":")
        if algorithm not in ("sha256", "sha512") or not re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{128}", value):
            raise DigestMismatchError(
                f"the registry at {_origin(url)} sent a Docker-Content-Digest crgate cannot check "
                f"('{safe(sent, 100)}') for {ref.raw}: refused",
                request_ids=answer.request_ids,
            )
        actual = hashlib.new(algorithm, answer.body).hexdigest()
        if actual != value:
            raise DigestMismatchError(
                f"the registry at {_origin(url)} sent {ref.raw} as {safe(sent, 140)}, but the bytes hash to "
                f"{algorithm}:{actual}: refused (a proxy or the registry altered the manifest)",
                request_ids=answer.request_ids,
            )
    return FetchedManifest(ref.raw, answer.body, answer.headers.get("content-type"), computed)


def _registry_token(answer: _Answer, what: str) -> tuple[str, float]:
    def bad(why: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"reading the manifest of {what}: the registry's token service answered {why}",
            request_ids=answer.request_ids,
        )

    if len(answer.body) > MAX_TOKEN_ANSWER:
        raise bad(f"more than {MAX_TOKEN_ANSWER} bytes")
    try:
        data = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        raise bad("something that is not JSON") from None
    if not isinstance(data, dict):
        raise bad("something that is not a JSON object")
    token = data.get("token") or data.get("access_token")
    if not isinstance(token, str) or not _CREDENTIAL.fullmatch(token):
        raise bad("no usable token")
    lifetime = data.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) else 0.0
    return token, seconds if 0 < seconds < 10**7 else DEFAULT_TOKEN_LIFETIME


def _error_codes(answer: _Answer) -> list[str]:
    return [code for code, _ in _errors(answer)]


def _errors(answer: _Answer) -> list[tuple[str, str]]:
    """The ``errors`` of a distribution API error body: (code, message) pairs, sanitized and bounded."""
    try:
        data = json.loads(answer.body[:MAX_ERROR_BODY])
    except (ValueError, UnicodeDecodeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    found = []
    for error in errors[:5]:
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            message = error.get("message")
            text = safe(message, 200) if isinstance(message, str) else ""
            found.append((safe(error["code"], 40), text))
    return found


def _server_errors(answer: _Answer) -> str:
    shown = [f"{code}: {message}" if message else code for code, message in _errors(answer)]
    return f"; {'; '.join(shown)}" if shown else ""


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _without_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
