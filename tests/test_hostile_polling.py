"""Polling stays bounded whatever the server says: operations never done, insane poll-interval
headers, operations that vanish, hard and transient errors, and Scan retries with one idempotency key.
"""

from __future__ import annotations

import pytest

from hostile import (
    C,
    HostileServer,
    answer,
    assert_fails_closed,
    check,
    error_of,
    fail,
    operation,
    quick,
    sequence,
    with_headers,
)


@pytest.fixture
def never_done(server: HostileServer) -> HostileServer:
    server.handlers["OperationService.Get"] = answer(operation())
    return server


def test_never_done_default_polling_is_bounded(never_done):
    result = check(never_done, timeout=1.2)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert 1 <= never_done.calls["OperationService.Get"] <= 8
    assert never_done.calls["ScannerService.Scan"] == 1


@pytest.mark.parametrize(
    "hint",
    ["0", "-0", "-1", "1e308", "inf", "-inf", "nan", "NaN", "abc", "", " ", "1e-300", "0.0000001", "1_0", "0x10"],
)
def test_poll_interval_header_cannot_make_polling_insane(never_done, hint):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", hint),), answer(operation())
    )
    result = check(never_done, timeout=1.2)
    assert_fails_closed(result, 4, "was still running", "timeout")
    # never more often than every 0.1 s, and never a sleep past the deadline
    assert 1 <= never_done.calls["OperationService.Get"] <= 14


def test_poll_interval_header_of_an_hour_does_not_outlive_the_deadline(never_done):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", "3600"),), answer(operation())
    )
    result = check(never_done, timeout=1.0)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert never_done.calls["OperationService.Get"] <= 8


def test_poll_interval_header_of_a_minute_is_capped_by_the_deadline(never_done):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", "60"),), answer(operation())
    )
    result = check(never_done, timeout=1.0)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert never_done.calls["OperationService.Get"] <= 2


def test_operation_not_found_forever_gives_up_after_a_few_polls(server):
    # The Scan answer's poll interval holds while Get finds nothing: four polls 0.1 s apart, not 1.8 s.
    server.handlers["ScannerService.Scan"] = quick(answer(operation()))
    server.handlers["OperationService.Get"] = fail(C.NOT_FOUND, "no such operation")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not follow scan operation crpop1")
    assert error["code"] == "NOT_FOUND"
    assert server.calls["OperationService.Get"] == 4


def test_operation_disappearing_after_it_was_seen_is_exit_3(server):
    server.handlers["OperationService.Get"] = sequence(quick(answer(operation())), fail(C.NOT_FOUND, "gone"))
    result = check(server)
    assert_fails_closed(result, 3, "could not follow scan operation crpop1 of image crpimg1: gone")
    assert server.calls["OperationService.Get"] == 2


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.INTERNAL])
def test_operation_get_failing_transiently_forever_is_bounded(server, code):
    server.handlers["OperationService.Get"] = fail(code, "poll broken")
    result = check(server, timeout=2)
    assert result.code in (3, 4), result.output
    assert error_of(result)["message"]
    assert server.calls["OperationService.Get"] <= 8


@pytest.mark.parametrize(
    "code",
    [C.UNIMPLEMENTED, C.UNKNOWN, C.DATA_LOSS, C.ABORTED, C.OUT_OF_RANGE, C.FAILED_PRECONDITION, C.CANCELLED],
)
def test_operation_get_hard_errors_stop_polling_at_once(server, code):
    server.handlers["OperationService.Get"] = sequence(quick(answer(operation())), fail(code, "poll refused"))
    result = check(server)
    error = assert_fails_closed(result, 3, "poll refused")
    assert error["code"] == code.name
    assert server.calls["OperationService.Get"] == 2


@pytest.mark.parametrize(
    "code",
    [
        C.UNIMPLEMENTED,
        C.UNKNOWN,
        C.DATA_LOSS,
        C.ABORTED,
        C.OUT_OF_RANGE,
        C.FAILED_PRECONDITION,
        C.PERMISSION_DENIED,
        C.NOT_FOUND,
        C.INVALID_ARGUMENT,
    ],
)
def test_scan_hard_errors_are_exit_3_and_never_retried(server, code):
    server.handlers["ScannerService.Scan"] = fail(code, "scan refused")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not start a scan of image crpimg1: scan refused")
    assert error["code"] == code.name and error["method"] == "ScannerService.Scan"
    assert server.calls["ScannerService.Scan"] == 1


def test_a_refused_scan_is_asked_again_with_a_new_key(server):
    """A quota refusal started nothing: the attempt after waiting for a slot is a new call, a new key."""
    server.handlers["ScannerService.Scan"] = sequence(fail(C.RESOURCE_EXHAUSTED), answer(operation()))
    result = check(server, timeout=15)
    assert result.code == 0, result.output
    keys = [m.get("idempotency-key") for m in server.metadata["ScannerService.Scan"]]
    assert len(keys) == 2 and all(keys) and keys[0] != keys[1]


def test_a_scan_that_may_have_started_keeps_its_key_even_through_a_refusal(server):
    """UNAVAILABLE may have started a scan (its answer lost): its retry repeats the key, and so does every
    later attempt, also the one after a quota refusal, so the server returns that scan, never a second."""
    server.handlers["ScannerService.Scan"] = sequence(
        fail(C.UNAVAILABLE), fail(C.RESOURCE_EXHAUSTED), answer(operation())
    )
    result = check(server, timeout=15)
    assert result.code == 0, result.output
    keys = [m.get("idempotency-key") for m in server.metadata["ScannerService.Scan"]]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


def test_scan_quota_exhausted_forever_waits_until_the_timeout_and_is_bounded(server):
    """Issue 13: a quota refusal is waited out, never a failure by itself; --timeout ends it (exit 4)."""
    server.handlers["ScannerService.Scan"] = fail(C.RESOURCE_EXHAUSTED, "quota")
    result = check(server, timeout=3)
    error = assert_fails_closed(result, 4, "waited", "timeout")
    assert "for a scan slot" in error["message"] and "quota" in error["message"]
    assert 2 <= server.calls["ScannerService.Scan"] <= 5  # backoff from 1 s: a handful of calls, not a storm


def test_error_details_and_trailing_request_ids_are_sanitized_and_bounded(server):
    # kept under gRPC's 8 KiB soft limit on metadata (the status message travels in the trailers)
    trailing = (("x-request-id", "R" * 1500), ("x-server-trace-id", "T" * 1500))
    server.handlers["ScannerService.Scan"] = fail(C.FAILED_PRECONDITION, "\x1b]0;owned\x07" + "D" * 2500, trailing)
    result = check(server)
    error = assert_fails_closed(result, 3, "\\x1b]0;owned\\x07")
    assert len(error["message"]) < 4000
    assert [rid[:3] for rid in error["request_ids"][1:]] == ["RRR", "TTT"]
    assert all(len(rid) <= 128 for rid in error["request_ids"]), "request ids from the server are bounded"
    assert server.calls["ScannerService.Scan"] == 1
