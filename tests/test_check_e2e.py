"""``crgate check`` end to end: the real CLI, the real client, the emulator over loopback gRPC.

Every way a scan can go wrong has a test here showing the exit code and the message.
"""

from __future__ import annotations

import json

import pytest

from conftest import (
    DIGEST_A,
    DIGEST_B,
    DIGEST_C,
    VULNERABLE_FINDINGS,
    check_args,
    digest_of,
    image,
    run_cli,
    scenario,
)

CLEAN = "cr.yandex/crptest/app:clean"
VULN = "cr.yandex/crptest/app:vuln"


def basic(**vuln_scan):
    return scenario(
        image("crpclean", "clean", DIGEST_A),
        image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS, **vuln_scan),
    )


def test_clean_image_passes_with_exit_0(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, CLEAN))
    assert result.code == 0, result.output
    assert "PASS: 1 image within policy built-in default (exit 0)" in result.stdout
    assert "policy: built-in default (critical <= 0, high <= 0)" in result.stdout
    assert emu.stats.scans_started == 1


def test_vulnerable_image_fails_with_exit_1_and_a_table(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, VULN))
    assert result.code == 1, result.output
    lines = result.stdout.splitlines()
    assert any(line.split() == ["critical", "1", "0", "FAIL"] for line in lines), result.stdout
    assert any(line.split() == ["high", "2", "0", "FAIL"] for line in lines)
    assert any(line.split() == ["medium", "1", "-", "ok"] for line in lines)
    assert any(line.split() == ["total", "7", "-", "ok"] for line in lines)
    assert (
        "FAIL: 1 of 1 image violates the policy (cr.yandex/crptest/app:vuln: critical 1 > 0, high 2 > 0)"
        in result.stdout
    )
    # The text report names the findings behind each violation (fetched for every format).
    assert "findings behind the violations:" in result.stdout
    assert "CVE-2024-0001" in result.stdout and "openssl 1.0.0 -> 1.0.1" in result.stdout
    assert "CVE-2024-0002" in result.stdout and "(no fix yet)" in result.stdout


def test_digest_reference_and_image_id_both_resolve(start_emulator):
    emu = start_emulator(basic())
    by_digest = f"cr.yandex/crptest/app@{digest_of(emu, 'crpclean')}"
    result = run_cli(check_args(emu, by_digest, "--image-id", "crpvuln", "--format", "json"))
    assert result.code == 1, result.output
    doc = json.loads(result.stdout)
    assert [(i["ref"], i["image_id"], i["verdict"]) for i in doc["images"]] == [
        (by_digest, "crpclean", "pass"),
        ("crpvuln", "crpvuln", "fail"),
    ]


def test_policy_file_limits_are_applied(start_emulator, tmp_path):
    emu = start_emulator(basic())
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nthresholds:\n  critical: 1\n  high: 2\n  total: 6\n")
    result = run_cli(check_args(emu, VULN, "--policy", str(policy)))
    assert result.code == 1
    assert "total 7 > 6" in result.stdout
    assert f"policy: {policy}" in result.stdout


def test_policy_discovered_in_working_directory(start_emulator, tmp_path, monkeypatch):
    emu = start_emulator(basic())
    (tmp_path / ".crgate.yaml").write_text("version: 1\nthresholds:\n  critical: 5\n  high: 5\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli(check_args(emu, VULN))
    assert result.code == 0, result.output
    assert "policy: .crgate.yaml" in result.stdout


# -- fail closed: every anomaly of the server is exit 3 with a message that says what happened ------

ANOMALIES = {
    "done_without_result": "done but carries neither an error nor a response",
    "wrong_response_type": "expected ScanResult",
    "negative_count": "negative vulnerability count",
    "wrong_image_id": "but image crpvuln was scanned",
    "wrong_metadata_type": "expected ScanMetadata",
    "running_status_when_done": "status is RUNNING, expected READY",
    "error_before_done": "scan of image crpvuln failed",
}


@pytest.mark.parametrize("anomaly", sorted(ANOMALIES))
def test_malformed_operation_fails_closed_with_exit_3(start_emulator, anomaly):
    emu = start_emulator(basic(anomaly=anomaly))
    result = run_cli(check_args(emu, VULN, "--format", "json"))
    assert result.code == 3, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "error" and doc["exit_code"] == 3
    error = doc["images"][0]["error"]
    assert ANOMALIES[anomaly] in error["message"]
    assert doc["images"][0]["counts"] is None  # no numbers are invented for a failed scan
    assert ANOMALIES[anomaly] in result.stderr


def test_operation_error_shows_code_message_and_request_id(start_emulator):
    emu = start_emulator(basic(operation_error={"code": "INTERNAL", "message": "scanner crashed"}))
    result = run_cli(check_args(emu, VULN, "--format", "json"))
    assert result.code == 3
    error = json.loads(result.stdout)["images"][0]["error"]
    assert "scanner crashed" in error["message"]
    assert error["code"] == "INTERNAL"
    assert error["request_ids"], "the failing call's request id must be reported"
    assert error["request_ids"][0] in error["message"]


def test_scan_status_error_is_exit_3(start_emulator):
    emu = start_emulator(basic(status="ERROR"))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 3
    assert "status ERROR" in result.stdout
    assert "ERROR: 1 of 1 image could not be checked (exit 3)" in result.stdout


def test_timeout_is_exit_4_and_names_the_running_scan(start_emulator):
    emu = start_emulator(basic(duration=60))
    result = run_cli(check_args(emu, VULN, "--timeout", "1.5", "--format", "json"))
    assert result.code == 4, result.output
    doc = json.loads(result.stdout)
    image_doc = doc["images"][0]
    assert image_doc["error"]["kind"] == "timeout"
    assert image_doc["scan_result_id"]
    assert image_doc["scan_result_id"] in image_doc["error"]["message"]
    assert "still running" in image_doc["error"]["message"]


def test_unknown_image_is_exit_3_with_a_hint(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:nope"))
    assert result.code == 3
    assert "not found" in result.stdout
    assert "push still in flight" in result.stdout


def test_unknown_image_id_is_exit_3(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, "--image-id", "crpmissing"))
    assert result.code == 3
    assert "NOT_FOUND" in result.stdout


def test_malformed_reference_is_exit_2_before_any_call(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, "docker.io/library/nginx:1"))
    assert result.code == 2
    assert "not a Yandex Container Registry host" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_bad_policy_is_exit_2_before_any_call(start_emulator, tmp_path):
    emu = start_emulator(basic())
    policy = tmp_path / "bad.yaml"
    policy.write_text("version: 1\nthresholds:\n  critcal: 0\n")
    result = run_cli(check_args(emu, CLEAN, "--policy", str(policy)))
    assert result.code == 2
    assert f"{policy}:3" in result.stderr and "did you mean 'critical'" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


# -- retries, idempotency, waiting ----------------------------------------------------------------


def test_transient_unavailable_on_scan_and_get_recovers_with_one_scan(start_emulator):
    emu = start_emulator(
        basic(
            faults=[
                {"method": "ScannerService.Scan", "code": "UNAVAILABLE", "count": 2},
                {"method": "OperationService.Get", "code": "UNAVAILABLE", "count": 2},
            ]
        )
    )
    result = run_cli(check_args(emu, VULN))
    assert result.code == 1, result.output
    assert emu.stats.calls["ScannerService.Scan"] == 3
    assert emu.stats.scans_started == 1
    keys = emu.stats.idempotency_keys
    assert len(keys) == 3 and len(set(keys)) == 1, "every retry must carry the same idempotency key"


def test_scan_whose_answer_was_lost_is_not_started_twice(start_emulator):
    """DEADLINE_EXCEEDED-like loss after the server started the scan: the retry joins it."""
    emu = start_emulator(
        basic(faults=[{"method": "ScannerService.Scan", "code": "INTERNAL", "count": 1, "after": True}])
    )
    result = run_cli(check_args(emu, VULN))
    assert result.code == 1, result.output
    assert emu.stats.scans_started == 1


def test_permission_denied_fails_at_once_without_retries(start_emulator):
    emu = start_emulator(basic(faults=[{"method": "ScannerService.Scan", "code": "PERMISSION_DENIED", "count": 100}]))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 3
    assert emu.stats.calls["ScannerService.Scan"] == 1
    assert "PERMISSION_DENIED" in result.stdout
    assert "container-registry.images.scanner" in result.stdout


def test_unauthenticated_is_not_retried(start_emulator):
    emu = start_emulator(basic(faults=[{"method": "OperationService.Get", "code": "UNAUTHENTICATED", "count": 100}]))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 3
    assert emu.stats.calls["OperationService.Get"] == 1
    assert "UNAUTHENTICATED" in result.stdout


def test_persistent_unavailable_gives_up_with_exit_3(start_emulator):
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    emu_faults = [{"method": "ImageService.List", "code": "UNAVAILABLE", "count": 1000}]
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A), faults=emu_faults))
    result = run_cli(check_args(emu, CLEAN, "--timeout", "5"))
    assert result.code == 3, result.output
    assert "UNAVAILABLE" in result.stdout
    assert emu.stats.calls["ImageService.List"] >= 2


# A server poll interval (x-operation-poll-interval, on the Scan answer too) spares these tests crgate's real
# 0.25 s/1.8 s schedule: what they check is the count of answers, not the time between them.
def test_operation_not_found_right_after_scan_is_tolerated(start_emulator):
    emu = start_emulator(basic(operation_not_found=3, poll_interval=0.1))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 1, result.output


def test_operation_not_found_beyond_tolerance_fails_closed(start_emulator):
    emu = start_emulator(basic(operation_not_found=4, poll_interval=0.1))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 3, result.output
    assert "NOT_FOUND" in result.stdout


def test_server_poll_interval_header_is_honoured(start_emulator):
    emu = start_emulator(basic(duration=1.5, poll_interval=0.1))
    result = run_cli(check_args(emu, VULN, "--format", "json"))
    assert result.code == 1
    polls = json.loads(result.stdout)["images"][0]["polls"]
    # Our own schedule polls ~4 times in 1.5 s; a 0.1 s server hint makes it poll far more often.
    assert polls >= 8, polls


# -- many images ----------------------------------------------------------------------------------


def test_many_images_report_every_row_and_the_worst_exit_code(start_emulator):
    emu = start_emulator(
        scenario(
            image("crpclean", "clean", DIGEST_A),
            image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS),
            image("crpbroken", "broken", DIGEST_C, anomaly="negative_count"),
        )
    )
    refs = [CLEAN, VULN, "cr.yandex/crptest/app:broken", "cr.yandex/crptest/app:absent"]
    result = run_cli(check_args(emu, *refs, "--format", "json"))
    assert result.code == 3, result.output
    doc = json.loads(result.stdout)
    assert [(i["ref"], i["exit_code"]) for i in doc["images"]] == [
        (CLEAN, 0),
        (VULN, 1),
        ("cr.yandex/crptest/app:broken", 3),
        ("cr.yandex/crptest/app:absent", 3),
    ]
    for ref in refs:
        assert ref in result.stderr  # the human table still lists every image


def test_timeout_outranks_a_violation(start_emulator):
    emu = start_emulator(
        scenario(
            image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS),
            image("crpslow", "slow", DIGEST_C, duration=60),
        )
    )
    result = run_cli(check_args(emu, VULN, "cr.yandex/crptest/app:slow", "--timeout", "1.5"))
    assert result.code == 4


def test_images_are_scanned_concurrently(start_emulator):
    images = [
        image(f"crpimg{n}", f"t{n}", "sha256:" + f"{n:x}" * 64, duration=1.0, poll_interval=0.1) for n in range(1, 7)
    ]
    emu = start_emulator(scenario(*images))
    result = run_cli(check_args(emu, *[f"cr.yandex/crptest/app:t{n}" for n in range(1, 7)], "--format", "json"))
    assert result.code == 0, result.output
    assert emu.stats.max_concurrent_scans >= 2


def test_concurrency_bound_is_respected(start_emulator):
    # one image after the other: the server's short poll interval spares four waits of crgate's 1.8 s
    images = [
        image(f"crpimg{n}", f"t{n}", "sha256:" + f"{n:x}" * 64, duration=0.3, poll_interval=0.1) for n in range(1, 5)
    ]
    emu = start_emulator(scenario(*images))
    refs = [f"cr.yandex/crptest/app:t{n}" for n in range(1, 5)]
    result = run_cli(check_args(emu, *refs, "--concurrency", "1"))
    assert result.code == 0, result.output
    assert emu.stats.max_concurrent_scans == 1


# -- headers and secrets --------------------------------------------------------------------------


def test_requests_carry_ids_user_agent_and_token(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, CLEAN, "--iam-token", "t1.secret-token-value", "-vv"))
    assert result.code == 0, result.output
    seen = [(method, md) for method, md in emu.stats.request_metadata if not method.startswith("HTTP registry")]
    assert seen
    request_ids = [md["x-request-id"] for _, md in seen]
    assert len(set(request_ids)) == len(request_ids), "x-request-id must be fresh per call"
    assert len({md["x-client-trace-id"] for _, md in seen}) == 1
    assert all(md["user-agent"].startswith("crgate/") for _, md in seen)
    assert all(md["authorization"] == "Bearer t1.secret-token-value" for _, md in seen)
    assert "secret-token-value" not in result.output


def test_insecure_to_a_remote_address_is_refused():
    result = run_cli(["check", "--endpoint", "scanner.example.com:443", "--insecure", CLEAN])
    assert result.code == 2
    assert "only allowed to loopback" in result.stderr


def test_production_without_credentials_is_exit_2():
    result = run_cli(["check", CLEAN], env={"YC_METADATA_ADDR": "127.0.0.1:9"})  # no metadata service there
    assert result.code == 2
    assert "no credentials" in result.stderr and "YC_IAM_TOKEN" in result.stderr


def test_no_images_is_a_usage_error():
    result = run_cli(["check", "--emulator"])
    assert result.code == 2
    assert "no images given" in result.stderr


# -- outputs --------------------------------------------------------------------------------------


def test_several_output_formats_in_one_run(start_emulator, tmp_path):
    emu = start_emulator(basic())
    json_path, text_path = tmp_path / "r.json", tmp_path / "r.txt"
    result = run_cli(check_args(emu, CLEAN, VULN, "--output", f"json={json_path}", "--output", f"text={text_path}"))
    assert result.code == 1
    assert json.loads(json_path.read_text())["verdict"] == "fail"
    assert "FAIL: 1 of 2 images violates the policy" in text_path.read_text()
    assert emu.stats.scans_started == 2, "one run, several formats: each image scanned once"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("json", "is not FORMAT=PATH"),
        ("xml=out.xml", "unknown format 'xml'"),
        ("json=/nonexistent-dir/r.json", "does not exist"),
    ],
)
def test_bad_output_option_is_exit_2(value, message):
    result = run_cli(["check", "--emulator", CLEAN, "--output", value])
    assert result.code == 2
    assert message in result.stderr


@pytest.mark.parametrize("output", ["json=/nonexistent-dir/r.json", "sarif={dir}", "gitlab={dir}/../{dir_name}"])
def test_an_unwritable_output_stops_the_run_before_any_call_to_the_cloud(start_emulator, tmp_path, output):
    """A report that cannot be written must not cost a billed scan first: the check comes before any RPC."""
    emu = start_emulator(basic())
    value = output.format(dir=tmp_path, dir_name=tmp_path.name)
    result = run_cli(check_args(emu, CLEAN, "--output", value))
    assert result.code == 2, result.output
    assert "--output" in result.stderr
    assert emu.stats.scan_log() == []
    assert sum(emu.stats.calls.values()) == 0, emu.stats.calls


def test_json_goes_to_stdout_and_the_table_to_stderr(start_emulator):
    emu = start_emulator(basic())
    result = run_cli(check_args(emu, CLEAN, "--format", "json"))
    json.loads(result.stdout)  # stdout is pure JSON
    assert "PASS: 1 image" in result.stderr


def test_progress_lines_show_state_changes(start_emulator):
    emu = start_emulator(basic(duration=0.5, poll_interval=0.1))  # several polls while it scans
    result = run_cli(check_args(emu, VULN))
    progress = [line for line in result.stderr.splitlines() if VULN in line]
    states = [line.split(": ", 1)[1].split(" (")[0] for line in progress]
    assert states[0] == "queued"
    assert "scanning" in states and states[-1] == "fail"
    assert len(states) == len(set(states)), "one line per state change, not per poll"
