"""``RegistryClient`` against misbehaving servers on loopback: oversized and slow answers, transient
failures, redirects, hostile token services, TLS. Each server here is a real HTTP server; the client's
transport is the one production uses."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from crgate.errors import ConfigError, MalformedResponseError, ScanTimeoutError
from crgate.images import parse_image_ref
from crgate.registry import DigestMismatchError, RegistryClient, RegistryError, check_registry_url
from crgate.registry.client import MAX_MANIFEST_BYTES
from crgate.registry.index import OCI_MANIFEST
from crgate.scanner.credentials.tokens import StaticTokenSource
from crgate.timing import Deadline
from crgate_emulator import Emulator, demo_scenario
from scripted import Handler, Scripted, respond

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "x"}, "layers": []}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
REF = parse_image_ref("cr.yandex/crptest/app:1.0")


@pytest.fixture
def serve() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(*script: Handler) -> Scripted:
        server = Scripted(*script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def answer(status: int = 200, body: bytes = MANIFEST, **headers: str) -> Handler:
    return respond(status, body, {"Content-Type": OCI_MANIFEST, **headers})


def client(url: str, token: str | None = "t1.good", **kwargs: Any) -> RegistryClient:
    source = StaticTokenSource(token, "--iam-token") if token else None
    return RegistryClient(token_source=source, registry_url=url, sleep=lambda _: None, **kwargs)


def test_a_plain_answer_is_read_and_hashed(serve) -> None:
    server = serve(answer(Docker_Content_Digest=DIGEST))
    fetched = client(server.url).fetch(REF, Deadline(5))
    assert fetched.digest == DIGEST and fetched.data == MANIFEST
    path, headers = server.requests[0]
    assert path == "/v2/crptest/app/manifests/1.0" and "authorization" not in headers  # no credentials unasked


def test_an_announced_oversized_manifest_is_refused_unread(serve) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(MAX_MANIFEST_BYTES + 1))
        handler.end_headers()

    with pytest.raises(MalformedResponseError, match="announced a manifest of 4194305 bytes"):
        client(serve(huge).url).fetch(REF, Deadline(5))


def test_an_endless_answer_is_cut_at_the_limit(serve) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.0"  # no length: the body ends when the connection does
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        chunk = b" " * 65536
        for _ in range(MAX_MANIFEST_BYTES // len(chunk) + 2):
            handler.wfile.write(chunk)

    with pytest.raises(MalformedResponseError, match="sent more than 4194304 bytes"):
        client(serve(endless).url).fetch(REF, Deadline(10))


def test_a_slow_drip_ends_with_the_deadline(serve) -> None:
    sent: list[int] = []
    ended = threading.Event()

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        try:
            for _ in range(1000):  # a byte every 0.05 s: 50 s for the whole body
                handler.wfile.write(b" ")
                handler.wfile.flush()
                sent.append(1)
                time.sleep(0.05)
        finally:
            ended.set()

    with pytest.raises(ScanTimeoutError, match="passed while reading from the registry"):
        client(serve(drip).url).fetch(REF, Deadline(0.5))
    # crgate hung up mid-body (the drip's writes failed), instead of reading on until the body was complete.
    assert ended.wait(10) and len(sent) < 1000, len(sent)


def test_a_silent_server_is_unreachable_after_bounded_retries(serve) -> None:
    def silent(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(1.0)

    server = serve(silent)
    with pytest.raises(RegistryError, match="did not answer within"):
        client(server.url, per_request_timeout=0.2).fetch(REF, Deadline(30))
    assert len(server.requests) == 3


def test_an_expired_deadline_asks_nobody(serve) -> None:
    server = serve(answer())
    clock = [0.0]
    deadline = Deadline(1, clock=lambda: clock[0])
    clock[0] = 2.0
    with pytest.raises(ScanTimeoutError):
        client(server.url).fetch(REF, deadline)
    assert server.requests == []


def test_transient_failures_are_retried_and_persistent_ones_reported(serve) -> None:
    server = serve(answer(503, b"{}"), answer(502, b"{}"), answer())
    assert client(server.url).fetch(REF, Deadline(5)).digest == DIGEST
    assert len(server.requests) == 3
    failing = serve(answer(503, b'{"errors": [{"code": "UNAVAILABLE", "message": "try later"}]}'))
    with pytest.raises(RegistryError, match="answered HTTP 503; UNAVAILABLE: try later"):
        client(failing.url).fetch(REF, Deadline(5))
    assert len(failing.requests) == 3


def test_unreachable_registry(serve) -> None:
    # The port stays bound, not listening, for the whole test: connections are refused, and no other
    # test worker can start a server on it meanwhile.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(RegistryError, match=f"cannot reach the registry at http://127.0.0.1:{port}"):
            client(f"http://127.0.0.1:{port}").fetch(REF, Deadline(5))


def test_redirects_within_the_origin_are_followed_with_credentials(serve) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        answer(307, b"", Location="/elsewhere/manifest")(handler)

    server = serve(answer(401, b"{}", WWW_Authenticate='Basic realm="r"'), redirect, answer())
    assert client(server.url).fetch(REF, Deadline(5)).digest == DIGEST
    assert server.requests[2][0] == "/elsewhere/manifest"
    assert server.requests[2][1]["authorization"].startswith("Basic ")


def test_redirects_to_another_host_are_refused(serve) -> None:
    elsewhere = serve(answer())
    server = serve(answer(302, b"", Location=f"{elsewhere.url}/v2/x"))
    with pytest.raises(RegistryError, match="redirected a manifest read to another host"):
        client(server.url).fetch(REF, Deadline(5))
    assert elsewhere.requests == [] and len(server.requests) == 1  # refused, and not retried


def test_the_iam_token_never_goes_to_a_foreign_realm(serve) -> None:
    realm = serve(answer(200, b'{"token": "x"}'))
    foreign = realm.url.replace("127.0.0.1", "localhost")
    server = serve(answer(401, b"{}", WWW_Authenticate=f'Bearer realm="{foreign}/token",service="s"'))
    with pytest.raises(RegistryError, match=r"wants the IAM token sent to another host \(localhost\)"):
        client(server.url).fetch(REF, Deadline(5))
    assert realm.requests == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"expires_in": 60}', "no usable token"),
        (b'{"token": "abc\\r\\nX-Injected: 1"}', "no usable token"),
    ],
)
def test_hostile_token_services_are_malformed_answers(serve, body: bytes, why: str) -> None:
    server = serve(answer(401, b"{}"), answer(200, body, Content_Type="application/json"))
    realm = f"{server.url}/token"
    server.script[0] = answer(401, b"{}", WWW_Authenticate=f'Bearer realm="{realm}",service="emu"')
    with pytest.raises(MalformedResponseError, match=why):
        client(server.url).fetch(REF, Deadline(5))
    token_request = server.requests[1]
    assert token_request[0] == "/token?service=emu&scope=repository%3Acrptest%2Fapp%3Apull"
    assert token_request[1]["authorization"].startswith("Basic ")


def test_a_digest_header_crgate_cannot_check_is_refused(serve) -> None:
    server = serve(answer(Docker_Content_Digest="md5:abcdef"))
    with pytest.raises(DigestMismatchError, match="cannot check"):
        client(server.url).fetch(REF, Deadline(5))
    sha512 = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    assert client(serve(answer(Docker_Content_Digest=sha512)).url).fetch(REF, Deadline(5)).digest == DIGEST


def test_an_iam_token_unfit_for_a_header_is_never_sent(serve) -> None:
    server = serve(answer(401, b"{}", WWW_Authenticate='Basic realm="r"'))
    with pytest.raises(RegistryError, match="cannot travel in an HTTP header"):
        client(server.url, token="t1.abc\r\nX: y").fetch(REF, Deadline(5))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://cr.yandex", "is not an http"),
        ("cr.yandex", "is not an http"),
        ("http://cr.yandex", "plain http is only allowed to loopback"),
        ("https://iam:secret@cr.yandex", "must not carry credentials"),
        ("https://cr.yandex/?x=1", "must not carry credentials, a query"),
        ("https://cr.yandex:99999", "invalid port"),
    ],
)
def test_bad_registry_urls_are_usage_errors(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        check_registry_url(url)
    assert "secret" not in str(caught.value)


def test_registry_urls() -> None:
    assert check_registry_url("https://cr.yandex/") == "https://cr.yandex"
    assert check_registry_url("http://[::1]:5000/prefix/") == "http://[::1]:5000/prefix"
    assert RegistryClient(token_source=None).base_url(REF) == "https://cr.yandex"


def test_tls_with_the_emulators_ca_file(tmp_path) -> None:
    with Emulator(demo_scenario(), tls=True) as emulator:
        assert emulator.registry_url.startswith("https://")
        ref = parse_image_ref("cr.yandex/crpdemo/app:multi")
        with_ca = RegistryClient(token_source=None, registry_url=emulator.registry_url, ca_file=emulator.ca_file)
        assert with_ca.resolve(ref, Deadline(5)).is_index
        system_roots = RegistryClient(token_source=None, registry_url=emulator.registry_url, sleep=lambda _: None)
        with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"):
            system_roots.fetch(ref, Deadline(5))
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=f"--ca-file {missing}: not usable"):
        RegistryClient(token_source=None, ca_file=str(missing))
