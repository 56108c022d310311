"""Where the IAM token may go, tried the way an attacker would (issue 17, opening 4): a registry named only
by an environment variable, a registry over plain http off loopback, a token realm on another host.

Each fake here is a real HTTP server on this machine that records every request; the assertion that it
received nothing is the proof that the token never travelled, not only that crgate printed an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import DIGEST_A, VULNERABLE_FINDINGS, StartEmulator, check_args, image, run_cli, scenario
from crgate.errors import ConfigError
from crgate.registry import check_registry_url
from scripted import Scripted, respond

TOKEN = "t1.destination-secret-iam-token"
VULNERABLE = "cr.yandex/crptest/app:vulnerable"


@pytest.fixture
def recorder() -> Iterator[Any]:
    """A loopback HTTP server that records each request and answers every GET with ``status`` and
    ``headers`` (a registry that would map any tag to a clean manifest, or a token realm)."""
    started: list[Scripted] = []

    def start(status: int = 200, **headers: str) -> Scripted:
        body = b'{"token": "registry-token"}' if status == 200 else b"{}"
        server = Scripted(respond(status, body, headers))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def cloud(start_emulator: StartEmulator) -> Any:
    return start_emulator(scenario(image("crpvuln", "vulnerable", DIGEST_A, findings=VULNERABLE_FINDINGS)))


def grpc_only(emu: Any) -> list[str]:
    """``check`` against the emulator's gRPC services, with no --registry-url (the test sets the registry)."""
    args = check_args(emu, "--iam-token", TOKEN)
    at = args.index("--registry-url")
    del args[at : at + 2]
    return args


# -- a registry named only by the environment ----------------------------------------------------------


def test_an_environment_only_registry_never_sees_the_token_nor_decides_the_digest(start_emulator, recorder):
    """The attack: an earlier step sets CRGATE_REGISTRY_URL to its own server on loopback, which would say
    app:vulnerable is the clean image's digest. crgate refuses before any call."""
    emu = cloud(start_emulator)
    fake = recorder(200, Content_Type="application/vnd.oci.image.manifest.v1+json")
    result = run_cli([*grpc_only(emu), VULNERABLE], env={"CRGATE_REGISTRY_URL": fake.url})
    assert result.code == 2, result.output
    assert "CRGATE_REGISTRY_URL names 127.0.0.1, which is not a Yandex Container Registry host" in result.stderr
    assert f"pass it on the command line instead: --registry-url {fake.url}" in result.stderr
    assert fake.requests == []
    assert emu.stats.scans_started == 0 and sum(emu.stats.calls.values()) == 0
    assert TOKEN not in result.output


@pytest.mark.parametrize(
    "url", ["https://registry.example", "https://cr.yandex.attacker.example", "https://[::1]:5000"]
)
def test_an_environment_only_foreign_registry_is_a_usage_error(start_emulator, url):
    emu = cloud(start_emulator)
    result = run_cli([*grpc_only(emu), VULNERABLE], env={"CRGATE_REGISTRY_URL": url})
    assert result.code == 2, result.output
    assert "CRGATE_REGISTRY_URL names" in result.stderr and "--registry-url" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_the_same_registry_named_by_its_flag_is_used(start_emulator):
    emu = cloud(start_emulator)
    result = run_cli([*check_args(emu, "--iam-token", TOKEN), VULNERABLE])
    assert result.code == 1, result.output  # judged: the image is what the registry really serves
    assert "CRGATE_REGISTRY_URL" not in result.output


def test_yandex_registry_hosts_may_come_from_the_environment():
    for host in ("cr.yandex", "cr.cloud.yandex.net", "container-registry.cloud.yandex.net", "cr.yandexcloud.kz"):
        url = f"https://{host}"
        assert check_registry_url(url, "CRGATE_REGISTRY_URL", from_environment=True) == url
    with pytest.raises(ConfigError, match="plain http is only allowed to loopback"):
        check_registry_url("http://cr.yandex", "CRGATE_REGISTRY_URL", from_environment=True)


def test_a_hostile_environment_value_is_printed_inert(start_emulator):
    emu = cloud(start_emulator)
    result = run_cli([*grpc_only(emu), VULNERABLE], env={"CRGATE_REGISTRY_URL": "https://evil.example/\x1b[2J::stop::"})
    assert result.code == 2, result.output
    assert "\x1b" not in result.output


# -- plain http off loopback ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_registry_over_plain_http_on_a_non_loopback_host_is_refused(start_emulator, recorder, how):
    """0.0.0.0 reaches this machine's listeners but is not a loopback address: crgate will not send the
    token there in clear, by flag or variable, and the server that would have answered sees nothing."""
    emu = cloud(start_emulator)
    fake = recorder(200)
    url = f"http://0.0.0.0:{fake.port}"
    args, env = (
        ([*grpc_only(emu), "--registry-url", url], {})
        if how == "flag"
        else (grpc_only(emu), {"CRGATE_REGISTRY_URL": url})
    )
    result = run_cli([*args, VULNERABLE], env=env)
    assert result.code == 2, result.output
    assert "plain http is only allowed to loopback addresses; use https://" in result.stderr
    assert fake.requests == [] and sum(emu.stats.calls.values()) == 0


# -- a token realm on another host ---------------------------------------------------------------------


@pytest.mark.parametrize("realm_host", ["localhost", "0.0.0.0"])
def test_the_token_never_goes_to_a_realm_on_another_host(start_emulator, recorder, realm_host):
    emu = cloud(start_emulator)
    realm = recorder(200, Content_Type="application/json")
    challenge = f'Bearer realm="http://{realm_host}:{realm.port}/token",service="evil"'
    registry = recorder(401, WWW_Authenticate=challenge)
    result = run_cli([*grpc_only(emu), "--registry-url", registry.url, VULNERABLE])
    assert result.code == 3, result.output
    expected = (
        "wants the IAM token sent to another host (localhost)"
        if realm_host == "localhost"
        else ("wants credentials sent over plain http to 0.0.0.0")
    )
    assert expected in result.stdout + result.stderr
    assert realm.requests == []  # the token never arrived
    assert len(registry.requests) == 1 and "authorization" not in registry.requests[0][1]
    assert emu.stats.scans_started == 0 and TOKEN not in result.output


@pytest.mark.parametrize(
    ("realm", "said"),
    [
        ("https://evil\x1bc\x07.example/t", "wants the IAM token sent to another host"),
        ("https://evil\x1b]0;pwn\x07.example/t", "named a token realm that is not an http(s) URL"),  # unbalanced ]
    ],
)
def test_a_realm_host_is_named_inert(start_emulator, recorder, realm, said):
    emu = cloud(start_emulator)
    registry = recorder(401, WWW_Authenticate=f'Bearer realm="{realm}",service="s"')
    result = run_cli([*grpc_only(emu), "--registry-url", registry.url, VULNERABLE])
    assert result.code == 3, result.output
    assert said in result.output and "internal error" not in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


# A realm on the registry's own host still gets the token: every path of test_credentials_e2e.py runs
# the emulator's Bearer flow (require_auth) through it, and test_registry_api.py Debian's docker-registry.
