"""``crgate audit`` end to end: the real CLI and client against the emulator over loopback gRPC.

An audit reads what the scanner holds and starts no scan unless asked (``--rescan-stale``); every way it
can go wrong has a test showing the exit code and the message.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from conftest import REPO_ROOT, command_args, finding, run_cli

DAY = 86400.0
CRITICAL = [finding("CVE-2024-1111", "CRITICAL", fixed_by="1.1")]
MEDIUM = [finding("CVE-2024-2222", "MEDIUM")]


def img(image_id: str, tags: list[str], findings: list[dict[str, Any]] | None = None, **scan: Any) -> dict[str, Any]:
    """An image; ``age`` (seconds) gives it a READY result scanned that long ago, none = never scanned."""
    age = scan.pop("age", None)
    registry_side = {key: scan.pop(key) for key in ("platform", "artifact") if key in scan}
    if age is not None:
        scan["last_result"] = {"status": "READY", "age_seconds": age}
    image = {"id": image_id, "tags": tags, "findings": findings or [], "scan": {"duration": 0.05, **scan}}
    return {**image, **registry_side}


def mixed() -> dict[str, Any]:
    """A registry of every state: fresh passing, stale, never scanned, failing, untagged, and an index."""
    app = [
        img("crpfresh1", ["fresh"], MEDIUM, age=3600),
        {**img("crpstale1", ["stale"], age=10 * DAY), "created_at": "2020-01-01T00:00:00Z"},  # pushed long ago
        img("crpnever1", ["never"]),
        img("crpfail01", ["failing"], CRITICAL, age=3600),
        img("crpuntag1", [], age=30 * DAY),
        img("crpamd641", [], age=2 * DAY, platform="linux/amd64"),
        img("crparm641", [], age=8 * DAY, platform="linux/arm64"),
        img("crpsign01", ["sha256-0123.sig"], artifact="signature"),  # cosign: tagged, never scanned
    ]
    indexes = [{"id": "crpmulti1", "tags": ["multi"], "manifests": ["crpamd641", "crparm641"]}]
    other = [img("crpother1", ["1.0"], age=60)]
    return {
        "registries": [
            {
                "id": "crpaudit",
                "folder": "b1gteam",
                "repositories": [
                    {"name": "app", "images": app, "indexes": indexes},
                    {"name": "team/other", "images": other},
                ],
            },
            {"id": "crpelse", "repositories": [{"name": "x", "images": [img("crpelse01", ["x"])]}]},
        ]
    }


def audit_args(emulator: Any, *args: str) -> list[str]:
    return command_args("audit", emulator, *args)


def states(stdout: str) -> dict[str, str]:
    return {image["ref"]: image["state"] for image in json.loads(stdout)["images"]}


def test_registry_audit_lists_each_state_exits_1_and_starts_no_scan(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--registry", "crpaudit", "--format", "json"))
    assert result.code == 1, result.stderr
    report = json.loads(result.stdout)
    assert states(result.stdout) == {
        "cr.yandex/crpaudit/app:fresh": "fresh",
        "cr.yandex/crpaudit/app:stale": "stale",
        "cr.yandex/crpaudit/app:never": "never_scanned",
        "cr.yandex/crpaudit/app:failing": "failing",
        "cr.yandex/crpaudit/app:multi [linux/amd64]": "fresh",
        "cr.yandex/crpaudit/app:multi [linux/arm64]": "stale",
        "cr.yandex/crpaudit/team/other:1.0": "fresh",
    }
    assert emu.stats.calls["ScannerService.Scan"] == 0 and emu.stats.scans_started == 0
    assert report["scans_started"] == 0 and report["exit_code"] == 1 and report["verdict"] == "fail"
    by_ref = {image["ref"]: image for image in report["images"]}
    fresh = by_ref["cr.yandex/crpaudit/app:fresh"]
    assert fresh["image_id"] == "crpfresh1" and fresh["verdict"] == "pass"
    assert fresh["digest"] == emu.scenario.image("crpfresh1").digest
    assert fresh["scan_result_id"] and fresh["scanned_at"].endswith("Z")
    assert 3500 <= fresh["age_seconds"] <= 3900
    stale = by_ref["cr.yandex/crpaudit/app:stale"]
    assert stale["verdict"] == "pass" and stale["age_seconds"] >= 10 * DAY - 100
    never = by_ref["cr.yandex/crpaudit/app:never"]
    assert (never["scan_result_id"], never["scanned_at"], never["age_seconds"], never["verdict"]) == (None,) * 4
    failing = by_ref["cr.yandex/crpaudit/app:failing"]
    assert failing["verdict"] == "fail" and failing["violations"] == [{"severity": "critical", "count": 1, "limit": 0}]
    assert report["states"] == {"error": 0, "never_scanned": 1, "failing": 1, "stale": 2, "fresh": 3}
    warnings = " ".join(report["warnings"])
    assert "5 listed image(s) left out: untagged" in warnings
    assert "1 listed image(s) left out: no container image (signatures, attestations" in warnings
    assert "crgate: 7/7 images audited" in result.stderr or "images audited" in result.stderr


def test_text_report_shows_state_age_and_last_scan(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--repository", "crpaudit/app"))
    assert result.code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["STATE", "AGE", "LAST", "SCAN", "VERDICT", "IMAGE"]
    never = next(line for line in lines if line.endswith("app:never"))
    assert never.split()[:4] == ["never_scanned", "-", "-", "-"]
    stale = next(line for line in lines if line.endswith("app:stale"))
    assert stale.split()[0] == "stale" and stale.split()[1] == "10d"
    assert "critical 1 > 0" in result.stdout
    assert lines[-1].startswith("audit: 6 image(s): 0 error, 1 never_scanned, 1 failing, 2 stale, 2 fresh")
    assert emu.stats.scans_started == 0


def test_only_fresh_passing_images_exit_0(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--repository", "crpaudit/team/other"))
    assert result.code == 0, result.stdout + result.stderr
    assert "1 fresh" in result.stdout and "verdict pass" in result.stdout


def test_max_age_include_untagged_and_since(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--repository", "crpaudit/app", "--max-age", "40d", "--include-untagged",
                                "--format", "json"))  # fmt: skip
    got = states(result.stdout)
    assert got["cr.yandex/crpaudit/app:stale"] == "fresh"  # 10 days is within 40
    untagged = emu.scenario.image("crpuntag1").digest
    assert got[f"cr.yandex/crpaudit/app@{untagged}"] == "fresh"
    since = run_cli(audit_args(emu, "--repository", "crpaudit/app", "--since", "30d", "--format", "json"))
    audited = states(since.stdout)
    assert len(audited) == 5 and "cr.yandex/crpaudit/app:stale" not in audited  # pushed in 2020
    assert "untagged or older than --since" in " ".join(json.loads(since.stdout)["warnings"])


def test_folder_audit_covers_every_registry_of_the_folder(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--folder-id", "b1gteam", "--format", "json"))
    refs = set(states(result.stdout))
    assert "cr.yandex/crpaudit/team/other:1.0" in refs and not any("crpelse" in ref for ref in refs)
    assert emu.stats.calls["ImageService.List"] >= 1


def test_rescan_stale_with_max_scans_2_starts_exactly_two(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--registry", "crpaudit", "--rescan-stale", "--max-scans", "2",
                                "--format", "json"))  # fmt: skip
    report = json.loads(result.stdout)
    assert emu.stats.scans_started == 2 and report["scans_started"] == 2
    assert "--rescan-stale: 2 scan(s) started" in result.stderr
    rescanned = [image for image in report["images"] if image["rescanned"]]
    assert len(rescanned) == 2
    # Never-scanned first, then the oldest stale image.
    assert {image["image_id"] for image in rescanned} == {"crpnever1", "crpstale1"}
    assert all(image["state"] == "fresh" and image["age_seconds"] < 600 for image in rescanned)
    assert result.code == 1  # the failing image and the arm64 image still stand
    assert "were not rescanned" in " ".join(report["warnings"])


def test_rescan_stale_without_a_cap_leaves_only_failing(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--registry", "crpaudit", "--rescan-stale", "--format", "json"))
    report = json.loads(result.stdout)
    assert report["scans_started"] == emu.stats.scans_started == 3
    assert report["states"]["fresh"] == 6 and report["states"]["failing"] == 1


KUBECTL_PODS = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: web-1, namespace: prod}
  spec:
    containers:
    - name: web
      image: cr.yandex/crpaudit/app:fresh
    initContainers:
    - name: migrate
      image: cr.yandex/crpaudit/app:stale
- apiVersion: v1
  kind: Pod
  metadata: {name: proxy, namespace: kube-system}
  spec:
    containers:
    - name: proxy
      image: docker.io/library/nginx:1.27
"""


def test_audit_of_running_pods_from_kubectl_output(start_emulator):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--from-manifest", "-", "--format", "json"), stdin=KUBECTL_PODS)
    assert result.code == 1, result.stderr
    report = json.loads(result.stdout)
    assert states(result.stdout) == {"cr.yandex/crpaudit/app:fresh": "fresh", "cr.yandex/crpaudit/app:stale": "stale"}
    assert any("docker.io/library/nginx:1.27" in w and "not audited" in w for w in report["warnings"])
    assert emu.stats.scans_started == 0


def test_an_api_error_is_exit_3_naming_the_call(start_emulator):
    data = mixed()
    data["faults"] = [{"method": "ImageService.List", "code": "PERMISSION_DENIED", "count": 10}]
    emu = start_emulator(data)
    result = run_cli(audit_args(emu, "--registry", "crpaudit"))
    assert result.code == 3
    assert "could not list the images of registry crpaudit" in result.stderr
    assert "PERMISSION_DENIED" in result.stderr


def test_a_failing_getlast_makes_that_image_an_error_exit_3(start_emulator):
    data = mixed()
    app = data["registries"][0]["repositories"][0]["images"]
    app[0]["scan"]["faults"] = [{"method": "ScannerService.GetLast", "code": "PERMISSION_DENIED", "count": 10}]
    emu = start_emulator(data)
    result = run_cli(audit_args(emu, "--repository", "crpaudit/app", "--format", "json"))
    assert result.code == 3
    entry = next(i for i in json.loads(result.stdout)["images"] if i["image_id"] == "crpfresh1")
    assert entry["state"] == "error" and entry["verdict"] == "error"
    assert "could not get the last scan result of image crpfresh1" in entry["notes"][0]


def test_a_rescan_that_outlasts_the_deadline_is_exit_4(start_emulator):
    data = mixed()
    data["registries"][0]["repositories"][0]["images"][2]["scan"]["duration"] = 120  # crpnever1
    emu = start_emulator(data)
    args = audit_args(emu, "--repository", "crpaudit/app", "--rescan-stale", "--max-scans", "1", "--timeout", "2")
    result = run_cli([*args, "--format", "json"])
    assert result.code == 4, result.stdout + result.stderr
    entry = next(i for i in json.loads(result.stdout)["images"] if i["image_id"] == "crpnever1")
    assert entry["state"] == "error" and "timed out" in entry["notes"][-1]
    assert emu.stats.scans_started == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to audit"),
        (["--registry", "crpaudit", "--max-scans", "2"], "--max-scans caps --rescan-stale"),
        (["--registry", "Bad_Id"], "--registry 'Bad_Id': expected an id"),
        (["--repository", "crpaudit"], "expected REGISTRY_ID/REPOSITORY"),
        (["--folder-id", "b1g team"], "--folder-id 'b1g team'"),
        (["--registry", "crpaudit", "--max-age", "7 days"], "is not a duration"),
        (["--registry", "crpaudit", "--since", "0d"], "is not a duration"),
        (["--registry", "crpaudit", "--format", "sarif"], "'sarif' is not one of"),
    ],
)
def test_bad_flags_are_exit_2_before_any_call(start_emulator, args, message):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, *args))
    assert result.code == 2, result.stderr
    assert message in result.stderr
    assert sum(emu.stats.calls.values()) == 0


AUDIT_SCHEMA = json.loads((REPO_ROOT / "src" / "crgate" / "report" / "audit.schema.json").read_text())


def test_every_json_report_follows_the_published_audit_schema(start_emulator):
    data = mixed()
    data["registries"][0]["repositories"][0]["images"][0]["scan"]["faults"] = [
        {"method": "ScannerService.GetLast", "code": "PERMISSION_DENIED", "count": 10}
    ]
    emu = start_emulator(data)
    result = run_cli(audit_args(emu, "--registry", "crpaudit", "--include-untagged", "--rescan-stale",
                                "--max-scans", "1", "--format", "json"))  # fmt: skip
    document = json.loads(result.stdout)
    assert {image["state"] for image in document["images"]} == {"error", "failing", "stale", "fresh"}
    # The index's two attestation manifests and the signature are no container images: left out, counted.
    assert "3 listed image(s) left out: no container image" in " ".join(document["warnings"])
    jsonschema.Draft202012Validator.check_schema(AUDIT_SCHEMA)
    jsonschema.Draft202012Validator(AUDIT_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(document)


def test_ignore_rules_apply_as_in_check(start_emulator, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nthresholds: {critical: 0}\nignore:\n"
        "  - {id: CVE-2024-1111, reason: not reachable, expires: 2999-01-01}\n",
        encoding="utf-8",
    )
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "cr.yandex/crpaudit/app:failing", "--policy", str(policy), "--format", "json"))
    assert result.code == 0, result.output
    image = json.loads(result.stdout)["images"][0]
    assert (image["state"], image["verdict"], image["counted"]["critical"]) == ("fresh", "pass", 0)
    assert emu.stats.calls["ScannerService.ListVulnerabilities"] == 1  # the ignore rule needs the findings


def test_a_baseline_is_read_from_its_last_ready_result_never_scanned(start_emulator, tmp_path):
    data = mixed()
    app = data["registries"][0]["repositories"][0]["images"]
    app.append(img("crpprod01", ["prod"], CRITICAL, age=2 * DAY))  # deployed, with the same critical
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nthresholds: {critical: 0}\nbaseline: {image: cr.yandex/crpaudit/app:prod}\n")
    emu = start_emulator(data)
    args = ["cr.yandex/crpaudit/app:failing", "cr.yandex/crpaudit/app:prod", "--policy", str(policy)]
    result = run_cli(audit_args(emu, *args, "--format", "json"))
    got = {image["ref"]: (image["state"], image["verdict"]) for image in json.loads(result.stdout)["images"]}
    # The image under audit passes on the baseline; the baseline itself is judged without it (fail closed).
    assert got == {
        "cr.yandex/crpaudit/app:failing": ("fresh", "pass"),
        "cr.yandex/crpaudit/app:prod": ("failing", "fail"),
    }
    assert result.code == 1 and emu.stats.scans_started == 0
    never = tmp_path / "never.yaml"
    never.write_text("version: 1\nthresholds: {critical: 0}\nbaseline: {image: cr.yandex/crpaudit/app:never}\n")
    missing = run_cli(audit_args(emu, "cr.yandex/crpaudit/app:fresh", "--policy", str(never)))
    assert missing.code == 3 and "has no READY scan result (an audit does not scan it)" in missing.stderr
    assert emu.stats.scans_started == 0


@pytest.mark.parametrize("anomaly", ["wrong_image_id", "negative_count", "stats_mismatch"])
def test_a_malformed_last_result_is_that_images_error_exit_3(start_emulator, anomaly, tmp_path):
    data = mixed()
    data["registries"][0]["repositories"][0]["images"][0]["scan"]["anomaly"] = anomaly  # crpfresh1
    policy = tmp_path / "policy.yaml"  # findings listed, so that their recount meets the statistics
    policy.write_text("version: 1\nthresholds: {critical: 0}\nignore: [{id: CVE-2000-0001, reason: x}]\n")
    emu = start_emulator(data)
    result = run_cli(audit_args(emu, "--repository", "crpaudit/app", "--policy", str(policy), "--format", "json"))
    assert result.code == 3, result.output
    entry = next(i for i in json.loads(result.stdout)["images"] if i["image_id"] == "crpfresh1")
    assert entry["state"] == "error" and entry["verdict"] == "error"
    assert "malformed" in entry["notes"][0] or "inconsistent" in entry["notes"][0]
    assert emu.stats.scans_started == 0


def test_markdown_and_junit_reports_name_every_image_and_its_state(start_emulator, tmp_path):
    import xml.etree.ElementTree as ET

    emu = start_emulator(mixed())
    md, xml = tmp_path / "audit.md", tmp_path / "audit.xml"
    result = run_cli(audit_args(emu, "--repository", "crpaudit/app", "--output", f"markdown={md}",
                                "--output", f"junit={xml}"))  # fmt: skip
    assert result.code == 1
    summary = md.read_text(encoding="utf-8")
    assert summary.startswith("## crgate audit: fail")
    assert "| never_scanned | - | - | - | `cr.yandex/crpaudit/app:never` |" in summary
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "6" and suite.get("failures") == "4"
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == {
        "cr.yandex/crpaudit/app:stale",
        "cr.yandex/crpaudit/app:never",
        "cr.yandex/crpaudit/app:failing",
        "cr.yandex/crpaudit/app:multi [linux/arm64]",
    }


def test_an_unwritable_output_is_exit_2_before_any_call(start_emulator, tmp_path):
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "--registry", "crpaudit", "--output", f"json={tmp_path}/missing/a.json"))
    assert result.code == 2 and "does not exist" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_a_scanner_that_stalls_past_the_deadline_is_exit_4(start_emulator):
    data = mixed()
    # Seed 3 stalls the first GetLast calls of crpother1 11-19 s (chaos.decide): the 2 s deadline passes first.
    data["chaos"] = {"seed": 3, "rate": 1.0, "kinds": ["stall"], "methods": ["ScannerService.GetLast"],
                     "stall_seconds": 30}  # fmt: skip
    emu = start_emulator(data)
    result = run_cli(audit_args(emu, "--repository", "crpaudit/team/other", "--timeout", "2", "--format", "json"))
    assert result.code == 4, result.output
    entry = json.loads(result.stdout)["images"][0]
    assert entry["state"] == "error" and "the --timeout of 2s passed during ScannerService.GetLast" in entry["notes"][0]


def test_loosenings_lead_the_log_and_are_in_the_report(start_emulator, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nthresholds: {critical: 0}\nignore: [{id: CVE-2024-1111, reason: accepted}]\n")
    emu = start_emulator(mixed())
    result = run_cli(audit_args(emu, "cr.yandex/crpaudit/app:failing", "--policy", str(policy), "--format", "json"))
    kinds = {item["kind"] for item in json.loads(result.stdout)["loosenings"]}
    assert {"ignore-rules", "api-endpoint", "registry"} <= kinds
    assert result.stderr.index("ignore-rules") < result.stderr.index("crgate 0.1.0: audit")


def test_a_trust_store_from_the_environment_is_a_loosening_of_an_audit_too(start_emulator, tmp_path):
    # check and audit build their loosenings from the same settings (cli._flags): an earlier step's
    # SSL_CERT_FILE is named before any call in both.
    import shutil
    import ssl

    planted = tmp_path / "roots.pem"
    shutil.copy(ssl.get_default_verify_paths().openssl_cafile, planted)
    emu = start_emulator(mixed())
    env = {"SSL_CERT_FILE": str(planted), "SSL_CERT_DIR": None, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": None}
    result = run_cli(audit_args(emu, "cr.yandex/crpaudit/app:failing", "--format", "json"), env=env)
    names = [(item["kind"], item["name"]) for item in json.loads(result.stdout)["loosenings"]]
    assert ("ca-file", "SSL_CERT_FILE") in names
    assert result.stderr.index("ca-file (SSL_CERT_FILE)") < result.stderr.index("crgate 0.1.0: audit")
