"""Per-call plumbing around every handler: stats, response headers, auth, faults, error answers.

Every answer, success or error, carries ``x-request-id`` (the client's, echoed, or a fresh uuid) and
``x-server-trace-id`` in its initial metadata; errors repeat both in trailing metadata.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import NoReturn, TypeVar

import grpc

from crgate.emulator.authority import Authority
from crgate.emulator.rpc import RpcFailure
from crgate.emulator.state import EmulatorState
from crgate.emulator.stats import EmulatorStats

R = TypeVar("R")
Headers = list[tuple[str, str]]
# Calls a client makes before it has credentials.
UNAUTHENTICATED_METHODS = frozenset({"IamTokenService.Create", "ApiEndpointService.List", "ApiEndpointService.Get"})


class Dispatcher:
    """Runs one handler body inside the emulator's per-call rules."""

    def __init__(self, state: EmulatorState, stats: EmulatorStats, authority: Authority):
        self._state = state
        self._stats = stats
        self._authority = authority

    def run(
        self,
        method: str,
        context: grpc.ServicerContext,
        body: Callable[[Headers], R],
        *,
        image_id: str | None = None,
    ) -> R:
        """Call ``body(extra_headers)``; the body may append response headers to its argument."""
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        self._stats.record_call(method, metadata)
        headers: Headers = [
            ("x-request-id", metadata.get("x-request-id") or str(uuid.uuid4())),
            ("x-server-trace-id", str(uuid.uuid4())),
        ]
        extra: Headers = []
        try:
            self._check_auth(method, metadata)
            fault = self._state.take_fault(method, image_id)
            if fault is not None and not fault.lost_response:
                raise RpcFailure(grpc.StatusCode[fault.code], fault.message or _fault_message(fault.code))
            result = body(extra)
            if fault is not None:
                raise RpcFailure(grpc.StatusCode[fault.code], fault.message or _fault_message(fault.code))
        except RpcFailure as failure:
            self._stats.record_error(method, failure.code.name)
            self._abort(context, headers, failure)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer with request ids
            self._stats.record_error(method, "INTERNAL")
            self._abort(context, headers, RpcFailure(grpc.StatusCode.INTERNAL, f"emulator error: {exc!r}"))
        context.send_initial_metadata(tuple(headers + extra))
        return result

    def _check_auth(self, method: str, metadata: dict[str, str]) -> None:
        if not self._state.scenario.require_auth or method in UNAUTHENTICATED_METHODS:
            return
        self._authority.authorize(method, metadata.get("authorization", ""))

    @staticmethod
    def _abort(context: grpc.ServicerContext, headers: Headers, failure: RpcFailure) -> NoReturn:
        context.send_initial_metadata(tuple(headers))
        context.set_trailing_metadata(tuple(headers))
        context.abort(failure.code, failure.message)
        raise AssertionError("context.abort returned")  # it always raises


def _fault_message(code: str) -> str:
    return f"injected fault: {code}"
