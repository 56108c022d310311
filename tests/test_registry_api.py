"""The registry side against a real registry and the emulator, the same cases for both.

Targets: Debian's ``docker-registry`` with genuine images pushed through the distribution API, in both
of its auth modes (htpasswd Basic, and token auth: the Bearer flow, with a test token service whose JWTs
the registry verifies), and the emulator's registry endpoint in both of its modes (Bearer and Basic).
Each holds ``crptest/app`` with ``multi`` (an OCI index of linux/amd64 and linux/arm64/v8 with
provenance attestations), ``multi-docker`` (the same as a Docker manifest list) and ``single`` (one OCI
manifest). crgate's ``RegistryClient`` reads them for real; raw requests check that the emulator
answers the wire the way docker-registry does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from authkit import SCANNER_ROLE
from crgate.images import parse_image_ref
from crgate.registry import (
    DigestMismatchError,
    ManifestNotFoundError,
    PlatformNotFoundError,
    RegistryAccessDenied,
    RegistryClient,
    parse_platform,
)
from crgate.registry.auth import parse_challenges
from crgate.registry.index import ACCEPTED_TYPES, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from crgate.scanner.credentials.tokens import StaticTokenSource, TokenSource
from crgate.timing import Deadline
from crgate_emulator import Emulator, scenario_from_dict
from ocipush import Pusher
from realregistry import start_real_registry

TOKEN = "t1.registry-test-reader"
NO_ROLE_TOKEN = "t1.registry-test-no-role"
PLATFORMS = ("linux/amd64", "linux/arm64/v8")
REPO = "crptest/app"


@dataclass
class Expected:
    """What one tag resolves to: the document's digest, platform -> image digest, attestation digests."""

    digest: str
    children: dict[str, str]
    attestations: set[str] = field(default_factory=set)


@dataclass
class Target:
    name: str
    url: str
    auth: str  # basic | bearer
    multi: Expected
    multi_docker: Expected
    single: str
    emulator: Emulator | None = None

    def client(self, token: str | None = TOKEN, url: str | None = None) -> RegistryClient:
        source = StaticTokenSource(token, "--iam-token") if token else None
        return RegistryClient(token_source=source, registry_url=url or self.url, sleep=lambda _: None)


def ref(tag_or_digest: str) -> Any:
    separator = "@" if tag_or_digest.startswith("sha256:") else ":"
    return parse_image_ref(f"cr.yandex/{REPO}{separator}{tag_or_digest}")


# ------------------------------------------------------------------------------------------- targets


def real_target(directory: Path, auth: str) -> Iterator[Target]:
    registry = start_real_registry(directory, TOKEN, auth=auth, pull_only=(NO_ROLE_TOKEN,))
    try:
        authorize = registry.token_service.authorization if registry.token_service else None
        pusher = Pusher(registry.url, registry.user, registry.password, authorize=authorize)
        expected = {}
        for tag, docker in (("multi", False), ("multi-docker", True)):
            images = {p: pusher.image(REPO, p, docker=docker) for p in PLATFORMS}
            index, attested = pusher.index(REPO, tag, images, docker=docker)
            expected[tag] = Expected(
                index.digest, {p: i.digest for p, i in images.items()}, {a.digest for a in attested.values()}
            )
        single = pusher.image(REPO, "linux/amd64", tag="single")
        multi, multi_docker = expected["multi"], expected["multi-docker"]
        yield Target(f"docker-registry-{auth}", registry.url, auth, multi, multi_docker, single.digest)
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def real_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from real_target(tmp_path_factory.mktemp("registry-basic"), "basic")


@pytest.fixture(scope="module")
def real_registry_bearer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from real_target(tmp_path_factory.mktemp("registry-bearer"), "bearer")


def emulator_scenario(auth: str) -> dict[str, Any]:
    return {
        "require_auth": True,
        "registry": {"auth": auth},
        "service_accounts": [
            {"id": "ajeregistryreader001", "roles": [SCANNER_ROLE]},
            {"id": "ajeregistrynorole001", "roles": ["container-registry.viewer"]},
        ],
        "iam_tokens": [
            {"token": TOKEN, "service_account_id": "ajeregistryreader001"},
            {"token": NO_ROLE_TOKEN, "service_account_id": "ajeregistrynorole001"},
        ],
        "registries": [
            {
                "id": "crptest",
                "repositories": [
                    {
                        "name": "app",
                        "images": [
                            {"id": "crptestamd64", "platform": "linux/amd64"},
                            {"id": "crptestarm64", "platform": "linux/arm64/v8"},
                            {"id": "crptestdockeramd64", "platform": "linux/amd64", "format": "docker"},
                            {"id": "crptestdockerarm64", "platform": "linux/arm64/v8", "format": "docker"},
                            {"id": "crptestsingle", "tags": ["single"]},
                        ],
                        "indexes": [
                            {"id": "crptestmulti", "tags": ["multi"], "manifests": ["crptestamd64", "crptestarm64"]},
                            {
                                "id": "crptestmultidocker",
                                "tags": ["multi-docker"],
                                "format": "docker",
                                "manifests": ["crptestdockeramd64", "crptestdockerarm64"],
                            },
                        ],
                    }
                ],
            }
        ],
    }


def emulator_target(auth: str) -> Iterator[Target]:
    with Emulator(scenario_from_dict(emulator_scenario(auth), source="<test>")) as emulator:
        scenario = emulator.scenario

        def expected(index_id: str) -> Expected:
            index = scenario.image(index_id)
            assert index is not None
            children = {}
            attestations = set()
            for entry in json.loads(index.manifest)["manifests"]:
                if entry["platform"]["os"] == "unknown":
                    attestations.add(entry["digest"])
                else:
                    image = next(i for i in scenario.images() if i.digest == entry["digest"])
                    children[image.platform] = image.digest
            return Expected(index.digest, children, attestations)

        single = scenario.image("crptestsingle")
        assert single is not None
        yield Target(
            f"emulator-{auth}",
            emulator.registry_url,
            auth,
            expected("crptestmulti"),
            expected("crptestmultidocker"),
            single.digest,
            emulator,
        )


@pytest.fixture(scope="module")
def emulator_bearer() -> Iterator[Target]:
    yield from emulator_target("bearer")


@pytest.fixture(scope="module")
def emulator_basic() -> Iterator[Target]:
    yield from emulator_target("basic")


@pytest.fixture(params=["real_registry", "real_registry_bearer", "emulator_bearer", "emulator_basic"])
def target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------------- crgate's client


def test_index_resolves_to_its_platform_images_never_attestations(target: Target) -> None:
    resolved = target.client().resolve(ref("multi"), Deadline(10))
    assert resolved.is_index and resolved.media_type == OCI_INDEX
    assert resolved.digest == target.multi.digest
    assert {c.platform: c.digest for c in resolved.children} == target.multi.children
    assert [c.platform for c in resolved.children] == list(PLATFORMS)
    assert {c.media_type for c in resolved.children} == {OCI_MANIFEST}
    assert {s.digest for s in resolved.skipped} == target.multi.attestations
    assert {s.reason for s in resolved.skipped} == {"attestation"}
    assert not {c.digest for c in resolved.children} & target.multi.attestations
    assert resolved.platforms == PLATFORMS


def test_docker_manifest_list_resolves_the_same_way(target: Target) -> None:
    resolved = target.client().resolve(ref("multi-docker"), Deadline(10))
    assert resolved.is_index and resolved.media_type == DOCKER_MANIFEST_LIST
    assert resolved.digest == target.multi_docker.digest
    assert {c.platform: c.digest for c in resolved.children} == target.multi_docker.children
    assert {c.media_type for c in resolved.children} == {DOCKER_MANIFEST}
    assert {s.digest for s in resolved.skipped} == target.multi_docker.attestations


def test_single_manifest_gates_itself(target: Target) -> None:
    resolved = target.client().resolve(ref("single"), Deadline(10))
    assert not resolved.is_index and resolved.media_type == OCI_MANIFEST
    assert [(c.digest, c.platform) for c in resolved.children] == [(target.single, None)]
    assert resolved.digest == target.single


@pytest.mark.parametrize(
    ("wanted", "platforms"),
    [
        (["linux/arm64"], ["linux/arm64/v8"]),  # no variant: every arm64 variant
        (["linux/arm64/v8"], ["linux/arm64/v8"]),
        (["linux/amd64"], ["linux/amd64"]),
        (["linux/amd64", "linux/arm64"], list(PLATFORMS)),
    ],
)
def test_platform_filter(target: Target, wanted: list[str], platforms: list[str]) -> None:
    filters = [parse_platform(p) for p in wanted]
    resolved = target.client().resolve(ref("multi"), Deadline(10), filters)
    assert [c.platform for c in resolved.children] == platforms
    assert [c.digest for c in resolved.children] == [target.multi.children[p] for p in platforms]
    filtered = {s.digest for s in resolved.skipped if s.reason == "platform filter"}
    assert filtered == {d for p, d in target.multi.children.items() if p not in platforms}


def test_platform_filter_matching_nothing_names_what_is_offered(target: Target) -> None:
    with pytest.raises(PlatformNotFoundError) as caught:
        target.client().resolve(ref("multi"), Deadline(10), [parse_platform("linux/s390x")])
    assert "without linux/s390x" in str(caught.value) and "linux/amd64, linux/arm64/v8" in str(caught.value)
    assert caught.value.exit_code == 3


def test_reading_by_digest_verifies_the_bytes(target: Target) -> None:
    by_digest = target.client().resolve(ref(target.multi.digest), Deadline(10))
    assert by_digest.digest == target.multi.digest
    assert {c.platform: c.digest for c in by_digest.children} == target.multi.children
    child = target.client().resolve(ref(target.multi.children["linux/arm64/v8"]), Deadline(10))
    assert not child.is_index and child.children[0].digest == target.multi.children["linux/arm64/v8"]


@pytest.mark.parametrize("strip_header", [False, True])
def test_altered_bytes_are_refused(target: Target, strip_header: bool) -> None:
    """A proxy that changes the manifest: caught by Docker-Content-Digest, or by the digest asked for."""
    with TamperingProxy(target.url, strip_header=strip_header) as proxy:
        client = target.client(url=proxy.url)
        with pytest.raises(DigestMismatchError) as caught:
            client.resolve(ref(target.multi.digest), Deadline(10))
        assert "not the digest asked for" in str(caught.value) or "hash to" in str(caught.value)
        if not strip_header:
            with pytest.raises(DigestMismatchError, match="hash to"):
                client.resolve(ref("multi"), Deadline(10))
        assert caught.value.exit_code == 3


@pytest.mark.parametrize("token", [None, "t1.wrong-token"])
def test_missing_or_wrong_credentials_are_a_denied_read(target: Target, token: str | None) -> None:
    with pytest.raises(RegistryAccessDenied) as caught:
        target.client(token=token).resolve(ref("multi"), Deadline(10))
    message = str(caught.value)
    assert "container-registry.images.scanner" in message and "container-registry.images.puller" in message
    assert "HTTP 401" in message and caught.value.exit_code == 3
    assert TOKEN not in message and "t1.wrong-token" not in message


@pytest.mark.parametrize("reference", ["nope", "sha256:" + "0" * 64])
def test_unknown_tag_or_digest_is_not_found(target: Target, reference: str) -> None:
    with pytest.raises(ManifestNotFoundError) as caught:
        target.client().resolve(ref(reference), Deadline(10))
    assert "MANIFEST_UNKNOWN" in str(caught.value) and caught.value.exit_code == 3


def test_a_rejected_token_is_refreshed_once(target: Target) -> None:
    source = RefreshingSource(["t1.expired", TOKEN])
    client = RegistryClient(token_source=source, registry_url=target.url)
    assert client.resolve(ref("multi"), Deadline(10)).digest == target.multi.digest
    assert source.invalidated == ["t1.expired"]


# ------------------------------------------------------------------------- the wire, compared as is


WIRE_CASES = [
    ("multi", None, "none"),
    ("multi", None, "no-role"),  # authenticated, but not allowed to pull (bearer: insufficient_scope)
    ("multi", ", ".join(ACCEPTED_TYPES), "reader"),
    ("multi", None, "reader"),  # an OCI index to a client that does not accept indexes
    ("single", None, "reader"),
    ("multi-docker", None, "reader"),
    ("multi-docker", DOCKER_MANIFEST, "reader"),  # distribution's fallback to the linux/amd64 image
    ("nope", ", ".join(ACCEPTED_TYPES), "reader"),
]
PAIRS = [("real_registry", "emulator_basic"), ("real_registry_bearer", "emulator_bearer")]
# htpasswd has no roles (every authenticated user may pull): the "no-role" case runs on the bearer pair.
WIRE = [
    (*pair, *case) for pair in PAIRS for case in WIRE_CASES if not (pair[0] == "real_registry" and case[2] == "no-role")
]


@pytest.mark.parametrize(("real", "emulated", "tag", "accept", "caller"), WIRE)
def test_wire_answers_match_docker_registry(
    request: pytest.FixtureRequest, real: str, emulated: str, tag: str, accept: str | None, caller: str
) -> None:
    """Status, error codes and headers of the same request to docker-registry and to the emulator."""
    targets = [request.getfixturevalue(real), request.getfixturevalue(emulated)]
    token = {"none": None, "no-role": NO_ROLE_TOKEN, "reader": TOKEN}[caller]
    seen = [wire_summary(target, tag, accept, token) for target in targets]
    assert seen[1] == seen[0]


def wire_summary(target: Target, tag: str, accept: str | None, token: str | None) -> dict[str, Any]:
    status, headers, body = raw_get(target, f"/v2/{REPO}/manifests/{tag}", accept, token)
    summary: dict[str, Any] = {
        "status": status,
        "api": headers.get("docker-distribution-api-version"),
        "content-type": headers["content-type"],
    }
    if status == 200:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        summary["digest-header-matches"] = headers["docker-content-digest"] == digest
        summary["etag"] = headers["etag"] == f'"{digest}"'
        summary["platform"] = _platform_of(target, digest)
    else:
        summary["errors"] = [(e["code"], e["message"], e.get("detail")) for e in json.loads(body)["errors"]]
        challenges = parse_challenges([headers["www-authenticate"]] if "www-authenticate" in headers else [])
        summary["challenge"] = [
            (c.scheme, sorted(c.params), c.params.get("scope"), c.params.get("error")) for c in challenges
        ]
    return summary


def test_head_answers_the_headers_without_the_body(emulator_bearer: Target, real_registry_bearer: Target) -> None:
    for target in (emulator_bearer, real_registry_bearer):
        accept = ", ".join(ACCEPTED_TYPES)
        status, headers, body = raw_get(target, f"/v2/{REPO}/manifests/multi", accept, TOKEN, "HEAD")
        assert (status, body, headers["content-type"]) == (200, b"", OCI_INDEX)
        assert headers["docker-content-digest"] == target.multi.digest


@pytest.mark.parametrize("name", ["real_registry_bearer", "emulator_bearer", "emulator_basic"])
def test_an_identity_without_a_pull_role_is_a_denied_read(request: pytest.FixtureRequest, name: str) -> None:
    target: Target = request.getfixturevalue(name)
    with pytest.raises(RegistryAccessDenied, match="container-registry.images.puller") as caught:
        target.client(token=NO_ROLE_TOKEN).resolve(ref("multi"), Deadline(10))
    assert ("HTTP 403" in str(caught.value)) == (target.auth == "basic")


def test_emulator_bearer_tokens_are_cached_per_repository(emulator_bearer: Target) -> None:
    assert emulator_bearer.emulator is not None
    calls = emulator_bearer.emulator.stats.calls
    client = emulator_bearer.client()
    before = calls["HTTP registry token"], calls["HTTP registry manifest"]
    client.resolve(ref("multi"), Deadline(10))
    client.resolve(ref("single"), Deadline(10))
    # the first read: 401, token, read again, then each of its two platform manifests (are they images?);
    # the second uses the cached token at once
    assert (calls["HTTP registry token"] - before[0], calls["HTTP registry manifest"] - before[1]) == (1, 5)
    metadata = emulator_bearer.emulator.stats.metadata_of("HTTP registry manifest")[-1]
    assert metadata["accept"] == ", ".join(ACCEPTED_TYPES) and metadata["user-agent"].startswith("crgate/")


# ------------------------------------------------------------------------------------------- helpers


class RefreshingSource(TokenSource):
    """A token source (crgate's interface) that hands out ``tokens`` in turn, one per invalidation."""

    description = "test tokens"

    def __init__(self, tokens: list[str]):
        self._tokens = list(tokens)
        self.invalidated: list[str] = []

    def token(self) -> str:
        return self._tokens[0]

    def invalidate(self, token: str) -> bool:
        if token != self._tokens[0] or len(self._tokens) == 1:
            return False
        self.invalidated.append(self._tokens.pop(0))
        return True


def raw_get(
    target: Target, path: str, accept: str | None, token: str | None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = authorization(target, token)
    request = urllib.request.Request(target.url + path, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def authorization(target: Target, token: str) -> str:
    """What a client sends after answering the target's challenge for pulling ``REPO`` as ``iam:token``."""
    basic = "Basic " + base64.b64encode(f"iam:{token}".encode()).decode()
    if target.auth == "basic":
        return basic
    try:
        urllib.request.urlopen(f"{target.url}/v2/{REPO}/manifests/multi", timeout=10)
    except urllib.error.HTTPError as error:
        challenge = parse_challenges(error.headers.get_all("WWW-Authenticate") or [])[0]
    query = urllib.parse.urlencode({"service": challenge.params["service"], "scope": challenge.params["scope"]})
    request = urllib.request.Request(f"{challenge.realm}?{query}", headers={"Authorization": basic})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return "Bearer " + json.load(answer)["token"]


def _platform_of(target: Target, digest: str) -> str:
    for expected in (target.multi, target.multi_docker):
        if digest == expected.digest:
            return "index"
        for platform, child in expected.children.items():
            if child == digest:
                return platform
    return "single" if digest == target.single else "?"


class TamperingProxy:
    """A loopback proxy to ``upstream`` that adds a byte to every manifest it passes on (and with
    ``strip_header`` drops ``Docker-Content-Digest``): what crgate must notice."""

    def __init__(self, upstream: str, *, strip_header: bool):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                request = urllib.request.Request(upstream + self.path, headers=forwarded)
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, headers, body = answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as error:
                    status, headers, body = error.code, error.headers, error.read()
                if status == 200 and "/manifests/" in self.path:
                    body += b" "
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() == "content-length" or (strip_header and name.lower() == "docker-content-digest"):
                        continue
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
