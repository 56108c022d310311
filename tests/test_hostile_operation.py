"""Hostile ScannerService.Scan answers and scan operations: results of another scan or image, ids
that change, operations that are done with nothing, errors, undecodable or mistyped payloads, and
scan results that are not READY or carry impossible statistics.
"""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_pb2
from hostile import (
    IMAGE_ID,
    INT64_MAX,
    READY,
    RUNNING,
    SCAN_ID,
    answer,
    assert_fails_closed,
    check,
    done_op,
    img,
    operation,
    quick,
    scan_result,
    sequence,
    stats,
)


def test_scan_done_at_once_with_the_result_of_another_scan(server):
    server.handlers["ScannerService.Scan"] = answer(done_op(response=scan_result(scan_id="crpother")))
    result = check(server)
    assert_fails_closed(result, 3, "response is scan result crpother, but the operation is for crpscan1", "malformed")
    assert server.calls["OperationService.Get"] == 0
    assert server.calls["ScannerService.ListVulnerabilities"] == 0


def test_scan_done_at_once_with_the_result_of_another_image(server):
    server.handlers["ScannerService.Scan"] = answer(done_op(response=scan_result(image_id="crpother")))
    result = check(server)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")


def test_result_for_no_image_at_all(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(image_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "result is for image '(none)'", "malformed")


def test_ready_result_without_any_id_is_malformed(server):
    server.handlers["ScannerService.Scan"] = answer(operation(scan_id=None))
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None, response=scan_result(scan_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "no id", "malformed")


def test_result_id_from_the_response_when_metadata_is_absent(server):
    server.handlers["ScannerService.Scan"] = answer(operation(scan_id=None))
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["scan_result_id"] == SCAN_ID
    assert server.requests["ScannerService.ListVulnerabilities"][0].scan_result_id == SCAN_ID


def test_operation_done_at_once_is_not_polled(server):
    server.handlers["ScannerService.Scan"] = answer(done_op())
    server.handlers["OperationService.Get"] = answer(operation())  # "done" flipping back to false
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["OperationService.Get"] == 0


def test_operation_id_changes_between_polls(server):
    server.handlers["OperationService.Get"] = sequence(quick(answer(operation())), answer(done_op(op_id="crpop2")))
    result = check(server)
    assert_fails_closed(result, 3, "asked for operation crpop1 but got operation crpop2", "malformed")
    assert server.calls["OperationService.Get"] == 2


def test_operation_answer_for_another_operation_on_first_poll(server):
    server.handlers["OperationService.Get"] = answer(done_op(op_id="crpop2"))
    result = check(server)
    assert_fails_closed(result, 3, "asked for operation crpop1 but got operation crpop2", "malformed")


def test_scan_result_id_changes_between_polls(server):
    server.handlers["OperationService.Get"] = sequence(
        quick(answer(operation(scan_id="crpscan1"))),
        quick(answer(operation(scan_id="crpscan2"))),
        answer(done_op(scan_id="crpscan2", response=scan_result(scan_id="crpscan2"))),
    )
    result = check(server)
    assert_fails_closed(result, 3, "changed its scan result from crpscan1 to crpscan2", "malformed")
    assert server.calls["OperationService.Get"] == 2


def test_metadata_vanishes_and_the_result_is_another_scan(server):
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None, response=scan_result(scan_id="crpscan2")))
    result = check(server)
    assert_fails_closed(result, 3, "changed its scan result from crpscan1 to crpscan2", "malformed")


def test_operation_without_id(server):
    server.handlers["ScannerService.Scan"] = answer(operation(op_id=""))
    result = check(server)
    assert_fails_closed(result, 3, "the operation has no id", "malformed")
    assert server.calls["OperationService.Get"] == 0


def test_not_done_operation_carrying_a_response(server):
    server.handlers["OperationService.Get"] = answer(operation(response=scan_result()))
    result = check(server)
    assert_fails_closed(result, 3, "it has a response but is not done", "malformed")


def test_done_operation_with_neither_error_nor_response(server):
    server.handlers["ScannerService.Scan"] = answer(operation(done=True))
    result = check(server)
    assert_fails_closed(result, 3, "neither an error nor a response", "malformed")


@pytest.mark.parametrize("with_response", [False, True], ids=["alone", "with-ready-response"])
def test_operation_error_with_code_ok_is_still_an_error(server, with_response):
    response = scan_result() if with_response else None
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, response=response, error=status_pb2.Status(code=0, message="all good, honestly"))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "all good, honestly", "scan")
    assert error["code"] == "OK"


def test_operation_error_with_an_unknown_code(server):
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, error=status_pb2.Status(code=4242, message=""))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "failed: no message")
    assert error["code"] == "code 4242"


def test_operation_error_message_with_escapes_and_huge_length(server):
    message = "\x1b[31mred\x1b[0m\x07\x9b2J\r\n" + "A" * 200_000
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, error=status_pb2.Status(code=13, message=message))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "\\x1b[31mred\\x1b[0m")
    assert len(error["message"]) < 2000
    assert len(result.output) < 20_000


def test_response_claiming_scan_result_with_garbage_bytes(server):
    bogus = any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult", value=b"\xff\xff")
    server.handlers["OperationService.Get"] = answer(done_op(response=bogus))
    result = check(server)
    assert_fails_closed(result, 3, "response could not be decoded", "malformed")


def test_response_claiming_scan_result_with_empty_bytes(server):
    empty = any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult", value=b"")
    server.handlers["OperationService.Get"] = answer(done_op(response=empty))
    result = check(server)
    assert_fails_closed(result, 3, "status is STATUS_UNSPECIFIED, expected READY", "malformed")


def test_response_of_another_type(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=img()))
    result = check(server)
    assert_fails_closed(result, 3, "response is a yandex.cloud.containerregistry.v1.Image, expected ScanResult")


def test_response_with_no_type_url(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=any_pb2.Any(value=b"\x08\x02")))
    result = check(server)
    assert_fails_closed(result, 3, "message of no type", "malformed")


def test_metadata_claiming_scan_metadata_with_garbage_bytes(server):
    op = operation(scan_id=None)
    op.metadata.CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata", value=b"\xff")
    )
    server.handlers["ScannerService.Scan"] = answer(op)
    result = check(server)
    assert_fails_closed(result, 3, "metadata could not be decoded", "malformed")


def test_metadata_of_another_type(server):
    op = operation(scan_id=None)
    op.metadata.Pack(scan_result())
    server.handlers["OperationService.Get"] = answer(op)
    result = check(server)
    assert_fails_closed(result, 3, "metadata is a yandex.cloud.containerregistry.v1.ScanResult, expected ScanMetadata")


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        (0, "status is STATUS_UNSPECIFIED, expected READY"),
        (RUNNING, "status is RUNNING, expected READY"),
        (99, "status is 99, expected READY"),
        (-1, "status is -1, expected READY"),
    ],
)
def test_done_operation_with_a_result_that_is_not_ready(server, status, fragment):
    message = scanner_pb2.ScanResult(id=SCAN_ID, image_id=IMAGE_ID, status=status, vulnerabilities=stats())
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server)
    assert_fails_closed(result, 3, fragment, "malformed")


def test_status_error_result(server):
    message = scan_result(status=scanner_pb2.ScanResult.ERROR)
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server)
    error = assert_fails_closed(result, 3, "status ERROR", "scan")
    assert error["code"] == "ERROR"


def test_ready_result_without_statistics_is_judged_by_its_listed_findings(server):
    """Issue 13: not exit 3 any more; the listing (always fetched) is counted instead, with a warning."""
    message = scanner_pb2.ScanResult(id=SCAN_ID, image_id=IMAGE_ID, status=READY)
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server, fmt="text")
    assert result.code == 0, result.output
    assert "carried no vulnerability statistics; judged by its 0 listed findings" in result.stdout


@pytest.mark.parametrize("field", ["critical", "high", "medium", "low", "negligible", "undefined"])
def test_negative_count_in_any_severity(server, field):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(**{field: -1}))))
    result = check(server, fmt="text")
    assert result.code == 3, result.output
    assert f"negative vulnerability count ({field}=-1)" in result.stdout


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(253402300800, 0), (-62135596801, 0), (0, 1_000_000_000), (0, -1)], ids=str
)
def test_invalid_scanned_at(server, seconds, nanos):
    bad = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(scanned_at=bad)))
    result = check(server)
    assert_fails_closed(result, 3, "scanned_at is not a valid timestamp", "malformed")


def test_extreme_but_valid_scanned_at_is_reported(server):
    first = timestamp_pb2.Timestamp(seconds=-62135596800)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(scanned_at=first)))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["scanned_at"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_int64_max_counts_cannot_be_listed_so_the_answer_is_inconsistent(server, fmt):
    huge = stats(critical=INT64_MAX, high=INT64_MAX, medium=INT64_MAX, low=INT64_MAX, negligible=INT64_MAX)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=huge)))
    result = check(server, fmt=fmt)
    assert result.code == 3, result.output
    assert "inconsistent answer for scan result crpscan1" in result.output
    assert f"(total {5 * INT64_MAX})" in result.output  # the total is exact, not wrapped at 64 bits
    assert server.calls["ScannerService.ListVulnerabilities"] == 1
