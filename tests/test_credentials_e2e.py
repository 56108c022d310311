"""Every credential path end to end: the real CLI against the emulated cloud over TLS (``--ca-file``),
with real IAM token exchanges, the HTTP token exchange, metadata and GitHub OIDC endpoints. Each run
is also a secrets test: with ``-vv`` and a JSON report, no token, key or JWT may appear anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authkit import SCANNER_ROLE, key_json, key_text, private_pem, public_pem, rsa_key
from conftest import DIGEST_A, DIGEST_B, VULNERABLE_FINDINGS, image, run_cli, scenario
from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator

CLEAN = "cr.yandex/crptest/app:clean"
VULN = "cr.yandex/crptest/app:vuln"
SA = "ajescanner0000000001"
SA_NOROLE = "ajenorole00000000001"
KEY_ID = "ajekeyscanner0000001"
KEY_ID_NOROLE = "ajekeynorole00000001"
STATIC_IAM = "t1.static-secret-iam-token"
OAUTH = "y0_oauth-secret-token"
GITLAB_OIDC = "eyJgitlab.oidc-secret.sig"
GITHUB_OIDC = "eyJgithub.oidc-secret.sig"
GITHUB_REQUEST = "gh-request-secret-token"


def cloud_data(*images: dict[str, Any], token_lifetime: float = 3600, **extra: Any) -> dict[str, Any]:
    """The emulated cloud: auth required, a scanner SA with a key, one without a role, every token kind."""
    data = scenario(*(images or (image("crpclean", "clean", DIGEST_A),)))
    data.update(
        require_auth=True,
        token_lifetime=token_lifetime,
        service_accounts=[
            {"id": SA, "roles": [SCANNER_ROLE], "key_id": KEY_ID, "public_key": public_pem(rsa_key("scanner"))},
            {"id": SA_NOROLE, "roles": [], "key_id": KEY_ID_NOROLE, "public_key": public_pem(rsa_key("norole"))},
        ],
        oauth_tokens=[{"token": OAUTH, "service_account_id": SA}],
        iam_tokens=[{"token": STATIC_IAM, "service_account_id": SA}],
        federation={
            "subject_tokens": [
                {"token": GITLAB_OIDC, "service_account_id": SA},
                {"token": GITHUB_OIDC, "service_account_id": SA},
            ],
            "github": {"request_token": GITHUB_REQUEST, "id_token": GITHUB_OIDC},
        },
        metadata={"service_account_id": SA},
        **extra,
    )
    return data


StartCloud = Callable[..., Emulator]


@pytest.fixture
def start_cloud() -> Iterator[StartCloud]:
    started: list[Emulator] = []

    def start(data: dict[str, Any] | None = None, *, tls: bool = True) -> Emulator:
        emu = Emulator(scenario_from_dict(data or cloud_data(), source="<test>"), tls=tls).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.json"
    path.write_text(key_text(KEY_ID, SA, rsa_key("scanner")))
    path.chmod(0o600)  # as `yc iam key create` writes it; a readable one gets a warning
    return path


def tls(emu: Emulator, *args: str, command: str = "check") -> list[str]:
    """A command against the emulator over TLS, trusting its CA (the production code path)."""
    extra = ["--progress", "lines"] if command == "check" else []
    extra += ["--registry-url", emu.registry_url]
    return [command, "--endpoint", emu.address, "--ca-file", emu.ca_file, *extra, *args]


def secrets_of(emu: Emulator) -> list[str]:
    """Every secret of a run: configured tokens, key material, and every bearer token the cloud saw."""
    found = [STATIC_IAM, OAUTH, GITLAB_OIDC, GITHUB_OIDC, GITHUB_REQUEST, "eyJ", "PRIVATE KEY"]
    found += [private_pem(rsa_key(name)).splitlines()[5] for name in ("scanner", "norole")]
    for _, metadata in emu.stats.request_metadata:
        auth = metadata.get("authorization", "")
        if auth:
            found.append(auth.split(" ", 1)[1])
    return found


def assert_no_secrets(emu: Emulator, *texts: str) -> None:
    for secret in secrets_of(emu):
        for text in texts:
            assert secret not in text, f"a secret ({secret[:6]}...) leaked"


# -- every path: the scan passes, nothing leaks --------------------------------------------------------

PATHS: dict[str, Callable[[Emulator, Path], tuple[list[str], dict[str, str]]]] = {
    "--iam-token": lambda emu, key: (["--iam-token", STATIC_IAM], {}),
    "YC_IAM_TOKEN": lambda emu, key: ([], {"YC_IAM_TOKEN": STATIC_IAM}),
    "YC_TOKEN iam": lambda emu, key: ([], {"YC_TOKEN": STATIC_IAM}),
    "YC_TOKEN oauth": lambda emu, key: ([], {"YC_TOKEN": OAUTH}),
    "--sa-key file": lambda emu, key: (["--sa-key", str(key)], {}),
    "--sa-key inline": lambda emu, key: (["--sa-key", key.read_text()], {}),
    "YC_SERVICE_ACCOUNT_KEY_FILE file": lambda emu, key: ([], {"YC_SERVICE_ACCOUNT_KEY_FILE": str(key)}),
    "YC_SERVICE_ACCOUNT_KEY_FILE inline": lambda emu, key: ([], {"YC_SERVICE_ACCOUNT_KEY_FILE": key.read_text()}),
    "federation gitlab": lambda emu, key: (
        ["--federation-sa-id", SA, "--token-endpoint", emu.token_url],
        {"YC_OIDC_TOKEN": GITLAB_OIDC},
    ),
    "federation gitlab env": lambda emu, key: (  # a loopback token endpoint by its flag only
        ["--oidc-token-env", "CI_YC_JWT", "--token-endpoint", emu.token_url],
        {"YC_SA_ID": SA, "CI_YC_JWT": GITLAB_OIDC},
    ),
    "federation github": lambda emu, key: (
        ["--federation-sa-id", SA, "--token-endpoint", emu.token_url, "--oidc-audience", "https://github.com/org"],
        {"ACTIONS_ID_TOKEN_REQUEST_URL": emu.github_request_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": GITHUB_REQUEST},
    ),
    "--metadata": lambda emu, key: (["--metadata"], {"YC_METADATA_ADDR": emu.metadata_address}),
    "metadata fallback": lambda emu, key: ([], {"YC_METADATA_ADDR": emu.metadata_address}),
}
EXCHANGE = {
    "YC_TOKEN oauth": "IamTokenService.Create",
    "--sa-key file": "IamTokenService.Create",
    "--sa-key inline": "IamTokenService.Create",
    "YC_SERVICE_ACCOUNT_KEY_FILE file": "IamTokenService.Create",
    "YC_SERVICE_ACCOUNT_KEY_FILE inline": "IamTokenService.Create",
    "federation gitlab": "HTTP token exchange",
    "federation gitlab env": "HTTP token exchange",
    "federation github": "HTTP github",
    "--metadata": "HTTP metadata",
    "metadata fallback": "HTTP metadata",
}


@pytest.mark.parametrize("path", list(PATHS))
def test_every_credential_path_scans_over_tls_and_leaks_nothing(path, start_cloud, key_file, tmp_path):
    emu = start_cloud()
    args, env = PATHS[path](emu, key_file)
    report = tmp_path / "report.json"
    result = run_cli(tls(emu, CLEAN, "-vv", "--output", f"json={report}", *args), env=env)
    assert result.code == 0, result.output
    assert emu.stats.scans_started == 1
    assert emu.stats.calls[EXCHANGE.get(path, "ScannerService.Scan")] >= 1
    assert not [e for e in emu.stats.errors if e.endswith("UNAUTHENTICATED")], emu.stats.errors
    assert "crgate: credentials: " in result.stderr
    assert_no_secrets(emu, result.stdout, result.stderr, report.read_text())
    if path == "YC_TOKEN oauth":
        assert "Yandex is retiring OAuth tokens" in result.stderr
    if path == "federation github":
        assert emu.stats.metadata_of("HTTP github") == [{"audience": "https://github.com/org"}]


def test_github_actions_masks_every_token_before_any_output(start_cloud, key_file):
    emu = start_cloud()
    env = {
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": emu.github_request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": GITHUB_REQUEST,
    }
    result = run_cli(tls(emu, CLEAN, "--federation-sa-id", SA, "--token-endpoint", emu.token_url), env=env)
    assert result.code == 0, result.output
    lines = result.stderr.splitlines()
    masked = [line.removeprefix("::add-mask::") for line in lines if line.startswith("::add-mask::")]
    assert lines[: len(masked)] == [f"::add-mask::{value}" for value in masked], "masks come first"
    assert GITHUB_OIDC in masked and len(masked) == 2  # the OIDC token and the IAM token
    rest = "\n".join(lines[len(masked) :]) + result.stdout
    assert_no_secrets(emu, rest)


def test_github_job_without_id_token_permission_is_told_how_to_fix_it(start_cloud):
    emu = start_cloud()
    result = run_cli(tls(emu, CLEAN, "--federation-sa-id", SA), env={"GITHUB_ACTIONS": "true"})
    assert result.code == 2, result.output
    assert "id-token: write" in result.stderr and "Traceback" not in result.output


def test_yc_token_endpoint_alone_never_receives_the_oidc_token(start_cloud):
    """An earlier step sets YC_TOKEN_ENDPOINT to a server of its own (here the emulator's exchange, which
    records every call): the job's OIDC token must not go there. Refused before any call, exit 2."""
    emu = start_cloud()
    env = {"YC_SA_ID": SA, "YC_OIDC_TOKEN": GITLAB_OIDC, "YC_TOKEN_ENDPOINT": emu.token_url}
    result = run_cli(tls(emu, CLEAN), env=env)
    assert result.code == 2, result.output
    assert "YC_TOKEN_ENDPOINT names 127.0.0.1, which is not Yandex's token service (auth.yandex.cloud)" in result.stderr
    assert f"--token-endpoint {emu.token_url}" in result.stderr
    assert emu.stats.calls["HTTP token exchange"] == 0 and sum(emu.stats.calls.values()) == 0
    assert GITLAB_OIDC not in result.output


def test_yc_token_endpoint_may_name_yandexs_own_service():
    from crgate.scanner.credentials.choose import CredentialOptions, token_endpoint

    url = "https://auth.yandex.cloud/oauth/token"
    assert token_endpoint(CredentialOptions(), {"YC_TOKEN_ENDPOINT": url}) == url
    assert token_endpoint(CredentialOptions(), {}) == url
    flag = CredentialOptions(token_endpoint="https://sts.example/token")
    assert token_endpoint(flag, {"YC_TOKEN_ENDPOINT": url}) == "https://sts.example/token"  # a flag may


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_readable_by_others_gets_a_warning_naming_the_fix(start_cloud, key_file, mode):
    emu = start_cloud()
    key_file.chmod(mode)
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(key_file)))
    assert result.code == 0, result.output
    assert (
        f"crgate: warning: service account key {key_file} (--sa-key) is readable by group or others "
        f"(mode {mode:04o})" in result.stderr
    )
    assert f"restrict it: chmod 600 {key_file}" in result.stderr
    doctor = run_cli(tls(emu, "--sa-key", str(key_file), command="doctor"))
    assert doctor.code == 0 and f"chmod 600 {key_file}" in doctor.stdout, doctor.output


def test_a_private_key_file_and_inline_json_get_no_warning(start_cloud, key_file):
    emu = start_cloud()
    for value, env in ((str(key_file), {}), (None, {"YC_SERVICE_ACCOUNT_KEY_FILE": key_file.read_text()})):
        result = run_cli(tls(emu, CLEAN, *(["--sa-key", value] if value else [])), env=env)
        assert result.code == 0, result.output
        assert "chmod" not in result.output


# -- precedence and conflicts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--iam-token", STATIC_IAM, "--sa-key", "key.json"], {}, ("--iam-token", "--sa-key")),
        (["--sa-key", "key.json", "--metadata"], {}, ("--sa-key", "--metadata")),
        ([], {"YC_IAM_TOKEN": STATIC_IAM, "YC_TOKEN": OAUTH}, ("YC_IAM_TOKEN", "YC_TOKEN")),
        ([], {"YC_SERVICE_ACCOUNT_KEY_FILE": "k.json", "YC_SA_ID": SA}, ("YC_SERVICE_ACCOUNT_KEY_FILE", "YC_SA_ID")),
    ],
)
def test_two_explicit_sources_are_a_usage_error_naming_both(args, env, named):
    result = run_cli(["check", "--endpoint", "127.0.0.1:9", "--insecure", CLEAN, *args], env=env)
    assert result.code == 2, result.output
    assert "conflicting credentials" in result.stderr
    assert all(name in result.stderr for name in named)
    assert STATIC_IAM not in result.output and OAUTH not in result.output


def test_a_flag_beats_the_environment(start_cloud, key_file):
    emu = start_cloud()
    env = {"YC_IAM_TOKEN": "t1.not-this-one", "YC_TOKEN": "t1.nor-this"}
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(key_file)), env=env)
    assert result.code == 0, result.output
    assert emu.stats.calls["IamTokenService.Create"] == 1
    assert "YC_IAM_TOKEN is ignored" in result.stderr and "YC_TOKEN is ignored" in result.stderr


def test_same_source_by_flag_and_variable_is_no_conflict(start_cloud):
    emu = start_cloud()
    result = run_cli(tls(emu, CLEAN, "--iam-token", STATIC_IAM), env={"YC_IAM_TOKEN": "t1.stale"})
    assert result.code == 0, result.output
    assert emu.stats.metadata_of("ScannerService.Scan")[0]["authorization"] == f"Bearer {STATIC_IAM}"


def test_no_credentials_against_the_cloud_lists_every_option():
    result = run_cli(["check", CLEAN], env={"YC_METADATA_ADDR": "127.0.0.1:9", "YC_IAM_TOKEN": " "})
    assert result.code == 2, result.output
    for option in ("--iam-token", "--sa-key", "--federation-sa-id", "YC_TOKEN", "--metadata", "--emulator"):
        assert option in result.stderr
    assert "YC_IAM_TOKEN is set but empty" in result.stderr


def test_federation_options_without_federation_are_refused():
    result = run_cli(["check", "--endpoint", "127.0.0.1:9", "--insecure", CLEAN, "--oidc-token-env", "X"])
    assert result.code == 2 and "--oidc-token-env only applies" in result.stderr


# -- malformed key files -----------------------------------------------------------------------------

_SCANNER = rsa_key("scanner")
BAD_KEYS: list[tuple[str, str | None, str]] = [
    ("missing file", None, "cannot read"),
    ("not json", "{not json", "not valid JSON (line 1"),
    ("json list", "[1, 2]", "expected a JSON object"),
    ("no id", json.dumps({k: v for k, v in key_json(KEY_ID, SA, _SCANNER).items() if k != "id"}), "'id' is missing"),
    (
        "no service account",
        json.dumps({k: v for k, v in key_json(KEY_ID, SA, _SCANNER).items() if k != "service_account_id"}),
        "'service_account_id' is missing",
    ),
    (
        "no private key",
        json.dumps({k: v for k, v in key_json(KEY_ID, SA, _SCANNER).items() if k != "private_key"}),
        "'private_key' is missing",
    ),
    ("number id", key_text(KEY_ID, SA, _SCANNER, id=5), "'id' must be a non-empty string"),
    ("public key given", key_text(KEY_ID, SA, _SCANNER, private_key=public_pem(_SCANNER)), "holds a PUBLIC key"),
    ("not pem", key_text(KEY_ID, SA, _SCANNER, private_key="hello"), "not a PEM private key"),
    (
        "broken pem",
        key_text(KEY_ID, SA, _SCANNER, private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        "not a valid PEM private key",
    ),
    ("bare pem", private_pem(_SCANNER), "bare PEM"),
    ("mismatched pair", key_text(KEY_ID, SA, _SCANNER, public_key=public_pem(rsa_key("norole"))), "not one key pair"),
]


@pytest.mark.parametrize(("case", "content", "message"), BAD_KEYS, ids=[case for case, _, _ in BAD_KEYS])
def test_malformed_key_files_are_explained(case, content, message, tmp_path):
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    result = run_cli(["check", "--endpoint", "127.0.0.1:9", "--insecure", CLEAN, "--sa-key", str(path)])
    assert result.code == 2, result.output
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.output and private_pem(_SCANNER).splitlines()[5] not in result.output


def test_malformed_inline_key_is_explained_without_echoing_it():
    inline = key_text(KEY_ID, SA, _SCANNER, private_key=public_pem(_SCANNER))
    result = run_cli(
        ["check", "--endpoint", "127.0.0.1:9", "--insecure", CLEAN], env={"YC_SERVICE_ACCOUNT_KEY_FILE": inline}
    )
    assert result.code == 2, result.output
    assert "inline JSON of YC_SERVICE_ACCOUNT_KEY_FILE" in result.stderr and "PUBLIC KEY-----" not in result.output


# -- rejected credentials, refresh, permissions ------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "why"),
    [("unknown key", "unknown key id"), ("wrong key", "signature verification failed"), ("expired", "expired")],
)
def test_rejected_jwt_is_exit_3_with_a_clear_message(case, why, start_cloud, tmp_path, monkeypatch):
    emu = start_cloud()
    key_id = "ajekeyunknown0000001" if case == "unknown key" else KEY_ID
    signer = rsa_key("norole") if case == "wrong key" else rsa_key("scanner")
    path = tmp_path / "key.json"
    path.write_text(key_text(key_id, SA, signer, public_key=public_pem(signer)))
    if case == "expired":  # a JWT made two hours ago (as with a badly wrong clock)
        from crgate.scanner.credentials.sakey import ServiceAccountKey

        made = ServiceAccountKey.jwt
        monkeypatch.setattr(ServiceAccountKey, "jwt", lambda key, now=None, **kw: made(key, time.time() - 7200, **kw))
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(path)))
    assert result.code == 3, result.output
    assert "could not get an IAM token for the service account key" in result.stderr
    assert why in result.stderr and "IamTokenService.Create" in result.stderr and "UNAUTHENTICATED" in result.stderr
    assert "request id" in result.stderr and "yc iam key list" in result.stderr
    assert emu.stats.calls["ScannerService.Scan"] == 0


@pytest.mark.slow
def test_tokens_are_refreshed_during_a_scan_longer_than_their_lifetime(start_cloud, key_file):
    emu = start_cloud(
        # polls every 0.2 s (the server's interval) for 2.5 s: many calls across two token lifetimes
        cloud_data(
            image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS, duration=2.5, poll_interval=0.2), token_lifetime=1
        )
    )
    result = run_cli(tls(emu, VULN, "--sa-key", str(key_file)))
    assert result.code == 1, result.output  # a verdict, not an auth error
    assert emu.stats.calls["IamTokenService.Create"] >= 2
    assert not emu.stats.errors, emu.stats.errors
    tokens = {md["authorization"] for _, md in emu.stats.request_metadata if "authorization" in md}
    assert len(tokens) >= 2


def test_unauthenticated_gets_one_refresh_and_one_retry(start_cloud, key_file):
    faults = [{"method": "ScannerService.Scan", "code": "UNAUTHENTICATED", "count": 1}]
    emu = start_cloud(cloud_data(faults=faults))
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(key_file)))
    assert result.code == 0, result.output
    assert emu.stats.calls["IamTokenService.Create"] == 2 and emu.stats.calls["ScannerService.Scan"] == 2
    keys = emu.stats.idempotency_keys
    assert len(keys) == 2 and len(set(keys)) == 1, "the retry reuses the idempotency key"


def test_unauthenticated_after_the_refresh_is_exit_3(start_cloud, key_file):
    faults = [{"method": "ScannerService.Scan", "code": "UNAUTHENTICATED", "count": 5}]
    emu = start_cloud(cloud_data(faults=faults))
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(key_file)))
    assert result.code == 3, result.output
    assert emu.stats.calls["IamTokenService.Create"] == 2 and emu.stats.calls["ScannerService.Scan"] == 2
    assert "rejected even with a freshly obtained token" in result.stdout


def test_a_static_token_cannot_be_refreshed(start_cloud):
    faults = [{"method": "ImageService.List", "code": "UNAUTHENTICATED", "count": 1}]
    emu = start_cloud(cloud_data(faults=faults))
    result = run_cli(tls(emu, CLEAN, "--iam-token", STATIC_IAM))
    assert result.code == 3, result.output
    assert emu.stats.calls["ImageService.List"] == 1
    assert "cannot refresh it" in result.stdout and "yc iam create-token" in result.stdout


def test_permission_denied_names_the_identity_and_the_role(start_cloud, tmp_path):
    """--image-id skips the registry, so the scanner API itself refuses the identity without a role."""
    emu = start_cloud()
    path = tmp_path / "key.json"
    path.write_text(key_text(KEY_ID_NOROLE, SA_NOROLE, rsa_key("norole")))
    result = run_cli(tls(emu, "--image-id", "crpclean", "--sa-key", str(path)))
    assert result.code == 3, result.output
    assert "PERMISSION_DENIED" in result.stdout and "lacks a role" in result.stdout
    assert SA_NOROLE in result.stdout and SCANNER_ROLE in result.stdout and "request id" in result.stdout


def test_a_denied_manifest_read_names_the_identity_and_the_roles_before_any_scan(start_cloud, tmp_path):
    """Issue 12: every reference is read from the registry first; a denied read is exit 3, never a scan."""
    emu = start_cloud()
    path = tmp_path / "key.json"
    path.write_text(key_text(KEY_ID_NOROLE, SA_NOROLE, rsa_key("norole")))
    result = run_cli(tls(emu, CLEAN, "--sa-key", str(path)))
    assert result.code == 3, result.output
    assert "reading the manifest of cr.yandex/crptest/app:clean" in result.stdout
    assert SA_NOROLE in result.stdout and SCANNER_ROLE in result.stdout
    assert "container-registry.images.puller" in result.stdout
    assert emu.stats.calls["ScannerService.Scan"] == 0


# -- endpoints and TLS --------------------------------------------------------------------------------


def test_discovery_finds_every_service(start_cloud):
    emu = start_cloud()
    args = ["check", "--ca-file", emu.ca_file, "--progress", "lines", CLEAN, "--iam-token", STATIC_IAM]
    args += ["--registry-url", emu.registry_url, "--api-endpoint", emu.address]
    result = run_cli(args)
    assert result.code == 0, result.output
    assert emu.stats.calls["ApiEndpointService.List"] == 1 and emu.stats.scans_started == 1


def test_yc_endpoint_alone_may_not_send_the_token_elsewhere(start_cloud):
    """YC_ENDPOINT (an earlier step or a pipeline variable can set it) names only Yandex's API roots; an
    emulator, a proxy or anything else is named by --api-endpoint, or nothing is called at all."""
    emu = start_cloud()
    args = ["check", "--ca-file", emu.ca_file, "--progress", "lines", CLEAN, "--iam-token", STATIC_IAM]
    args += ["--registry-url", emu.registry_url]
    result = run_cli(args, env={"YC_ENDPOINT": emu.address})
    assert result.code == 2, result.output
    assert "YC_ENDPOINT names 127.0.0.1, which is not a Yandex Cloud API root" in result.stderr
    assert f"--api-endpoint {emu.address}" in result.stderr
    assert sum(emu.stats.calls.values()) == 0 and STATIC_IAM not in result.output


def test_endpoint_and_api_endpoint_exclude_each_other():
    result = run_cli(["check", "--endpoint", "127.0.0.1:1", "--api-endpoint", "127.0.0.1:2", CLEAN])
    assert result.code == 2 and "exclude each other" in result.stderr


def test_ca_file_must_be_a_pem(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    result = run_cli(["check", "--endpoint", "127.0.0.1:1", "--ca-file", str(bad), CLEAN, "--iam-token", STATIC_IAM])
    assert result.code == 2 and "no PEM certificate" in result.stderr


# -- doctor ---------------------------------------------------------------------------------------------


def test_doctor_passes_without_starting_a_scan(start_cloud, key_file):
    emu = start_cloud()
    args = ["--api-endpoint", emu.address, "--ca-file", emu.ca_file, "--sa-key", str(key_file)]
    args += ["--registry-url", emu.registry_url]
    result = run_cli(["doctor", *args, "--repository", "cr.yandex/crptest/app", "-vv"])
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    for stage in ("credentials", "endpoints", "token", "reachable", "permission", "registry"):
        assert any(line.split()[:2] == [stage, "ok"] for line in lines), result.stdout
    assert f"service account key {KEY_ID} of service account {SA}" in result.stdout
    assert "may list images in crptest/app (1 image(s))" in result.stdout
    assert emu.stats.calls["ScannerService.Scan"] == 0 and emu.stats.calls["ImageService.List"] == 1
    assert_no_secrets(emu, result.stdout, result.stderr)


def test_doctor_explains_a_missing_role(start_cloud, tmp_path):
    emu = start_cloud()
    path = tmp_path / "key.json"
    path.write_text(key_text(KEY_ID_NOROLE, SA_NOROLE, rsa_key("norole")))
    result = run_cli(tls(emu, "--sa-key", str(path), "--repository", CLEAN, command="doctor"))
    assert result.code == 3, result.output
    assert "permission   FAIL" in result.stdout and SCANNER_ROLE in result.stdout
    assert "doctor: permission check failed (exit 3)" in result.stdout


def test_doctor_reports_a_bad_key_as_a_usage_error(start_cloud, tmp_path):
    emu = start_cloud()
    path = tmp_path / "key.json"
    path.write_text("{}")
    result = run_cli(tls(emu, "--sa-key", str(path), command="doctor"))
    assert result.code == 2, result.output
    assert "credentials  FAIL" in result.stdout and "token        skip" in result.stdout


def test_doctor_without_the_ca_cannot_reach_a_tls_endpoint(start_cloud):
    emu = start_cloud()
    result = run_cli(["doctor", "--endpoint", emu.address, "--timeout", "1"])
    assert result.code == 3, result.output
    assert "reachable    FAIL" in result.stdout


def test_emulator_command_serves_tls_and_prints_its_ca(tmp_path):
    data = tmp_path / "cloud.json"  # JSON is YAML
    data.write_text(json.dumps(cloud_data()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "crgate.cli", "emulator", "--tls", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address, ca_file = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        registry = proc.stdout.readline().strip()
        assert Path(ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert registry.startswith("https://127.0.0.1:"), registry  # TLS mode: the registry too
        args = ["check", "--endpoint", address, "--ca-file", ca_file, "--registry-url", registry, CLEAN]
        args += ["--iam-token", STATIC_IAM]
        result = run_cli(args)
        assert result.code == 0, result.output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
