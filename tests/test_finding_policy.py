"""Finding-level policy end to end: ignore rules, fixable-only, baseline, reuse, explain, evaluate."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import DIGEST_A, DIGEST_B, DIGEST_C, VULNERABLE_FINDINGS, check_args, finding, image, run_cli, scenario

VULN = "cr.yandex/crptest/app:vuln"
PROD = "cr.yandex/crptest/app:prod"


def policy_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return str(path)


def json_run(emu, tmp_path, body: str, *refs: str, extra: tuple[str, ...] = ()):
    result = run_cli(
        check_args(emu, *(refs or (VULN,)), "--policy", policy_file(tmp_path, body), "--format", "json", *extra)
    )
    assert result.code in (0, 1), result.output
    return result.code, json.loads(result.stdout)


def decisions(doc, index=0):
    return {(f["cve"], f["package"]): f["decision"] for f in doc["images"][index]["findings"]}


@pytest.fixture
def emu(start_emulator):
    return start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS)))


def test_ignore_rule_removes_a_finding_from_the_count(emu, tmp_path):
    code, doc = json_run(
        emu,
        tmp_path,
        """
        thresholds: {critical: 0}
        ignore:
          - id: CVE-2024-0001
            reason: not reachable in this service
        """,
    )
    assert code == 0
    assert decisions(doc)[("CVE-2024-0001", "openssl")] == "ignored"
    ignored = next(f for f in doc["images"][0]["findings"] if f["decision"] == "ignored")
    assert ignored["rule"].startswith("CVE-2024-0001")
    assert doc["images"][0]["counted"]["critical"] == 0
    assert doc["images"][0]["counts"]["critical"] == 1  # what the scanner found is still reported


def test_ignore_rule_package_and_image_globs_narrow_it(emu, tmp_path):
    code, doc = json_run(
        emu,
        tmp_path,
        """
        thresholds: {critical: 0}
        ignore:
          - {id: CVE-2024-0001, package: "libssl*", reason: other package}
          - {id: CVE-2024-0001, images: ["cr.yandex/*/other*"], reason: other image}
        """,
    )
    assert code == 1
    assert decisions(doc)[("CVE-2024-0001", "openssl")] == "counted"
    assert any("matched no finding" in w for w in doc["warnings"])  # both rules are stale


def test_fixable_only_per_severity(emu, tmp_path):
    code, doc = json_run(emu, tmp_path, "thresholds:\n  high: {max: 0, fixable_only: true}\n")
    assert code == 1  # CVE-2024-0003 (curl) has a fix
    assert decisions(doc)[("CVE-2024-0002", "zlib")] == "not_fixable"
    assert decisions(doc)[("CVE-2024-0003", "curl")] == "counted"
    assert doc["images"][0]["violations"] == [{"severity": "high", "count": 1, "limit": 0}]


def test_only_fixed_applies_to_every_severity(emu, tmp_path):
    code, doc = json_run(emu, tmp_path, "only_fixed: true\nthresholds: {medium: 0, total: 2}\n")
    assert code == 0  # only openssl and curl findings have fixes: total 2, medium 0
    assert doc["images"][0]["counted"]["total"] == 2


def test_rules_combine(emu, tmp_path):
    code, doc = json_run(
        emu,
        tmp_path,
        """
        thresholds: {critical: 0, high: {max: 0, fixable_only: true}}
        ignore:
          - {id: CVE-2024-0003, package: curl, reason: patched in our fork, expires: 2099-01-01}
          - {id: cve-2024-0001, reason: case-insensitive ids}
        """,
    )
    assert code == 0
    assert decisions(doc) == {
        ("CVE-2024-0001", "openssl"): "ignored",
        ("CVE-2024-0002", "zlib"): "not_fixable",
        ("CVE-2024-0003", "curl"): "ignored",
        ("CVE-2024-0004", "glibc"): "counted",
        ("CVE-2024-0005", "glibc"): "counted",
        ("CVE-2024-0006", "bash"): "counted",
        ("CVE-2024-0007", "tar"): "counted",
    }


EXPIRING = """
thresholds: {critical: 0}
ignore:
  - {id: CVE-2024-0001, reason: waiting for upstream, expires: 2027-01-31}
"""


def test_expired_rule_stops_applying_and_warns(emu, tmp_path):
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, EXPIRING), "--today", "2027-02-01"))
    assert result.code == 1
    assert "expired on 2027-01-31 and no longer applies" in result.stdout


def test_rule_applies_through_its_expiry_day_with_a_warning(emu, tmp_path):
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, EXPIRING), "--today", "2027-01-31"))
    assert result.code == 0
    assert "expires today" in result.stdout


def test_rule_warns_14_days_ahead(emu, tmp_path):
    soon = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, EXPIRING), "--today", "2027-01-17"))
    later = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, EXPIRING), "--today", "2027-01-16"))
    assert "expires in 14 days" in soon.stdout
    assert "expires" not in later.stdout.split("PASS")[0].split("warning")[-1] or "warning" not in later.stdout


def test_stale_rule_fails_when_asked(emu, tmp_path):
    body = """
    thresholds: {critical: 5, high: 5}
    fail_on_stale_ignores: true
    ignore:
      - {id: CVE-1999-0001, reason: long gone}
    """
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, body), "--format", "json"))
    assert result.code == 1
    doc = json.loads(result.stdout)
    assert doc["stale_ignores"] and doc["stale_ignores"][0].startswith("CVE-1999-0001")
    assert doc["images"][0]["violations"] == []  # the image itself is fine; the policy file is not
    assert "stale ignore rule" in result.stderr


# -- text explains ----------------------------------------------------------------------------------


def test_text_lists_findings_behind_violations_and_ignored_ones(start_emulator, tmp_path):
    many = [finding(f"CVE-2025-{n:04d}", "HIGH", package=f"pkg{n}", fixed_by="2.0") for n in range(15)]
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, [*many, *VULNERABLE_FINDINGS])))
    body = "thresholds: {high: 0}\nignore:\n  - {id: CVE-2024-0001, reason: not reachable}\n"
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, body)))
    assert result.code == 1
    out = result.stdout
    assert "findings behind the violations:" in out
    assert "CVE-2025-0000" in out and "pkg0 1.0.0 -> 2.0" in out
    assert "CVE-2024-0002" in out and "(no fix yet)" in out
    assert "... and 7 more" in out  # 17 high findings, 10 listed
    assert "ignored (1):" in out and "CVE-2024-0001 in openssl: rule CVE-2024-0001" in out


# -- inconsistent answers and paging -----------------------------------------------------------------


def test_list_disagreeing_with_stats_fails_closed_even_for_a_counts_only_text_run(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS, anomaly="stats_mismatch")))
    result = run_cli(check_args(emu, VULN))
    assert result.code == 3
    assert "inconsistent answer" in result.stdout


def test_list_disagreeing_with_stats_fails_closed(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS, anomaly="stats_mismatch")))
    result = run_cli(check_args(emu, VULN, "--format", "json"))
    assert result.code == 3
    message = json.loads(result.stdout)["images"][0]["error"]["message"]
    assert "statistics say critical 2" in message and "listed critical 1" in message


def test_findings_are_paged_across_several_pages(start_emulator, tmp_path):
    many = [finding(f"CVE-2030-{n:05d}", "LOW", package=f"p{n}") for n in range(2500)]
    emu = start_emulator(scenario(image("crpbig", "big", DIGEST_C, many)))
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:big", "--format", "json"))
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["images"][0]["findings"]) == 2500
    assert len({f["cve"] for f in doc["images"][0]["findings"]}) == 2500
    assert emu.stats.calls["ScannerService.ListVulnerabilities"] == 3


# -- baseline -----------------------------------------------------------------------------------------


def baseline_scenario(prod_findings, **prod_scan):
    prod_scan.setdefault("last_result", {"status": "READY", "age_seconds": 86400})
    return scenario(
        image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS),
        image("crpprod", "prod", DIGEST_A, prod_findings, **prod_scan),
    )


BASELINE = f"thresholds: {{critical: 0, high: 0}}\nbaseline:\n  image: {PROD}\n"


def test_baseline_counts_only_new_findings(start_emulator, tmp_path):
    emu = start_emulator(baseline_scenario(VULNERABLE_FINDINGS[:2]))  # prod already has 0001 and 0002
    code, doc = json_run(emu, tmp_path, BASELINE)
    assert code == 1  # CVE-2024-0003 (high, curl) is new
    assert decisions(doc)[("CVE-2024-0001", "openssl")] == "in_baseline"
    assert decisions(doc)[("CVE-2024-0003", "curl")] == "counted"
    assert doc["baseline"]["ref"] == PROD and doc["baseline"]["origin"] == "last READY result"
    assert emu.stats.calls["ScannerService.Scan"] == 1  # only the gated image: the baseline was reused


def test_baseline_without_new_findings_passes(start_emulator, tmp_path):
    emu = start_emulator(baseline_scenario(VULNERABLE_FINDINGS))
    code, doc = json_run(emu, tmp_path, BASELINE)
    assert code == 0
    assert set(decisions(doc).values()) == {"in_baseline"}


def test_baseline_with_no_ready_result_is_scanned(start_emulator, tmp_path):
    emu = start_emulator(baseline_scenario(VULNERABLE_FINDINGS[:1], last_result=None))
    code, doc = json_run(emu, tmp_path, BASELINE)
    assert code == 1
    assert doc["baseline"]["origin"] == "scanned"
    assert emu.stats.scans_started == 2


def test_missing_baseline_fails_closed(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS)))
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, BASELINE)))
    assert result.code == 3
    assert f"baseline {PROD} could not be obtained" in result.stdout
    assert "baseline.missing: pass" in result.stdout


def test_missing_baseline_may_pass_when_said_explicitly(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS)))
    body = f"thresholds: {{critical: 5, high: 5}}\nbaseline:\n  image: {PROD}\n  missing: pass\n"
    result = run_cli(check_args(emu, VULN, "--policy", policy_file(tmp_path, body)))
    assert result.code == 0, result.output
    assert "judged without a baseline" in result.stdout


# -- reuse and joining ----------------------------------------------------------------------------------


def reuse_emulator(start_emulator, **scan):
    return start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS, **scan)))


REUSE = "thresholds: {critical: 0}\nreuse:\n  max_age: 24h\n"


def test_fresh_result_is_reused_without_a_scan(start_emulator, tmp_path):
    emu = reuse_emulator(start_emulator, last_result={"status": "READY", "age_seconds": 3600})
    code, doc = json_run(emu, tmp_path, REUSE)
    assert code == 1
    assert emu.stats.calls["ScannerService.Scan"] == 0
    image_doc = doc["images"][0]
    assert image_doc["origin"] == "reused"
    assert any("reused scan result" in w and "1h ago" in w for w in image_doc["warnings"])


def test_stale_result_is_not_reused(start_emulator, tmp_path):
    emu = reuse_emulator(start_emulator, last_result={"status": "READY", "age_seconds": 2 * 86400})
    code, doc = json_run(emu, tmp_path, REUSE)
    assert emu.stats.calls["ScannerService.Scan"] == 1
    assert doc["images"][0]["origin"] == "scanned"
    assert any("2d old, older than 24h" in w for w in doc["images"][0]["warnings"])


def test_result_dated_in_the_future_is_not_trusted(start_emulator, tmp_path):
    emu = reuse_emulator(start_emulator, last_result={"status": "READY", "age_seconds": -7200})
    code, doc = json_run(emu, tmp_path, REUSE)
    assert emu.stats.calls["ScannerService.Scan"] == 1
    assert any("in the future (clock skew?)" in w for w in doc["images"][0]["warnings"])


def test_last_result_in_error_is_not_reused(start_emulator, tmp_path):
    emu = reuse_emulator(start_emulator, last_result={"status": "ERROR", "age_seconds": 60})
    json_run(emu, tmp_path, REUSE)
    assert emu.stats.calls["ScannerService.Scan"] == 1


def test_running_scan_is_joined_not_started_again(start_emulator, tmp_path):
    # the joined scan's ScannerService.Get asks for 0.1 s polls: no wait of crgate's 1.8 s for it to end
    emu = reuse_emulator(start_emulator, running_scan={"remaining_seconds": 0.5}, poll_interval=0.1)
    code, doc = json_run(emu, tmp_path, "thresholds: {critical: 0}\n")
    assert code == 1
    assert emu.stats.calls["ScannerService.Scan"] == 0
    assert doc["images"][0]["origin"] == "joined"
    assert emu.stats.calls["ScannerService.Get"] >= 1


def test_a_joined_scan_that_times_out_is_reported_as_joined(start_emulator, tmp_path):
    emu = reuse_emulator(start_emulator, running_scan={"remaining_seconds": 30})
    policy = policy_file(tmp_path, "thresholds: {critical: 0}\n")
    result = run_cli(check_args(emu, VULN, "--policy", policy, "--format", "json", "--timeout", "1"))
    assert result.code == 4, result.output
    image = json.loads(result.stdout)["images"][0]
    assert image["error"]["kind"] == "timeout"
    assert image["origin"] == "joined"
    assert emu.stats.calls["ScannerService.Scan"] == 0


# -- offline evaluate ---------------------------------------------------------------------------------


def test_offline_evaluate_gives_the_live_verdict(start_emulator, tmp_path):
    emu = start_emulator(baseline_scenario(VULNERABLE_FINDINGS[:2]))
    body = BASELINE + "ignore:\n  - {id: CVE-2024-0003, reason: fix in progress}\n"
    policy = policy_file(tmp_path, body)
    saved = tmp_path / "result.json"
    live = run_cli(check_args(emu, VULN, "--policy", policy, "--output", f"json={saved}"))
    calls = sum(emu.stats.calls.values())
    offline = run_cli(["evaluate", str(saved), "--policy", policy, "--format", "json"])
    assert sum(emu.stats.calls.values()) == calls, "evaluate must not call the API"
    assert offline.code == live.code
    live_doc, offline_doc = json.loads(saved.read_text()), json.loads(offline.stdout)
    for key in ("verdict", "exit_code"):
        assert offline_doc[key] == live_doc[key]
    for live_image, offline_image in zip(live_doc["images"], offline_doc["images"], strict=True):
        assert offline_image["violations"] == live_image["violations"]
        assert offline_image["findings"] == live_image["findings"]


def test_offline_evaluate_tries_a_stricter_policy(emu, tmp_path):
    saved = tmp_path / "result.json"
    live = run_cli(
        check_args(
            emu, VULN, "--policy", policy_file(tmp_path, "thresholds: {critical: 5}\n"), "--output", f"json={saved}"
        )
    )
    assert live.code == 0
    stricter = tmp_path / "strict.yaml"
    stricter.write_text("version: 1\nthresholds: {total: 3}\n")
    offline = run_cli(["evaluate", str(saved), "--policy", str(stricter)])
    assert offline.code == 1
    assert "total 7 > 3" in offline.stdout


def test_offline_evaluate_tries_max_and_only_fixed_and_names_them_as_loosenings(emu, tmp_path):
    """Trying a policy offline includes the command-line limits check takes (issue 18): --max and
    --only-fixed judge the saved results as they would a live run, and say they loosened the policy."""
    saved = tmp_path / "result.json"
    policy = policy_file(tmp_path, "thresholds: {critical: 0, high: 0}\n")
    live = run_cli(check_args(emu, VULN, "--policy", policy, "--output", f"json={saved}"))
    assert live.code == 1, live.output
    raised = run_cli(["evaluate", str(saved), "--policy", policy, "--max", "critical=5", "--max", "high=5"])
    assert raised.code == 0, raised.output
    assert "  - limit-raised (--max): critical <= 5 instead of the policy's critical <= 0" in raised.stderr
    fixed = run_cli(["evaluate", str(saved), "--policy", policy, "--only-fixed", "--format", "json"])
    doc = json.loads(fixed.stdout)
    assert ("only-fixed", "flag") in [(item["kind"], item["source"]) for item in doc["provenance"]["loosenings"]]
    counted = {f["cve"] for f in doc["images"][0]["findings"] if f["decision"] == "counted"}
    assert "CVE-2024-0002" not in counted  # zlib has no fix: not counted under --only-fixed
    stricter = run_cli(["evaluate", str(saved), "--policy", policy, "--max", "critical=0"])
    assert stricter.code == 1 and "limit-raised" not in stricter.stderr
    bad = run_cli(["evaluate", str(saved), "--max", "severe=1"])
    assert bad.code == 2 and "severe" in bad.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"schema_version": 2}', "schema_version: expected 1"),
        ('{"schema_version": 1}', "$.images: is missing"),
        ('{"schema_version": 1, "images": [{"ref": "x"}]}', "$.images[0].image_id: is missing"),
    ],
)
def test_offline_evaluate_rejects_bad_reports(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    result = run_cli(["evaluate", str(path)])
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_offline_evaluate_rejects_edited_findings(emu, tmp_path):
    saved = tmp_path / "result.json"
    run_cli(check_args(emu, VULN, "--output", f"json={saved}"))
    doc = json.loads(saved.read_text())
    doc["images"][0]["findings"] = doc["images"][0]["findings"][1:]  # drop the critical one
    saved.write_text(json.dumps(doc))
    result = run_cli(["evaluate", str(saved)])
    assert result.code == 2
    assert "do not add up" in result.stderr
