"""Regions: which installation a run's references name, where its calls go, and the JWT audience.

The Kazakhstan API root is reached for real: a CONNECT proxy on loopback (gRPC honours ``https_proxy``)
sees the address crgate dials and hands the connection to a TLS emulator whose certificate names
``api.yandexcloud.kz``; the emulated IAM checks the audience of every service-account JWT it receives.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authkit import SCANNER_ROLE, key_text, public_pem, rsa_key
from conftest import DIGEST_A, image, run_cli, scenario
from crgate.connect import ConnectOptions, open_session, resolve_endpoints, with_region
from crgate.errors import ConfigError, CrgateError
from crgate.images import parse_image_ref
from crgate.regions import DEFAULT_REGION, KAZAKHSTAN, MAIN, region_of
from crgate.scanner.credentials.choose import CredentialOptions
from crgate.timing import Deadline
from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator

SA = "ajescanner0000000001"
KEY_ID = "ajekeyscanner0000001"
KZ_REF = "cr.yandexcloud.kz/crkregistry/app:clean"
RU_REF = "cr.yandex/crpregistry/app:clean"
NEEDS_WIRING = "needs region wiring in cli.py: connect.with_region(options, refs, os.environ)"


def refs(*raw: str) -> list[Any]:
    return [parse_image_ref(text) for text in raw]


# -- region_of: pure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ((RU_REF,), MAIN),
        (("cr.cloud.yandex.net/crp1/app:1", "container-registry.cloud.yandex.net/crp1/web:2"), MAIN),
        ((KZ_REF, "cr.yandexcloud.kz/crkregistry/web@sha256:" + "a" * 64), KAZAKHSTAN),
        ((), DEFAULT_REGION),
    ],
)
def test_the_region_is_the_references_region(raw, expected):
    assert region_of(refs(*raw)) == expected


def test_references_of_two_regions_are_a_usage_error_naming_both():
    with pytest.raises(ConfigError) as caught:
        region_of(refs(RU_REF, KZ_REF))
    message = str(caught.value)
    assert RU_REF in message and KZ_REF in message and "run crgate once per region" in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("api_endpoint", "expected"),
    [("api.yandexcloud.kz:443", KAZAKHSTAN), ("api.cloud.yandex.net:443", MAIN), ("127.0.0.1:5000", MAIN)],
)
def test_only_image_ids_take_the_region_of_a_known_api_root(api_endpoint, expected):
    assert region_of([], api_endpoint=api_endpoint) == expected


def test_a_proxy_api_root_keeps_the_references_region():
    assert region_of(refs(KZ_REF), api_endpoint="127.0.0.1:5000") == KAZAKHSTAN


def test_references_contradicting_a_known_api_root_are_a_usage_error():
    with pytest.raises(ConfigError, match=r"api\.cloud\.yandex\.net:443 is Yandex Cloud's"):
        region_of(refs(KZ_REF), api_endpoint="api.cloud.yandex.net:443")


def test_each_region_names_its_own_iam_service_as_the_jwt_audience():
    assert MAIN.iam_audience == "https://iam.api.cloud.yandex.net/iam/v1/tokens"
    assert KAZAKHSTAN.iam_audience == "https://iam.api.yandexcloud.kz/iam/v1/tokens"
    assert (MAIN.api_root, KAZAKHSTAN.api_root) == ("api.cloud.yandex.net:443", "api.yandexcloud.kz:443")


def test_with_region_reads_the_api_root_from_the_environment_too():
    options = ConnectOptions(credentials=CredentialOptions())
    assert with_region(options, [], {"YC_ENDPOINT": "api.yandexcloud.kz:443"}).region == KAZAKHSTAN
    assert with_region(options, refs(KZ_REF), {}).region == KAZAKHSTAN
    with pytest.raises(ConfigError):
        with_region(options, refs(KZ_REF, RU_REF), {})


def test_main_region_uses_the_documented_production_addresses_without_discovery():
    options = ConnectOptions(credentials=CredentialOptions(), region=MAIN)
    found = resolve_endpoints(options, {}, Deadline(1))
    assert found.address_of("scanner") == "container-registry.api.cloud.yandex.net:443"
    assert found.address_of("iam") == "iam.api.cloud.yandex.net:443"


# -- the emulated clouds --------------------------------------------------------------------------------


def cloud(region: str) -> dict[str, Any]:
    """A cloud of ``region`` that requires auth and knows one scanner service account with a key."""
    registry = "crkregistry" if region == "kz1" else "crpregistry"
    data = scenario(image("crpclean", "clean", DIGEST_A))
    data["registries"][0]["id"] = registry
    data.update(
        region=region,
        require_auth=True,
        service_accounts=[
            {"id": SA, "roles": [SCANNER_ROLE], "key_id": KEY_ID, "public_key": public_pem(rsa_key("scanner"))}
        ],
    )
    return data


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.json"
    path.write_text(key_text(KEY_ID, SA, rsa_key("scanner")))
    return path


@pytest.fixture
def start_region() -> Iterator[Any]:
    started: list[Emulator] = []

    def start(region: str) -> Emulator:
        names = ("api.yandexcloud.kz",) if region == "kz1" else ()
        emu = Emulator(scenario_from_dict(cloud(region), source="<test>"), tls=True, tls_names=names).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


class ConnectProxy:
    """An HTTP CONNECT proxy that sends every tunnel to one address and remembers what was asked for."""

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.requested: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = client.recv(1024)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("ascii", "replace").split()
            self.requested.append(line[1] if len(line) == 3 and line[0] == "CONNECT" else "?")
            with socket.create_connection(self.upstream) as server:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                server.sendall(head.split(b"\r\n\r\n", 1)[1])
                pair = {client: server, server: client}
                while not self._stopped.is_set():
                    ready, _, _ = select.select(list(pair), [], [], 0.2)
                    for sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        pair[sock].sendall(data)

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()


@pytest.fixture
def kz_proxy(start_region: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, ConnectProxy]]:
    """A Kazakhstan cloud reachable as api.yandexcloud.kz:443 through ``https_proxy``."""
    emu = start_region("kz1")
    proxy = ConnectProxy(emu.address)
    for name in ("grpc_proxy", "https_proxy", "http_proxy", "no_proxy", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", f"http://{proxy.address}")
    yield emu, proxy
    proxy.stop()


def session_options(key_file: Path, ca_file: str, **options: Any) -> ConnectOptions:
    return ConnectOptions(credentials=CredentialOptions(sa_key=str(key_file)), ca_file=ca_file, **options)


def test_kazakhstan_references_discover_the_kazakhstan_api_root_and_sign_for_its_iam(kz_proxy, key_file):
    emu, proxy = kz_proxy
    options = with_region(session_options(key_file, emu.ca_file), refs(KZ_REF), {})
    session = open_session(options, {}, Deadline(30))
    try:
        assert session.endpoints.source.startswith("discovered at api.yandexcloud.kz:443")
        assert session.endpoints.address_of("scanner") == emu.address  # what the (emulated) discovery said
    finally:
        session.close()
    assert proxy.requested[0] == "api.yandexcloud.kz:443"
    assert emu.stats.calls["ApiEndpointService.List"] == 1
    assert emu.stats.calls["IamTokenService.Create"] == 1 and not emu.stats.errors


@pytest.mark.parametrize("region", ["kz1", "ru-central1"])
def test_the_jwt_audience_stays_the_regions_with_endpoint(start_region, key_file, region):
    emu = start_region(region)
    ref = KZ_REF if region == "kz1" else RU_REF
    options = with_region(session_options(key_file, emu.ca_file, endpoint=emu.address), refs(ref), {})
    open_session(options, {}, Deadline(30)).close()
    assert emu.stats.calls["IamTokenService.Create"] == 1 and not emu.stats.errors


def test_a_jwt_for_the_other_regions_iam_is_refused(start_region, key_file):
    emu = start_region("kz1")
    options = session_options(key_file, emu.ca_file, endpoint=emu.address)  # region: the main one
    with pytest.raises(CrgateError) as caught:
        open_session(options, {}, Deadline(30))
    assert "aud must be https://iam.api.yandexcloud.kz/iam/v1/tokens" in str(caught.value)
    assert emu.stats.errors["IamTokenService.Create:UNAUTHENTICATED"] == 1


# -- through the CLI ------------------------------------------------------------------------------------


def test_a_kazakhstan_reference_through_the_cli_with_endpoint_signs_for_the_kazakhstan_iam(start_region, key_file):
    emu = start_region("kz1")
    args = ["check", "--endpoint", emu.address, "--ca-file", emu.ca_file, "--sa-key", str(key_file)]
    result = run_cli([*args, "--registry-url", emu.registry_url, "--progress", "none", KZ_REF])
    assert result.code == 0, result.output
    assert emu.stats.calls["IamTokenService.Create"] == 1 and not emu.stats.errors


def test_references_of_both_regions_are_exit_2_before_any_call(start_region):
    emu = start_region("ru-central1")
    args = ["check", "--endpoint", emu.address, "--ca-file", emu.ca_file, "--iam-token", "t1.x"]
    result = run_cli([*args, RU_REF, KZ_REF])
    assert result.code == 2, result.output
    assert "references of two Yandex Cloud regions in one run" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_doctor_with_a_kazakhstan_repository_signs_for_the_kazakhstan_iam(start_region, key_file):
    emu = start_region("kz1")
    args = ["doctor", "--endpoint", emu.address, "--ca-file", emu.ca_file, "--sa-key", str(key_file)]
    result = run_cli([*args, "--registry-url", emu.registry_url, "--repository", "cr.yandexcloud.kz/crkregistry/app"])
    assert result.code == 0, result.output
    assert "may list images in crkregistry/app (1 image(s))" in result.stdout


# -- GitHub's two OIDC subject forms in the federation hint ----------------------------------------------


def test_a_refused_federation_exchange_shows_both_github_subject_forms():
    data = cloud("ru-central1")
    data["federation"] = {"subject_tokens": [{"token": "eyJtrusted.oidc.sig", "service_account_id": SA}]}
    emu = Emulator(scenario_from_dict(data, source="<test>"), tls=True).start()
    try:
        args = ["check", "--endpoint", emu.address, "--ca-file", emu.ca_file, "--federation-sa-id", SA]
        result = run_cli([*args, "--token-endpoint", emu.token_url, RU_REF], env={"YC_OIDC_TOKEN": "eyJother.oidc.sig"})
    finally:
        emu.stop()
    assert result.code == 3, result.output
    assert "repo:ORG/REPO:ref:refs/heads/main" in result.stderr
    assert "repo:ORG@<owner-id>/REPO@<repo-id>:ref:refs/heads/main" in result.stderr
    assert "created after 2026-06-18" in result.stderr


def test_the_emulated_region_is_checked():
    assert scenario_from_dict({**cloud("kz1")}).region == KAZAKHSTAN
    with pytest.raises(ConfigError, match=r"\(key 'region'\): expected one of ru-central1, kz1, got 'mars'"):
        scenario_from_dict({**cloud("kz1"), "region": "mars"})
