"""Reusing the last result (ScannerService.GetLast): only a fresh, ready result of the same image, with
a trustworthy scan time, is reused.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_pb2, scanner_service_pb2
from hostile import (
    IMAGE_ID,
    READY,
    RUNNING,
    SCAN_ID,
    SEV,
    C,
    answer,
    assert_fails_closed,
    check,
    error_of,
    fail,
    now_ts,
    policy_file,
    scan_result,
    stats,
    vuln,
)


@pytest.fixture
def reuse_policy(tmp_path: Any) -> str:
    return policy_file(tmp_path, "thresholds: {critical: 0, high: 0}\nreuse: {max_age: 24h}\n")


def test_fresh_last_result_is_reused(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=now_ts(-60)))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "reused"
    assert server.calls["ScannerService.Scan"] == 0
    assert server.requests["ScannerService.ListVulnerabilities"][0].scan_result_id == "crplast"


def test_last_result_of_another_image_is_malformed(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", image_id="crpother"))
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize(
    ("scanned_at", "why"),
    [
        (timestamp_pb2.Timestamp(seconds=253402300799), "in the future"),
        (now_ts(3600), "in the future"),
        (timestamp_pb2.Timestamp(seconds=-62135596800), "older than 24h"),
        (now_ts(-25 * 3600), "older than 24h"),
    ],
    ids=["year-9999", "an-hour-ahead", "year-1", "25h-old"],
)
def test_last_result_with_an_untrustworthy_age_is_not_reused(server, reuse_policy, scanned_at, why):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=scanned_at))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    image = result.doc["images"][0]
    assert image["origin"] == "scanned" and image["scan_result_id"] == SCAN_ID
    assert any(why in warning for warning in image["warnings"]), image["warnings"]
    assert server.calls["ScannerService.Scan"] == 1


def test_last_result_without_scan_time_is_not_reused(server, reuse_policy):
    message = scanner_pb2.ScanResult(id="crplast", image_id=IMAGE_ID, status=READY, vulnerabilities=stats())
    server.handlers["ScannerService.GetLast"] = answer(message)
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "scanned"


def test_last_result_with_an_invalid_scan_time_fails_closed(server, reuse_policy):
    bad = timestamp_pb2.Timestamp(seconds=10**12)
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=bad))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 3, result.output
    assert "scanned_at is not a valid timestamp" in error_of(result)["message"]


@pytest.mark.parametrize("status", [RUNNING, scanner_pb2.ScanResult.ERROR, 0, 77])
def test_last_result_that_is_not_ready_means_a_new_scan(server, reuse_policy, status):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", status=status))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Scan"] == 1


def test_reused_result_with_findings_its_statistics_deny(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=now_ts(-60)))
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=[vuln(severity=SEV.CRITICAL)])
    )
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "inconsistent answer for scan result crplast", "malformed")


def test_reused_result_without_an_id_is_malformed(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("", scanned_at=now_ts(-60)))
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "no id", "malformed")


@pytest.mark.parametrize("code", [C.PERMISSION_DENIED, C.UNIMPLEMENTED, C.DATA_LOSS])
def test_get_last_failing_stops_before_any_scan(server, reuse_policy, code):
    server.handlers["ScannerService.GetLast"] = fail(code, "no last")
    result = check(server, "--policy", reuse_policy)
    error = assert_fails_closed(result, 3, "could not get the last scan result of image crpimg1: no last")
    assert error["code"] == code.name
    assert server.calls["ScannerService.Scan"] == 0
