"""Servers that stall: past the per-call deadline (retried with the same key), past the whole
``--timeout`` (exit 4), and command-line values that would unbound the loops.
"""

from __future__ import annotations

import pytest
from google.rpc import status_pb2

from conftest import run_cli
from hostile import (
    REF,
    answer,
    assert_fails_closed,
    check,
    done_op,
    operation,
    policy_file,
    scan_result,
    sequence,
    sleeping,
)

# -- per-call deadlines (a server slower than the per-call deadline, shorter than --timeout) ---------


@pytest.fixture
def short_calls(monkeypatch: pytest.MonkeyPatch) -> float:
    """Shrink the 20 s per-call deadline to 0.3 s so stalls beyond it stay fast to test."""
    from crgate import timing

    per_call = 0.3
    monkeypatch.setattr(
        timing.Deadline, "call_timeout", lambda self, cap: max(0.001, min(per_call, cap, self.remaining()))
    )
    return per_call


def test_scan_stalled_past_the_per_call_deadline_is_retried_with_the_same_key(server, short_calls):
    server.handlers["ScannerService.Scan"] = sequence(sleeping(1.0, answer(operation())), answer(operation()))
    result = check(server)
    assert result.code == 0, result.output
    keys = [m.get("idempotency-key") for m in server.metadata["ScannerService.Scan"]]
    assert len(keys) == 2 and len(set(keys)) == 1


def test_operation_get_always_stalling_is_bounded(server, short_calls):
    server.handlers["OperationService.Get"] = sleeping(5, answer(done_op()))
    result = check(server, timeout=2.5)
    assert result.code in (3, 4), result.output
    assert "DEADLINE_EXCEEDED" in result.output or "timed out" in result.output
    assert server.calls["OperationService.Get"] <= 8


# -- a server slower than the whole --timeout: exit 4 -----------------------------------------------


@pytest.mark.parametrize(
    "method",
    [
        "ImageService.List",
        "ScannerService.List",
        "ScannerService.Scan",
        "OperationService.Get",
        "ScannerService.ListVulnerabilities",
    ],
)
def test_server_stalling_past_the_overall_timeout_is_exit_4(server, method):
    server.handlers[method] = sleeping(10, server.handlers[method])
    result = check(server, timeout=0.8)
    assert_fails_closed(result, 4, "", "timeout")
    assert server.calls[method] == 1


def test_get_last_stalling_past_the_overall_timeout_is_exit_4(server, tmp_path):
    server.handlers["ScannerService.GetLast"] = sleeping(10, answer(scan_result()))
    result = check(
        server, "--policy", policy_file(tmp_path, "thresholds: {critical: 0}\nreuse: {max_age: 24h}\n"), timeout=0.8
    )
    assert_fails_closed(result, 4, "", "timeout")
    assert server.calls["ScannerService.Scan"] == 0


# -- command-line values that would unbound the loops ----------------------------------------------


def test_timeout_nan_is_a_usage_error(server):
    stop_after = 200  # the hostile part: crgate would otherwise never stop; answer an error after this many
    server.handlers["OperationService.Get"] = lambda request, context, n: (
        operation() if n < stop_after else operation(done=True, error=status_pb2.Status(code=13, message="enough"))
    )
    args = ["check", "--endpoint", server.address, "--insecure", "--progress", "none", "--timeout", "nan", REF]
    result = run_cli(args)
    assert "Traceback" not in result.output
    assert result.code == 2, f"exit {result.code} after {server.calls['OperationService.Get']} polls"
    assert sum(server.calls.values()) == 0
