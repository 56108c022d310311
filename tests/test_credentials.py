"""Unit tests of the credential layer: token caching and refresh, source selection, keys, masking."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest

from authkit import key_json, key_text, private_pem, public_pem, rsa_key
from crgate.errors import ConfigError
from crgate.masking import SecretMasker
from crgate.scanner.credentials.choose import CredentialOptions, choose_credentials
from crgate.scanner.credentials.http import HttpClient, HttpFailure, check_url
from crgate.scanner.credentials.sakey import IAM_TOKEN_AUDIENCE, parse_service_account_key
from crgate.scanner.credentials.tokens import (
    RefreshingTokenSource,
    StaticTokenSource,
    Token,
    refresh_after,
)
from crgate.scanner.transport import ConnectionSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    description = "test source"

    def __init__(self, lifetime: float | None = 100.0, delay: float = 0.0):
        self.lifetime = lifetime
        self.delay = delay
        self.count = 0

    def fetch(self) -> Token:
        time.sleep(self.delay)
        self.count += 1
        return Token(f"token-{self.count}", self.lifetime)


def test_refreshing_source_caches_then_refreshes_before_expiry():
    clock, fetcher, seen = Clock(), Fetcher(), []
    source = RefreshingTokenSource(fetcher, seen.append, clock=clock)
    assert source.token() == source.token() == "token-1"
    clock.now += 79
    assert source.token() == "token-1"
    clock.now += 2  # past 80% of the lifetime
    assert source.token() == "token-2"
    assert seen == ["token-1", "token-2"]


def test_invalidate_forgets_only_the_rejected_token():
    clock, fetcher = Clock(), Fetcher()
    source = RefreshingTokenSource(fetcher, clock=clock)
    first = source.token()
    assert source.invalidate("someone-elses") and source.token() == first
    assert source.invalidate(first) and source.token() == "token-2"


def test_concurrent_callers_share_one_fetch():
    fetcher = Fetcher(delay=0.05)
    source = RefreshingTokenSource(fetcher)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(source.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fetcher.count == 1 and set(results) == {"token-1"}


@pytest.mark.parametrize(
    ("lifetime", "after"), [(None, 3600.0), (43200.0, 3600.0), (10.0, 8.0), (1.0, 0.8), (-5.0, 0.8)]
)
def test_refresh_schedule(lifetime, after):
    assert refresh_after(lifetime) == pytest.approx(after)


def test_static_source_is_never_refreshed_and_observed_once():
    seen: list[str] = []
    source = StaticTokenSource("t1.abc", "IAM token from --iam-token", seen.append)
    assert source.token() == source.token() == "t1.abc"
    assert seen == ["t1.abc"] and not source.invalidate("t1.abc")


def test_reprs_hide_secrets():
    key = parse_service_account_key(key_text("ajekey1", "ajesa1", rsa_key("scanner")), "test")
    things = [
        Token("t1.secret", 5),
        ConnectionSettings(iam_token="t1.secret"),
        CredentialOptions(iam_token="t1.secret", sa_key='{"private_key": "secret"}'),
        key,
    ]
    for thing in things:
        assert "secret" not in repr(thing) and "PRIVATE" not in repr(thing)


# -- choosing a source ------------------------------------------------------------------------------------


def kinds(options: CredentialOptions, env: dict[str, str], *, loopback: bool = False) -> tuple[str | None, str, bool]:
    choice = choose_credentials(options, env, loopback=loopback)
    candidate = choice.candidate
    return (candidate.kind if candidate else None, candidate.origin if candidate else "", choice.probe_metadata)


def test_flags_beat_variables_and_variables_are_used_alone():
    assert kinds(CredentialOptions(sa_key="k.json"), {"YC_TOKEN": "y0"}) == ("sa-key", "--sa-key", False)
    assert kinds(CredentialOptions(), {"YC_SA_ID": "aje"}) == ("federation", "YC_SA_ID", False)
    both = {"YC_IAM_TOKEN": "t1.env"}
    assert kinds(CredentialOptions(iam_token="t1.flag"), both) == ("iam-token", "--iam-token", False)


def test_nothing_given_probes_metadata_except_on_loopback():
    assert kinds(CredentialOptions(), {}) == (None, "", True)
    assert kinds(CredentialOptions(), {}, loopback=True) == (None, "", False)
    assert kinds(CredentialOptions(), {"YC_METADATA_ADDR": "127.0.0.1:1"}, loopback=True) == (None, "", True)


def test_empty_variables_do_not_count_but_are_remembered():
    choice = choose_credentials(CredentialOptions(), {"YC_IAM_TOKEN": "", "YC_TOKEN": "t1.x"}, loopback=False)
    assert choice.candidate is not None and choice.candidate.origin == "YC_TOKEN"
    assert choice.empty_variables == ("YC_IAM_TOKEN",)


def test_empty_flag_is_refused():
    with pytest.raises(ConfigError, match="--iam-token is empty"):
        choose_credentials(CredentialOptions(iam_token=" "), {}, loopback=False)


# -- keys, URLs, masking ----------------------------------------------------------------------------------


def test_key_signs_a_jwt_yandex_iam_accepts():
    key = rsa_key("scanner")
    loaded = parse_service_account_key(key_text("ajekey1", "ajesa1", key), "test")
    token = loaded.jwt(now=time.time())
    assert pyjwt.get_unverified_header(token)["kid"] == "ajekey1"
    claims = pyjwt.decode(token, key.public_key(), algorithms=["PS256"], audience=IAM_TOKEN_AUDIENCE, issuer="ajesa1")
    assert 0 < claims["exp"] - claims["iat"] <= 3600


def test_key_without_the_warning_line_and_in_pkcs1_form_loads():
    from cryptography.hazmat.primitives import serialization

    key = rsa_key("scanner")
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    for private in (private_pem(key), pkcs1):
        data = key_json("ajekey1", "ajesa1", key, private_key=private)
        assert parse_service_account_key(json.dumps(data), "t").service_account_id == "ajesa1"
    assert public_pem(key).startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://auth.yandex.cloud/oauth/token", True),
        ("http://127.0.0.1:8080/oauth/token", True),
        ("http://[::1]:8080/x", True),
        ("http://auth.example.com/oauth/token", False),
        ("ftp://x/y", False),
        ("auth.yandex.cloud", False),
    ],
)
def test_plain_http_only_to_loopback(url, ok):
    if ok:
        assert check_url(url, "--token-endpoint") == url
    else:
        with pytest.raises(ConfigError):
            check_url(url, "--token-endpoint")


class _Redirecting(BaseHTTPRequestHandler):
    """``/token`` redirects to ``/elsewhere``; ``/elsewhere`` answers a token. Paths asked are recorded."""

    asked: list[str] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        if self.path == "/token":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"access_token": "t0ken"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirecting_server() -> Iterator[str]:
    _Redirecting.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_client_answers_json_and_never_follows_a_redirect(redirecting_server):
    client = HttpClient()
    assert client.get_json(f"{redirecting_server}/elsewhere", timeout=5) == {"access_token": "t0ken"}
    with pytest.raises(HttpFailure) as failure:
        client.get_json(f"{redirecting_server}/token", timeout=5)
    assert failure.value.status == 302
    assert "unexpected redirect (302); not followed" in failure.value.message
    assert _Redirecting.asked == ["/elsewhere", "/token"]  # the redirect's target was never asked


def test_masker_announces_on_github_and_redacts_logs(caplog):
    lines: list[str] = []
    masker = SecretMasker({"GITHUB_ACTIONS": "true"}, lines.append)
    masker("t1.secret")
    masker("t1.secret")
    assert lines == ["::add-mask::t1.secret"]
    assert masker.redact("Bearer t1.secret!") == "Bearer ***!"
    logger = logging.getLogger("crgate.test-masking")
    logger.addFilter(masker.log_filter())
    with caplog.at_level(logging.INFO, logger="crgate.test-masking"):
        logger.info("token %s", "t1.secret")
    assert "t1.secret" not in caplog.text and "***" in caplog.text
    quiet: list[str] = []
    SecretMasker({}, quiet.append)("t1.other")
    assert quiet == []
