"""The baseline (another image's last result) fails closed when the server answers wrongly about it."""

from __future__ import annotations

from typing import Any

import pytest

from hostile import (
    DIGEST_B,
    IMAGE_ID,
    SEV,
    C,
    HostileServer,
    answer,
    assert_fails_closed,
    check,
    error_of,
    images_page,
    img,
    policy_file,
    scan_result,
    stats,
    vuln,
    vulns_page,
    with_stats,
)

BASE_ID = "crpbase1"


@pytest.fixture
def baseline(server: HostileServer, tmp_path: Any) -> tuple[HostileServer, str]:
    """Target crpimg1 (tag) has one CRITICAL finding; the baseline crpbase1 (production) has the same one."""
    server.registry.tags["production"] = DIGEST_B
    server.handlers["ImageService.List"] = answer(
        images_page(img(), img(BASE_ID, tags=("production",), digest=DIGEST_B))
    )
    with_stats(server, critical=1)
    server.handlers["ScannerService.GetLast"] = lambda request, context, n: (
        scan_result("crpbasescan", BASE_ID, vulns=stats(critical=1))
        if request.image_id == BASE_ID
        else context.abort(C.NOT_FOUND, "none")
    )
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL)))
    policy = policy_file(
        tmp_path, "thresholds: {critical: 0, high: 0}\nbaseline:\n  image: cr.yandex/crptest/app:production\n"
    )
    return server, policy


def test_baseline_sane(baseline):
    srv, policy = baseline
    result = check(srv, "--policy", policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["findings"][0]["decision"] == "in_baseline"
    assert result.doc["baseline"]["scan_result_id"] == "crpbasescan"
    assert srv.calls["ScannerService.Scan"] == 1  # the target only


def test_baseline_last_result_for_the_target_image_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ScannerService.GetLast"] = answer(scan_result("crpbasescan", IMAGE_ID, vulns=stats(critical=1)))
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "baseline cr.yandex/crptest/app:production could not be obtained")
    assert "result is for image 'crpimg1', but image crpbase1 was scanned" in error_of(result)["message"]


def test_baseline_listing_inconsistent_with_its_statistics_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: (
        vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL), vuln("CVE-2024-0002", SEV.CRITICAL))
        if request.scan_result_id == "crpbasescan"
        else vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL))
    )
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "inconsistent answer for scan result crpbasescan")


def test_baseline_ambiguous_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ImageService.List"] = answer(
        images_page(img(), img(BASE_ID, tags=("production",)), img("crpbase2", tags=("production",)))
    )
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "ambiguous")


def test_hostile_baseline_with_missing_pass_is_judged_without_it_never_passed(baseline, tmp_path):
    srv, _ = baseline
    policy = policy_file(
        tmp_path,
        "thresholds: {critical: 0}\nbaseline:\n  image: cr.yandex/crptest/app:production\n  missing: pass\n",
    )
    srv.handlers["ScannerService.GetLast"] = answer(scan_result("crpbasescan", "crpother", vulns=stats(critical=1)))
    result = check(srv, "--policy", policy)
    assert result.code == 1, result.output
    assert result.doc["images"][0]["findings"][0]["decision"] == "counted"
    assert any("judged without a baseline" in w for w in result.doc["images"][0]["warnings"])
