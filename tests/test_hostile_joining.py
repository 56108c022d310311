"""Joining a scan that is already RUNNING (ScannerService.List, then ScannerService.Get): only the
right image's running scan is joined, and a joined scan that turns hostile fails closed.
"""

from __future__ import annotations

import pytest

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_pb2
from hostile import (
    IMAGE_ID,
    READY,
    RUNNING,
    C,
    HostileServer,
    answer,
    assert_fails_closed,
    check,
    fail,
    quick,
    running_list,
    scan_result,
    sequence,
    with_headers,
)


def test_running_scan_of_another_image_is_not_joined(server):
    server.handlers["ScannerService.List"] = answer(running_list(scan_result("crpforeign", "crpother", RUNNING)))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "scanned"
    assert server.calls["ScannerService.Get"] == 0 and server.calls["ScannerService.Scan"] == 1
    assert server.requests["ScannerService.List"][0].filter == 'status="RUNNING"'


def test_listed_scan_that_is_not_running_or_has_no_id_is_not_joined(server):
    server.handlers["ScannerService.List"] = answer(
        running_list(scan_result("crpready", IMAGE_ID, READY), scan_result("", IMAGE_ID, RUNNING))
    )
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Get"] == 0 and server.calls["ScannerService.Scan"] == 1


@pytest.fixture
def joined(server: HostileServer) -> HostileServer:
    server.handlers["ScannerService.List"] = answer(running_list(scan_result("crpjoin", IMAGE_ID, RUNNING)))
    server.handlers["ScannerService.Get"] = answer(scan_result("crpjoin"))
    return server


def test_joined_scan_passes_without_a_new_scan(joined):
    result = check(joined)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "joined"
    assert result.doc["images"][0]["scan_result_id"] == "crpjoin"
    assert joined.calls["ScannerService.Scan"] == 0
    assert joined.requests["ScannerService.Get"][0].scan_result_id == "crpjoin"


def test_joined_scan_turning_into_a_result_for_another_image(joined):
    joined.handlers["ScannerService.Get"] = sequence(
        quick(answer(scan_result("crpjoin", status=RUNNING))), answer(scan_result("crpjoin", image_id="crpother"))
    )
    result = check(joined)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")
    assert joined.calls["ScannerService.Scan"] == 0
    assert joined.calls["ScannerService.Get"] == 2


def test_joined_scan_running_for_another_image(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpjoin", image_id="crpother", status=RUNNING))
    result = check(joined)
    assert_fails_closed(result, 3, "status is RUNNING, expected READY", "malformed")
    assert joined.calls["ScannerService.Get"] == 1


def test_joined_scan_becoming_another_scan_result(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpswapped"))
    result = check(joined)
    assert_fails_closed(result, 3, "response is scan result crpswapped, but the operation is for crpjoin", "malformed")


def test_joined_scan_ending_in_error(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpjoin", status=scanner_pb2.ScanResult.ERROR))
    result = check(joined)
    assert_fails_closed(result, 3, "status ERROR", "scan")


def test_joined_scan_that_never_finishes_is_exit_4_and_bounded(joined):
    joined.handlers["ScannerService.Get"] = with_headers(
        (("x-operation-poll-interval", "0"),), answer(scan_result("crpjoin", status=RUNNING))
    )
    result = check(joined, timeout=1.0)
    error = assert_fails_closed(result, 4, "scan crpjoin was still running", "timeout")
    assert "crpjoin" in error["message"]
    assert 1 <= joined.calls["ScannerService.Get"] <= 8
    assert joined.calls["ScannerService.Scan"] == 0


def test_joined_scan_vanishing(joined):
    joined.handlers["ScannerService.Get"] = fail(C.NOT_FOUND, "scan result gone")
    result = check(joined)
    assert_fails_closed(result, 3, "could not follow running scan crpjoin of image crpimg1: scan result gone")
    assert joined.calls["ScannerService.Get"] == 1


@pytest.mark.parametrize("code", [C.UNIMPLEMENTED, C.INVALID_ARGUMENT])
def test_a_server_that_cannot_list_running_scans_gets_a_normal_scan_and_a_warning(server, code):
    """Issue 13: looking for a RUNNING scan to join is an optimisation, not a precondition."""
    server.handlers["ScannerService.List"] = fail(code, "no filters here")
    result = check(server)
    assert result.code == 0, result.output
    warnings = result.doc["images"][0]["warnings"]
    assert any("could not look for a running scan" in w and code.name in w for w in warnings), warnings
    assert server.calls["ScannerService.Scan"] == 1


@pytest.mark.parametrize("code", [C.PERMISSION_DENIED, C.DATA_LOSS])
def test_listing_running_scans_failing_stops_before_any_scan(server, code):
    server.handlers["ScannerService.List"] = fail(code, "no listing")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list running scans of image crpimg1")
    assert error["code"] == code.name
    assert server.calls["ScannerService.Scan"] == 0
