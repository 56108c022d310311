"""A policy cannot hide the image from itself (issue 17, opening 5): a baseline that resolves to the image
under test, under any of its names, is exit 2 before anything is scanned or counted; the policy file
cannot make a scan result of any age pass for fresh, nor an ignore rule permanent without a warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import DIGEST_A, DIGEST_B, VULNERABLE_FINDINGS, check_args, digest_of, image, run_cli, scenario

VULN = "cr.yandex/crptest/app:vuln"
PROD = "cr.yandex/crptest/app:prod"
MULTI = "cr.yandex/crptest/app:multi"
SAID = "the baseline is the image under test"


def policy(tmp_path: Path, baseline: str, *, missing: str = "fail") -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"version: 1\nthresholds: {{critical: 0, high: 0}}\nbaseline:\n  image: {baseline}\n  missing: {missing}\n"
    )
    return str(path)


def cloud(start_emulator: Any) -> Any:
    return start_emulator(
        scenario(
            image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS),
            image(
                "crpprod", "prod", DIGEST_A, VULNERABLE_FINDINGS[:2], last_result={"status": "READY", "age_seconds": 60}
            ),
        )
    )


def refused(result: Any, emu: Any) -> None:
    assert result.code == 2, result.output
    assert SAID in result.output
    assert "in baseline" not in result.output  # nothing was counted, so nothing was hidden
    assert emu.stats.scans_started == 0 and emu.stats.calls["ScannerService.ListVulnerabilities"] == 0


def test_the_image_itself_as_its_baseline_is_refused(start_emulator, tmp_path):
    """The attack: 'baseline: {image: <the gated image>}' counted nothing ("27 in baseline") and passed."""
    emu = cloud(start_emulator)
    result = run_cli(check_args(emu, VULN, "--policy", policy(tmp_path, VULN)))
    refused(result, emu)
    assert f"baseline {VULN} (policy {tmp_path / 'policy.yaml'}, key baseline.image) resolves to" in result.output
    assert "Name an image that is already deployed" in result.output


@pytest.mark.parametrize("missing", ["fail", "pass"])
def test_the_image_under_another_name_is_refused(start_emulator, tmp_path, missing):
    """The tag as baseline, the same image gated by digest (and 'missing: pass' changes nothing)."""
    emu = cloud(start_emulator)
    pinned = f"cr.yandex/crptest/app@{digest_of(emu, 'crpvuln')}"
    result = run_cli(check_args(emu, pinned, "--policy", policy(tmp_path, VULN, missing=missing)))
    refused(result, emu)
    assert digest_of(emu, "crpvuln") in result.output


def test_by_image_id_too(start_emulator, tmp_path):
    emu = cloud(start_emulator)
    result = run_cli(check_args(emu, "--image-id", "crpvuln", "--policy", policy(tmp_path, VULN)))
    refused(result, emu)
    assert "resolves to crpvuln" in result.output


def test_other_images_are_still_judged_and_the_run_is_a_usage_error(start_emulator, tmp_path):
    emu = cloud(start_emulator)
    result = run_cli(check_args(emu, VULN, PROD, "--policy", policy(tmp_path, PROD), "--format", "json"))
    assert result.code == 2, result.output
    doc = json.loads(result.stdout)
    vuln, prod = doc["images"]
    assert vuln["verdict"] == "fail" and "in_baseline" in {f["decision"] for f in vuln["findings"]}
    assert prod["verdict"] == "error" and SAID in prod["error"]["message"] and prod["error"]["exit_code"] == 2
    assert emu.stats.scans_started == 1  # only VULN: the baseline's own result is reused, PROD is never scanned


def multiplatform(start_emulator: Any) -> Any:
    return start_emulator(
        {
            "registries": [
                {
                    "id": "crptest",
                    "repositories": [
                        {
                            "name": "app",
                            "images": [
                                {"id": "crpamd64", "platform": "linux/amd64", "findings": VULNERABLE_FINDINGS},
                                {"id": "crparm64", "platform": "linux/arm64", "findings": VULNERABLE_FINDINGS},
                            ],
                            "indexes": [{"id": "crpmulti", "tags": ["multi"], "manifests": ["crpamd64", "crparm64"]}],
                        }
                    ],
                }
            ]
        }
    )


def test_a_platform_image_of_the_gated_index_is_refused(start_emulator, tmp_path):
    emu = multiplatform(start_emulator)
    baseline = f"cr.yandex/crptest/app@{digest_of(emu, 'crparm64')}"
    result = run_cli(check_args(emu, MULTI, "--policy", policy(tmp_path, baseline), "--format", "json"))
    assert result.code == 2, result.output
    rows = {row["platform"]: row for row in json.loads(result.stdout)["images"]}
    assert rows["linux/arm64"]["verdict"] == "error" and SAID in rows["linux/arm64"]["error"]["message"]
    assert rows["linux/amd64"]["verdict"] == "pass"  # judged against the (other) platform's findings


@pytest.mark.parametrize("gated", ["platform image", "index"])
def test_the_gated_index_as_baseline_is_refused(start_emulator, tmp_path, gated):
    """The baseline names the index and --platform narrows it to one image: gating that platform image by
    digest, or the index itself, is gating the baseline."""
    emu = multiplatform(start_emulator)
    ref = f"cr.yandex/crptest/app@{digest_of(emu, 'crparm64')}" if gated == "platform image" else MULTI
    result = run_cli(check_args(emu, ref, "--platform", "linux/arm64", "--policy", policy(tmp_path, MULTI)))
    refused(result, emu)


def test_an_earlier_image_as_baseline_still_works(start_emulator, tmp_path):
    emu = cloud(start_emulator)
    result = run_cli(check_args(emu, VULN, "--policy", policy(tmp_path, PROD)))
    assert result.code == 1, result.output  # CVE-2024-0003 and later are new
    assert SAID not in result.output and "in baseline" in result.output


def test_a_baseline_that_cannot_be_resolved_fails_closed(start_emulator, tmp_path):
    """The self-baseline check cannot compare with a baseline that does not resolve; the baseline's own
    'missing: fail' then stops the image (nothing is hidden), and 'missing: pass' judges it without one."""
    emu = cloud(start_emulator)
    absent = "cr.yandex/crptest/app:absent"
    result = run_cli(check_args(emu, VULN, "--policy", policy(tmp_path, absent)))
    assert result.code == 3, result.output
    assert absent in result.output and "in baseline" not in result.output
    result = run_cli(check_args(emu, VULN, "--policy", policy(tmp_path, absent, missing="pass")))
    assert result.code == 1, result.output  # every finding counts: none is in a baseline
    assert "in baseline" not in result.output and SAID not in result.output


def test_evaluate_refuses_a_saved_self_baseline(start_emulator, tmp_path):
    emu = cloud(start_emulator)
    saved = tmp_path / "saved.json"
    live = run_cli(check_args(emu, VULN, "--policy", policy(tmp_path, PROD), "--output", f"json={saved}"))
    assert live.code == 1, live.output
    doc = json.loads(saved.read_text())
    doc["baseline"]["image_id"] = doc["images"][0]["image_id"]  # a report of a run that hid the image
    saved.write_text(json.dumps(doc))
    result = run_cli(["evaluate", str(saved), "--policy", policy(tmp_path, PROD)])
    assert result.code == 2, result.output
    assert SAID in result.output


# -- reuse.max_age has a cap ------------------------------------------------------------------------------


@pytest.mark.parametrize("age", ["36500d", "31d", "721h", "43201m", "2592001s", "99999999999999999999d"])
def test_a_reuse_age_beyond_the_cap_is_refused_naming_file_line_and_key(tmp_path, age):
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\nthresholds: {{critical: 0}}\nreuse:\n  max_age: {age}\n")
    result = run_cli(["policy", "validate", str(path)])
    assert result.code == 2, result.output
    assert f"policy {path}:4 (key 'reuse.max_age')" in result.output
    assert "crgate accepts at most 30d (720h)" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("age", ["30d", "720h", "24h", "0"])
def test_a_reuse_age_within_the_cap_is_valid(tmp_path, age):
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\nthresholds: {{critical: 0}}\nreuse:\n  max_age: {age}\n")
    assert run_cli(["policy", "validate", str(path)]).code == 0


# -- an ignore rule for ever is warned about --------------------------------------------------------------

FOREVER = "ignore:\n  - id: CVE-2024-0001\n    reason: accepted\n    expires: {date}\n"


def far_policy(tmp_path: Path, date: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nthresholds: {critical: 0, high: 5}\n" + FOREVER.format(date=date))
    return path


def test_policy_validate_warns_on_a_rule_that_expires_in_9999(tmp_path):
    path = far_policy(tmp_path, "9999-12-31")
    result = run_cli(["policy", "validate", str(path)])
    assert result.code == 0, result.output  # valid, but said
    assert (
        f"crgate: warning: ignore rule CVE-2024-0001 (policy line 4) in {path} expires 9999-12-31, more than a "
        "year ahead" in result.stderr
    )
    assert "set 'expires' within a year" in result.stderr


def test_check_warns_in_its_reports(start_emulator, tmp_path):
    emu = cloud(start_emulator)
    path = far_policy(tmp_path, "2999-01-01")
    result = run_cli(check_args(emu, VULN, "--policy", str(path), "--format", "json"))
    warnings = json.loads(result.stdout)["warnings"]
    assert any("expires 2999-01-01, more than a year ahead" in w and str(path) in w for w in warnings), warnings
    assert "warning: ignore rule CVE-2024-0001 (policy line 4)" in result.stderr  # the text report, for people


def test_a_rule_within_a_year_is_not_warned_about(tmp_path):
    import datetime as dt

    soon = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    result = run_cli(["policy", "validate", str(far_policy(tmp_path, soon))])
    assert result.code == 0 and "more than a year" not in result.output
    later = (dt.date.today() + dt.timedelta(days=366)).isoformat()
    assert "more than a year ahead" in run_cli(["policy", "validate", str(far_policy(tmp_path, later))]).stderr
