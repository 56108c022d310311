"""Limits and verdicts from the command line: --max, --only-fixed and --report-only (issue 9)."""

from __future__ import annotations

import json

import pytest

from conftest import DIGEST_A, DIGEST_B, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario

VULN = "cr.yandex/crptest/app:vuln"
CLEAN = "cr.yandex/crptest/app:clean"


@pytest.fixture
def emu(start_emulator):
    return start_emulator(
        scenario(image("crpclean", "clean", DIGEST_A), image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS))
    )


def gate(emu, *args: str):
    result = run_cli(check_args(emu, *args, "--format", "json"))
    assert "Traceback" not in result.output, result.output
    return result, (json.loads(result.stdout) if result.stdout.startswith("{") else None)


def test_max_raises_a_limit_and_keeps_the_defaults_other_limits(emu):
    # VULNERABLE_FINDINGS: critical 1, high 2. With high raised to 2, critical 0 (built-in) still fails.
    result, doc = gate(emu, VULN, "--max", "high=2")
    assert result.code == 1, result.output
    assert doc["policy"]["source"] == "built-in default + --max high=2"
    assert doc["policy"]["thresholds"] == {"critical": 0, "high": 2}
    assert [v["severity"] for v in doc["images"][0]["violations"]] == ["critical"]


def test_max_for_every_key_found_lets_the_image_pass(emu):
    result, doc = gate(emu, VULN, "--max", "critical=1", "--max", "HIGH=2", "--max", "total=7")
    assert result.code == 0, result.output
    assert doc["policy"]["thresholds"] == {"critical": 1, "high": 2, "total": 7}


def test_max_overrides_the_same_key_of_a_policy_file_and_says_so(emu, tmp_path, monkeypatch):
    (tmp_path / ".crgate.yaml").write_text("version: 1\nthresholds: {critical: 5, high: 0, medium: 20}\n")
    monkeypatch.chdir(tmp_path)
    result, doc = gate(emu, VULN, "--max", "high=5")
    assert result.code == 0, result.output
    assert doc["policy"]["source"] == ".crgate.yaml + --max high=5"
    assert doc["policy"]["thresholds"] == {"critical": 5, "high": 5, "medium": 20}
    assert ".crgate.yaml + --max high=5" in result.stderr  # the human report names it too


def test_only_fixed_counts_only_findings_with_a_fix(emu):
    # Fixable in VULNERABLE_FINDINGS: the critical one and one of the two highs.
    result, doc = gate(emu, VULN, "--only-fixed", "--max", "critical=1", "--max", "high=1")
    assert result.code == 0, result.output
    assert doc["policy"]["source"] == "built-in default + --max critical=1 --max high=1 --only-fixed"
    counted = doc["images"][0]["counted"]
    assert counted["critical"] == 1 and counted["high"] == 1
    decisions = {f["cve"]: f["decision"] for f in doc["images"][0]["findings"]}
    assert decisions["CVE-2024-0002"] == "not_fixable"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("hihg=5", "unknown key 'hihg'; did you mean 'high'?"),
        ("other=5", "did you mean 'undefined'?"),
        ("high", "expected SEVERITY=N"),
        ("high=", "'' is not a count"),
        ("high=-1", "'-1' is not a count"),
        ("high=1.5", "'1.5' is not a count"),
        ("high=010", "'010' is not a count"),
        ("high=true", "'true' is not a count"),
        ("high=99999999999999999999999", "is not a count"),
    ],
)
def test_a_bad_max_is_exit_2_naming_the_flag_before_any_call(emu, value, fragment):
    result, _ = gate(emu, VULN, "--max", value)
    assert result.code == 2, result.output
    assert f"--max '{value}'" in result.stderr and fragment in result.stderr
    assert emu.stats.calls["ScannerService.Scan"] == 0


def test_the_same_max_twice_is_exit_2(emu):
    result, _ = gate(emu, VULN, "--max", "high=1", "--max", "high=2")
    assert result.code == 2, result.output
    assert "--max high is given twice" in result.stderr


def test_report_only_passes_the_step_on_a_violation_but_the_report_still_says_fail(emu):
    result, doc = gate(emu, VULN, CLEAN, "--report-only")
    assert result.code == 0, result.output
    assert doc["verdict"] == "fail" and doc["exit_code"] == 1 and doc["report_only"] is True
    assert [i["verdict"] for i in doc["images"]] == ["fail", "pass"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["cr.yandex/crptest/app:absent"], 3),  # not found: an error is never turned into a pass
        (["--timeout", "0.3", "cr.yandex/crptest/app:slow"], 4),
    ],
)
def test_report_only_never_turns_an_error_into_a_pass(start_emulator, args, code):
    emu = start_emulator(scenario(image("crpslow", "slow", DIGEST_A, duration=30)))
    result = run_cli(check_args(emu, *args, "--report-only", "--format", "json"))
    assert result.code == code, result.output
    assert json.loads(result.stdout)["report_only"] is True


def test_report_only_with_a_violation_and_an_error_exits_with_the_error(emu):
    result, doc = gate(emu, VULN, "cr.yandex/crptest/app:absent", "--report-only")
    assert result.code == 3, result.output
    assert doc["exit_code"] == 3


def test_doctor_runs_against_the_built_in_emulator():
    result = run_cli(["doctor", "--emulator", "--repository", "cr.yandex/crpdemo/app"])
    assert result.code == 0, result.output
    assert "doctor: all checks passed (exit 0)" in result.stdout
    assert "may list images in crpdemo/app" in result.stdout


def test_doctor_emulator_excludes_an_endpoint():
    result = run_cli(["doctor", "--emulator", "--endpoint", "127.0.0.1:1"])
    assert result.code == 2, result.output
    assert "--emulator excludes --endpoint" in result.stderr
