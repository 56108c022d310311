"""Hostile ListVulnerabilities answers: findings that contradict the statistics, unknown severities,
pages that never end or cycle, failures mid-way, and hostile finding text.
"""

from __future__ import annotations

import json

import pytest

from hostile import (
    SCAN_ID,
    SEV,
    C,
    answer,
    assert_fails_closed,
    check,
    fail,
    policy_file,
    sequence,
    vuln,
    vulns_page,
    with_stats,
)


def test_zero_statistics_but_listed_findings_is_inconsistent(server):
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=SEV.LOW)))
    result = check(server)
    error = assert_fails_closed(result, 3, "inconsistent answer for scan result crpscan1", "malformed")
    assert "low 0" in error["message"] and "low 1" in error["message"]


def test_statistics_but_no_listed_findings_is_inconsistent(server):
    with_stats(server, critical=2)
    result = check(server, fmt="text")
    assert result.code == 3, result.output
    assert "inconsistent answer" in result.stdout


def test_findings_of_the_wrong_severity_are_inconsistent(server):
    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=SEV.LOW)))
    result = check(server)
    assert_fails_closed(result, 3, "inconsistent answer", "malformed")


@pytest.mark.parametrize("severity", [0, 7, 99, -5])
def test_finding_with_an_unknown_severity_is_malformed(server, severity):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=severity)))
    result = check(server)
    assert_fails_closed(result, 3, f"severity {severity} is not one of CRITICAL", "malformed")


def test_finding_without_a_vulnerability_id_is_malformed(server):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(cve="")))
    result = check(server)
    assert_fails_closed(result, 3, "it has no vulnerability id", "malformed")


def test_finding_pages_that_never_end_are_bounded(server):
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(token=f"v{n}")
    result = check(server, timeout=30)
    assert_fails_closed(result, 3, "returned more than 1000 pages for scan result crpscan1", "malformed")
    assert server.calls["ScannerService.ListVulnerabilities"] == 1000


def test_finding_page_tokens_that_cycle(server):
    tokens = ["x", "y"]
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(
        token=tokens[(n - 1) % 2]
    )
    result = check(server)
    assert_fails_closed(result, 3, "repeated page token 'x'", "malformed")
    assert server.calls["ScannerService.ListVulnerabilities"] == 3


def test_finding_pages_are_requested_with_the_tokens_given(server):
    with_stats(server, high=2)
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(vulns_page(vuln("CVE-1"), token="n2")), answer(vulns_page(vuln("CVE-2")))
    )
    result = check(server, fmt="text")
    assert result.code == 1, result.output
    tokens = [r.page_token for r in server.requests["ScannerService.ListVulnerabilities"]]
    assert tokens == ["", "n2"]
    assert all(r.scan_result_id == SCAN_ID for r in server.requests["ScannerService.ListVulnerabilities"])


def test_a_page_repeated_under_a_new_token_is_not_taken_as_new_findings(server, tmp_path):
    policy = policy_file(
        tmp_path, "thresholds: {critical: 0, high: 0}\nignore:\n  - id: CVE-2024-0001\n    reason: not reachable\n"
    )
    with_stats(server, high=2)
    page = vulns_page(vuln("CVE-2024-0001", fixed_by="1.1"), token="next")
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(page), answer(vulns_page(vuln("CVE-2024-0001", fixed_by="1.1")))
    )
    result = check(server, "--policy", policy)
    assert result.code == 3, result.output


def test_listing_stops_once_it_exceeds_the_statistics(server):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(
        vuln(f"CVE-{n}"), token=f"v{n}"
    )
    result = check(server, timeout=30)
    assert result.code == 3, result.output
    assert server.calls["ScannerService.ListVulnerabilities"] <= 2


@pytest.mark.parametrize("code", [C.DATA_LOSS, C.UNIMPLEMENTED, C.OUT_OF_RANGE, C.ABORTED])
def test_listing_findings_failing_mid_way_is_exit_3(server, code):
    with_stats(server, high=2)
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(vulns_page(vuln("CVE-1"), token="n2")), fail(code, "page lost")
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list the findings of scan result crpscan1: page lost")
    assert error["code"] == code.name
    assert server.calls["ScannerService.ListVulnerabilities"] == 2


def test_hostile_finding_text_is_lossless_in_json_and_inert_in_text(server):
    """Issue 10: machine formats keep what the scanner sent (escaped by JSON, never raw); the human
    report shows it visibly and inertly. Every field is bounded."""
    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        vulns_page(
            vuln(
                "CVE-\x1b[31m1",
                SEV.CRITICAL,
                package="\x1b]8;;http://evil\x07pkg\n",
                fixed_by="\x9b2J" + "9" * 5000,
                link="\x00\x7f",
            )
        )
    )
    result = check(server)
    assert result.code == 1, result.output
    found = result.doc["images"][0]["findings"][0]
    assert found["cve"] == "CVE-\x1b[31m1" and found["package"] == "\x1b]8;;http://evil\x07pkg\n"
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout  # JSON writes them as \u escapes
    assert len(found["fixed_by"]) <= 1003
    text = check(server, fmt="text")
    assert "CVE-\\x1b[31m1" in text.stdout and "\x1b" not in text.output


def test_the_reports_stay_well_formed_with_hostile_text(server):
    import xml.etree.ElementTree as ET

    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        vulns_page(vuln("CVE-1\ufffe\uffff\ud7ff", SEV.CRITICAL, package="p<&>\"'", fixed_by="]]>"))
    )
    for fmt in ("junit", "sarif", "gitlab", "markdown"):
        result = check(server, fmt=fmt)
        assert result.code == 1, result.output
        if fmt == "junit":
            ET.fromstring(result.stdout.encode())
        elif fmt in ("sarif", "gitlab"):
            json.loads(result.stdout)
