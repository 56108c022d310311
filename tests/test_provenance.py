"""Provenance and loosenings: every report says how its verdict was reached, every way the gate is made
weaker than its policy file is printed in one block at the top of the log and recorded, and an emulated
run can never pass for a real one (not in any report, not after ``crgate evaluate``)."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate.model import Policy
from crgate.provenance import (
    Flags,
    Loosening,
    LooseningKind,
    Setting,
    SettingSource,
    declared_loosenings,
    run_loosenings,
)
from crgate.report.provenance import log_block
from test_ci_reports import needs_schemas, validate_gitlab, validate_sarif
from test_credentials_e2e import PATHS, SA, assert_no_secrets, key_file, start_cloud, tls  # noqa: F401
from test_report import validate as validate_json
from test_report_formats import validate_codequality, validate_cosign

DEMO_VULNERABLE = "cr.yandex/crpdemo/app:vulnerable"
DEMO_CLEAN = "cr.yandex/crpdemo/app:clean"
FORMATS = ("json", "sarif", "gitlab", "junit", "markdown", "comment", "cosign-vuln", "codequality")
HOSTILE = "fail-build: false\n::error::forged\x1b[31m red \x1b]0;title\x07 section_end:1:crgate_loosened\r%0Aend"


def outputs(tmp_path: Path) -> tuple[list[str], dict[str, Path]]:
    paths = {fmt: tmp_path / f"report.{fmt}" for fmt in FORMATS}
    args = [arg for fmt, path in paths.items() for arg in ("--output", f"{fmt}={path}")]
    return args, paths


def provenance(paths: dict[str, Path]) -> dict:
    return json.loads(paths["json"].read_text())["provenance"]


def junit_properties(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for prop in ET.parse(path).getroot().iter("property"):
        found.setdefault(prop.get("name", ""), []).append(prop.get("value", ""))
    return found


# -- an emulated run says so everywhere ----------------------------------------------------------------


@pytest.fixture
def emulated(tmp_path):
    args, paths = outputs(tmp_path)
    result = run_cli(["check", "--emulator", "--progress", "none", "--report-only", DEMO_VULNERABLE, *args])
    return result, paths


def test_an_emulated_run_says_emulated_in_the_text_verdict_line(emulated):
    result, _ = emulated
    assert result.code == 0, result.output  # report-only: the violation alone does not fail
    verdict = [line for line in result.stdout.splitlines() if line.startswith("FAIL:")]
    assert len(verdict) == 1 and "[EMULATED: crgate's built-in emulator, not Yandex Cloud]" in verdict[0]
    assert "(EMULATED: crgate's built-in emulator, not Yandex Cloud)" in result.stderr


def test_an_emulated_run_says_emulated_in_every_report(emulated):
    _, paths = emulated
    assert provenance(paths)["emulated"] is True
    run = json.loads(paths["sarif"].read_text())["runs"][0]
    assert run["properties"]["emulated"] is True and run["properties"]["provenance"]["emulated"] is True
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert notes[0]["descriptor"]["id"] == "crgate/emulated" and "EMULATED" in notes[0]["message"]["text"]
    gitlab = json.loads(paths["gitlab"].read_text())["scan"]
    assert gitlab["scanner"]["id"] == "crgate-emulator" and "EMULATED" in gitlab["scanner"]["name"]
    assert {"name": "crgate.provenance.emulated", "value": True, "source": "other"} in gitlab["options"]
    assert any(m["level"] == "warn" and m["value"].startswith("EMULATED") for m in gitlab["messages"])
    assert junit_properties(paths["junit"])["crgate.provenance.emulated"] == ["true"]
    assert "EMULATED" in paths["junit"].read_text()
    for fmt in ("markdown", "comment"):
        text = paths[fmt].read_text()
        assert text.splitlines()[0].endswith("· EMULATED"), fmt
        assert "- emulated: yes (crgate's built-in emulator, not Yandex Cloud)" in text, fmt
    cosign = json.loads(paths["cosign-vuln"].read_text())
    assert cosign["scanner"]["uri"].startswith("pkg:pypi/crgate-emulator@")
    assert cosign["scanner"]["version"].endswith("-emulator")
    assert cosign["scanner"]["result"]["provenance"]["emulated"] is True
    assert sorted(cosign["invocation"]) == ["builder.id", "event_id", "parameters", "uri"]


@needs_schemas
def test_every_format_of_an_emulated_loosened_run_still_validates(emulated):
    _, paths = emulated
    validate_json(json.loads(paths["json"].read_text()))
    validate_sarif(json.loads(paths["sarif"].read_text()))
    validate_gitlab(json.loads(paths["gitlab"].read_text()))
    validate_cosign(json.loads(paths["cosign-vuln"].read_text()))
    validate_codequality(json.loads(paths["codequality"].read_text()))
    root = ET.parse(paths["junit"]).getroot()
    for properties in root.iter("properties"):  # the XSD: <property name=... value=...> and nothing else
        assert all(child.tag == "property" and set(child.attrib) == {"name", "value"} for child in properties)


def test_a_real_run_is_not_emulated_and_names_what_it_used(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpclean", "clean", "sha256:" + "a" * 64)))
    args, paths = outputs(tmp_path)
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:clean", *args))
    assert result.code == 0, result.output
    found = provenance(paths)
    assert found["emulated"] is False and "EMULATED" not in result.output
    assert found["api_endpoint"] == {"values": [emu.address], "source": "flag", "name": "--endpoint"}
    assert found["registry"] == {"values": [emu.registry_url], "source": "flag", "name": "--registry-url"}
    assert found["token_endpoint"]["values"] == []  # no federation exchange happened
    assert found["policy"]["source"] == "built-in" and len(found["policy"]["sha256"]) == 64
    assert found["limits"] == {"critical": 0, "high": 0}
    assert found["started_at"].endswith("Z") and found["finished_at"] >= found["started_at"]
    cosign = json.loads(paths["cosign-vuln"].read_text())
    assert cosign["scanner"]["uri"].startswith("pkg:pypi/crgate@")


def test_no_variable_switches_the_emulator_on(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpclean", "clean", "sha256:" + "a" * 64)))
    args, paths = outputs(tmp_path)
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:clean", *args), env={"CRGATE_EMULATOR": "true"})
    assert result.code == 0, result.output
    assert "CRGATE_EMULATOR is ignored: only the --emulator flag starts the emulator" in result.stderr
    assert provenance(paths)["emulated"] is False  # it ran against the endpoint it was given


# -- every loosening kind: in the block and in the JSON provenance ----------------------------------------

POLICIES = {
    "fixable": "version: 1\nthresholds:\n  critical: 0\n  high: {max: 0, fixable_only: true}\n",
    "ignore": "version: 1\nthresholds:\n  critical: 0\n  high: 0\nignore:\n  - id: CVE-2024-0001\n    reason: test\n",
    "baseline": f"version: 1\nthresholds:\n  critical: 0\n  high: 0\nbaseline: {{image: {DEMO_CLEAN}}}\n",
}
# kind -> (extra arguments, policy, the block's words); every run is --emulator with the demo data
CASES: dict[LooseningKind, tuple[list[str], str | None, str]] = {
    LooseningKind.EMULATOR: ([], None, "emulator (--emulator): results come from crgate's built-in emulator"),
    LooseningKind.REPORT_ONLY: (["--report-only"], None, "report-only (--report-only): policy violations do not"),
    LooseningKind.LIMIT_RAISED: (["--max", "high=30"], None, "limit-raised (--max): high <= 30 instead of the poli"),
    LooseningKind.ONLY_FIXED: (["--only-fixed"], None, "only-fixed (--only-fixed): only findings with a known fix"),
    LooseningKind.FIXABLE_ONLY: ([], "fixable", "fixable-only (policy.yaml): only findings with a known fix count"),
    LooseningKind.PLATFORM: (["--platform", "linux/amd64"], None, "platform (--platform): only linux/amd64 of a"),
    LooseningKind.IGNORE_RULES: ([], "ignore", "ignore-rules (policy.yaml): 1 ignore rule(s) set matching findings"),
    LooseningKind.BASELINE: ([], "baseline", f"baseline (policy.yaml): findings the baseline image {DEMO_CLEAN}"),
    LooseningKind.TODAY: (["--today", "2020-01-01"], None, "today (--today): ignore rules are judged as of 2020-01-01"),
    LooseningKind.DECLARED: (["--declare-loosening", "input thresholds: critical=9"], None, "declared"),
}


@pytest.mark.parametrize("kind", list(CASES), ids=str)
def test_each_loosening_is_in_the_block_and_the_json_provenance(kind, tmp_path, monkeypatch):
    extra, policy, words = CASES[kind]
    monkeypatch.chdir(tmp_path)
    if policy is not None:
        (tmp_path / "policy.yaml").write_text(POLICIES[policy])
        extra = [*extra, "--policy", "policy.yaml"]
    report = tmp_path / "report.json"
    result = run_cli(
        ["check", "--emulator", "--progress", "none", DEMO_VULNERABLE, "--output", f"json={report}", *extra]
    )
    assert result.code in (0, 1), result.output
    lines = result.stderr.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("crgate: Loosened:")))
    block = [line for line in lines[head + 1 :] if line.startswith("  - ")]
    assert any(words in line for line in block), result.stderr
    assert all(not line.startswith("crgate 0") for line in lines[:head]), "the block comes before the run's lines"
    kinds = [item["kind"] for item in json.loads(report.read_text())["provenance"]["loosenings"]]
    assert str(kind) in kinds


def test_unscannable_images_let_through_are_a_loosening(tmp_path):
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        f"kind: Pod\nspec:\n  containers:\n    - image: {DEMO_CLEAN}\n    - image: docker.io/library/nginx:1.25\n"
    )
    report = tmp_path / "report.json"
    result = run_cli(["check", "--emulator", "--from-manifest", str(manifest), "--output", f"json={report}"])
    assert result.code == 0, result.output
    assert "  - unscannable (built-in default (unscannable: warn)): 1 image(s) outside Yandex" in result.stderr
    assert "unscannable" in [item["kind"] for item in json.loads(report.read_text())["provenance"]["loosenings"]]


def test_endpoint_and_registry_overrides_are_loosenings_named_by_their_flags(start_emulator, tmp_path):
    # An environment-only override to a non-Yandex host is refused outright (test_credential_destinations);
    # the flags that may name any host are loosenings, named as such in the block and the report.
    emu = start_emulator(scenario(image("crpclean", "clean", "sha256:" + "a" * 64)))
    report = tmp_path / "report.json"
    args = ["check", "--endpoint", emu.address, "--insecure", "--progress", "none", "cr.yandex/crptest/app:clean"]
    result = run_cli([*args, "--registry-url", emu.registry_url, "--output", f"json={report}"])
    assert result.code == 0, result.output
    assert f"  - api-endpoint (--endpoint): API calls (scans and their results) go to {emu.address}" in result.stderr
    assert (
        f"  - registry (--registry-url): the registry that says which digest a tag names is {emu.registry_url}\n"
        in result.stderr
    )
    found = json.loads(report.read_text())["provenance"]
    assert found["registry"] == {"values": [emu.registry_url], "source": "flag", "name": "--registry-url"}
    sources = {item["kind"]: item["source"] for item in found["loosenings"]}
    assert sources == {"api-endpoint": "flag", "registry": "flag"}


def test_an_environment_override_to_a_yandex_host_is_still_a_loosening():
    # CRGATE_REGISTRY_URL naming a Yandex host is allowed from the environment, but it is not the default:
    # the block says where it came from, "(environment only)".
    from crgate.connect import ConnectOptions, planned_settings
    from crgate.scanner.credentials.choose import CredentialOptions

    env = {"CRGATE_REGISTRY_URL": "https://cr.cloud.yandex.net"}
    planned = planned_settings(
        ConnectOptions(credentials=CredentialOptions()),
        env,
        [],
        registry_url="https://cr.cloud.yandex.net",
        registry_source=SettingSource.ENVIRONMENT,
        emulator=False,
    )
    assert planned.registry.source == SettingSource.ENVIRONMENT
    assert planned.registry.name == "CRGATE_REGISTRY_URL"
    policy = Policy(version=1, thresholds={"critical": 0}, source="p.yaml")
    (loosened,) = run_loosenings(policy, policy, Flags(registry=planned.registry))
    assert loosened.describe() == (
        "registry (CRGATE_REGISTRY_URL): the registry that says which digest a tag names is "
        "https://cr.cloud.yandex.net (environment only)"
    )


def test_a_token_endpoint_override_and_a_ca_file_are_loosenings(start_cloud, key_file, tmp_path):  # noqa: F811
    emu = start_cloud()
    args, env = PATHS["federation gitlab env"](emu, key_file)
    report = tmp_path / "report.json"
    result = run_cli(tls(emu, "cr.yandex/crptest/app:clean", "--output", f"json={report}", *args), env=env)
    assert result.code == 0, result.output
    assert f"  - token-endpoint (--token-endpoint): the job's OIDC token is exchanged at {emu.token_url}" in (
        result.stderr
    )
    assert f"  - ca-file (--ca-file): TLS trusts the CA certificates of {emu.ca_file}" in result.stderr
    found = json.loads(report.read_text())["provenance"]
    assert found["token_endpoint"] == {"values": [emu.token_url], "source": "flag", "name": "--token-endpoint"}
    assert found["credential"] == {"kind": "federation", "source": "YC_SA_ID"}
    kinds = {item["kind"] for item in found["loosenings"]}
    assert {"token-endpoint", "ca-file", "api-endpoint", "registry"} <= kinds
    assert_no_secrets(emu, result.stdout, result.stderr, report.read_text())


def test_a_metadata_address_from_the_environment_is_a_loosening(start_cloud, key_file, tmp_path):  # noqa: F811
    emu = start_cloud()
    args, env = PATHS["metadata fallback"](emu, key_file)
    report = tmp_path / "report.json"
    result = run_cli(tls(emu, "cr.yandex/crptest/app:clean", "--output", f"json={report}", *args), env=env)
    assert result.code == 0, result.output
    assert (
        f"  - metadata-address (YC_METADATA_ADDR): the VM metadata service (a source of tokens) is looked for at "
        f"{emu.metadata_address}" in result.stderr
    )
    found = json.loads(report.read_text())["provenance"]
    assert "metadata-address" in {item["kind"] for item in found["loosenings"]}
    assert found["credential"]["kind"] == "metadata"


def test_provenance_holds_the_credential_kind_never_the_secret(start_cloud, key_file, tmp_path):  # noqa: F811
    emu = start_cloud()
    args, paths = outputs(tmp_path)
    result = run_cli(tls(emu, "cr.yandex/crptest/app:clean", *args), env={"YC_IAM_TOKEN": "t1.static-secret-iam-token"})
    assert result.code == 0, result.output
    assert provenance(paths)["credential"] == {"kind": "iam-token", "source": "YC_IAM_TOKEN"}
    assert_no_secrets(emu, result.output, *(path.read_text() for path in paths.values()))


def test_every_kind_has_a_test_that_shows_it():
    shown = {
        *CASES,
        LooseningKind.UNSCANNABLE,
        LooseningKind.API_ENDPOINT,
        LooseningKind.REGISTRY,
        LooseningKind.TOKEN_ENDPOINT,
        LooseningKind.METADATA_ADDRESS,
        LooseningKind.CA_FILE,
        LooseningKind.SAVED_REPORT,  # the evaluate tests below
        LooseningKind.VEX,  # test_vex_documents_and_image_rules_are_loosenings...
        LooseningKind.IMAGE_RULES,
    }
    assert shown == set(LooseningKind), "a new kind needs a test that shows it in the block and the report"


def test_a_gate_that_is_exactly_its_policy_has_no_loosenings_and_no_block():
    policy = Policy(version=1, thresholds={"critical": 0}, source="p.yaml", sha256="0" * 64)
    flags = Flags(api_endpoint=Setting(("scanner x:443",)), registry=Setting(("https://cr.yandex",)))
    assert run_loosenings(policy, policy, flags) == ()
    assert log_block((), {"GITHUB_ACTIONS": "true"}, 0) == []


def test_a_lower_limit_is_no_loosening_and_a_higher_one_is():
    base = Policy(version=1, thresholds={"critical": 0, "high": 5}, source="p.yaml")
    lower = Policy(version=1, thresholds={"critical": 0, "high": 1, "medium": 3}, source="p.yaml + --max")
    higher = Policy(version=1, thresholds={"critical": 2, "high": 5}, source="p.yaml + --max")
    assert run_loosenings(base, lower, Flags()) == ()
    (raised,) = run_loosenings(base, higher, Flags())
    assert (
        raised.kind == LooseningKind.LIMIT_RAISED
        and raised.detail == "critical <= 2 instead of the policy's critical <= 0"
    )


# -- the block: GitHub, GitLab, plain; untrusted text made inert ---------------------------------------

SAMPLE = (
    Loosening(LooseningKind.REPORT_ONLY, SettingSource.FLAG, "--report-only", "violations do not fail"),
    *declared_loosenings([HOSTILE]),
)


def test_github_gets_one_warning_annotation():
    (line,) = log_block(SAMPLE, {"GITHUB_ACTIONS": "true"}, 0)
    assert line.startswith("::warning title=crgate%3A the gate is loosened::2 settings make the gate weaker")
    assert "%0A- report-only (--report-only): violations do not fail%0A- declared (--declare-loosening): " in line
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    # The forged command sits mid-line after an escaped line break: the runner reads commands only at a
    # line's start, and the annotation is one line.
    assert "fail-build: false\\n::error::forged\\x1b[31m" in line
    assert "%250Aend" in line  # a literal %0A is encoded, never decoded into a line break by the runner


def test_gitlab_gets_a_collapsed_section_with_a_warning_line():
    lines = log_block(SAMPLE, {"GITLAB_CI": "true"}, 1_700_000_000)
    assert lines[0] == (
        "\x1b[0Ksection_start:1700000000:crgate_loosened[collapsed=true]\r\x1b[0K"
        "\x1b[33;1mcrgate: WARNING: the gate is loosened: 2 settings make the gate weaker than its policy file\x1b[0m"
    )
    assert lines[-1] == "\x1b[0Ksection_end:1700000000:crgate_loosened\r\x1b[0K"
    inner = lines[1:-1]
    assert inner[0] == "- report-only (--report-only): violations do not fail"
    assert all("\x1b" not in line and "\r" not in line and "section_end:" not in line for line in inner)


def test_elsewhere_a_plain_loosened_block():
    lines = log_block(SAMPLE, {}, 0)
    assert lines[0] == "crgate: Loosened: 2 settings make the gate weaker than its policy file:"
    assert lines[1] == "  - report-only (--report-only): violations do not fail"
    assert all(line.isprintable() for line in lines)


@pytest.mark.parametrize("ci", ["GITHUB_ACTIONS", "GITLAB_CI", None])
def test_a_declared_loosening_is_inert_in_the_log_and_every_report(ci, tmp_path):
    args, paths = outputs(tmp_path)
    env = {ci: "true"} if ci else {}
    result = run_cli(["check", "--emulator", DEMO_CLEAN, "--declare-loosening", HOSTILE, *args], env=env)
    assert result.code == 0, result.output
    for line in result.stderr.splitlines():
        assert "\x1b]" not in line and "\x07" not in line
        assert not re.match(r"\s*::error", line), line
        if ci != "GITLAB_CI":
            assert "\x1b" not in line and "section_end:" not in line
    if ci == "GITLAB_CI":  # the only escapes are the section markers and the header's colour
        assert result.stderr.count("section_end:") == 1 and result.stderr.count("section_start:") == 1
    detail = [item for item in provenance(paths)["loosenings"] if item["kind"] == "declared"][0]["detail"]
    assert "\n" not in detail and "\x1b" not in detail and "\r" not in detail and "::error" in detail
    for fmt in ("markdown", "comment", "junit"):
        text = paths[fmt].read_text()
        assert "\x1b" not in text and "\r" not in text, fmt


def test_too_many_declared_loosenings_are_a_usage_error():
    args = [arg for n in range(51) for arg in ("--declare-loosening", f"item {n}")]
    result = run_cli(["check", "--emulator", DEMO_CLEAN, *args])
    assert result.code == 2
    assert "--declare-loosening" in result.stderr and "at most 50" in result.stderr


# -- evaluate: re-judging never launders an emulated result -------------------------------------------


def saved_run(tmp_path: Path, *args: str) -> Path:
    report = tmp_path / "saved.json"
    result = run_cli(["check", *args, "--output", f"json={report}"])
    assert result.code in (0, 1), result.output
    return report


def test_evaluate_carries_emulated_through(tmp_path):
    saved = saved_run(tmp_path, "--emulator", "--report-only", DEMO_VULNERABLE)
    args, paths = outputs(tmp_path)
    result = run_cli(["evaluate", str(saved), "--format", "text", *args])
    assert result.code == 1, result.output
    assert "[EMULATED: crgate's built-in emulator, not Yandex Cloud]" in result.stdout
    found = provenance(paths)
    assert found["emulated"] is True
    assert found["evaluated_from"]["path"] == str(saved) and len(found["evaluated_from"]["sha256"]) == 64
    details = [(item["kind"], item["detail"]) for item in found["loosenings"]]
    assert ("emulator", "the saved run's results came from crgate's built-in emulator, not Yandex Cloud") in details
    assert any(kind == "saved-report" and "report-only (--report-only)" in detail for kind, detail in details)
    assert "  - saved-report (" in result.stderr
    assert json.loads(paths["cosign-vuln"].read_text())["scanner"]["uri"].startswith("pkg:pypi/crgate-emulator@")


def test_evaluate_counts_a_report_without_provenance_as_emulated(tmp_path):
    saved = saved_run(tmp_path, "--emulator", DEMO_CLEAN)
    document = json.loads(saved.read_text())
    del document["provenance"]
    saved.write_text(json.dumps(document))
    report = tmp_path / "again.json"
    result = run_cli(["evaluate", str(saved), "--output", f"json={report}"])
    assert result.code == 0, result.output
    found = json.loads(report.read_text())["provenance"]
    assert found["emulated"] is True
    assert "the saved report records no provenance: it counts as emulated" in [i["detail"] for i in found["loosenings"]]


def test_evaluate_of_a_real_run_is_not_emulated_but_names_the_file(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS)))
    saved = tmp_path / "saved.json"
    assert run_cli(check_args(emu, "cr.yandex/crptest/app:vuln", "--output", f"json={saved}")).code == 1
    report = tmp_path / "again.json"
    result = run_cli(["evaluate", str(saved), "--output", f"json={report}", "--today", "2000-01-01"])
    assert result.code == 1, result.output
    found = json.loads(report.read_text())["provenance"]
    assert found["emulated"] is False
    kinds = [item["kind"] for item in found["loosenings"]]
    assert kinds[0] == "saved-report" and "today" in kinds
    assert any("api-endpoint (--endpoint)" in item["detail"] for item in found["loosenings"])


def test_a_saved_provenance_that_is_not_an_object_is_exit_2(tmp_path):
    saved = saved_run(tmp_path, "--emulator", DEMO_CLEAN)
    document = json.loads(saved.read_text())
    document["provenance"]["emulated"] = "no"
    saved.write_text(json.dumps(document))
    result = run_cli(["evaluate", str(saved)])
    assert result.code == 2
    assert "$.provenance.emulated: expected a boolean" in result.stderr or "$.provenance.emulated" in result.stderr


def test_today_in_the_future_is_no_loosening():
    later = dt.date.today() + dt.timedelta(days=30)
    assert run_loosenings(Policy(1, {}, "p"), Policy(1, {}, "p"), Flags(today=later, real_today=dt.date.today())) == ()


def test_a_trust_store_from_the_environment_is_a_loosening(tmp_path):
    # An earlier step can export SSL_CERT_FILE (OpenSSL: the registry and token endpoint) or
    # GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (gRPC) with its own CA and a proxy: then it answers for the cloud.
    # Without --ca-file, crgate says so first and records it (the run itself still works).
    import shutil
    import ssl

    planted = tmp_path / "roots.pem"
    shutil.copy(ssl.get_default_verify_paths().openssl_cafile, planted)
    report = tmp_path / "report.json"
    env = {"SSL_CERT_FILE": str(planted), "SSL_CERT_DIR": None, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "/x\x1b[2J.pem"}
    result = run_cli(["check", "--emulator", DEMO_CLEAN, "--output", f"json={report}"], env=env)
    assert result.code == 0, result.output
    instead = "instead of the system's (environment only)"
    assert f"  - ca-file (SSL_CERT_FILE): TLS trusts the CA certificates of {planted} {instead}" in result.stderr
    assert "  - ca-file (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH): TLS trusts the CA certificates of /x" in result.stderr
    assert "\x1b" not in result.stderr
    loosened = json.loads(report.read_text())["provenance"]["loosenings"]
    assert [item["name"] for item in loosened if item["kind"] == "ca-file"] == [
        "SSL_CERT_FILE",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    ]


def test_the_system_store_or_a_ca_file_flag_is_no_trust_loosening():
    import ssl

    from crgate.provenance import trust_variables

    system = ssl.get_default_verify_paths()
    env = {"SSL_CERT_FILE": "/x.pem", "SSL_CERT_DIR": " ", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": "/y.pem"}
    assert trust_variables(env, None) == (("SSL_CERT_FILE", "/x.pem"), ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "/y.pem"))
    assert trust_variables(env, "/ca.pem") == ()
    own = {"SSL_CERT_FILE": system.openssl_cafile, "SSL_CERT_DIR": system.openssl_capath}
    assert trust_variables(own, None) == ()


def test_vex_documents_and_image_rules_are_loosenings_and_their_digests_recorded(tmp_path):
    # A VEX statement takes findings out of the counts and an images: rule judges with its own limits:
    # both weaken the gate relative to the top-level limits, so both lead the log; every file read is
    # recorded by its sha256.
    import hashlib

    from test_vex_e2e import oci_product, statement, vex_document, write

    vex = write(tmp_path, "app.vex.json", vex_document(statement(oci_product("sha256:" + "0" * 64))))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nthresholds: {critical: 0, high: 0}\n"
        "images:\n  - match: ['cr.yandex/crpdemo/*']\n    thresholds: {critical: 0, high: 0}\n"
    )
    report = tmp_path / "report.json"
    args = ["check", "--emulator", DEMO_CLEAN, "--policy", str(policy), "--vex", vex, "--output", f"json={report}"]
    result = run_cli(args)
    assert result.code == 0, result.output
    assert f"  - vex (--vex): 1 statement(s) of {vex} (sha256 " in result.stderr
    assert f"  - image-rules ({policy}): 1 images: rule(s) judge the images they match" in result.stderr
    found = json.loads(report.read_text())["provenance"]
    digest = hashlib.sha256(Path(vex).read_bytes()).hexdigest()
    assert found["vex_files"] == [{"path": vex, "sha256": digest}]
    assert {"vex", "image-rules"} <= {item["kind"] for item in found["loosenings"]}
