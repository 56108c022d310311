"""Per-call plumbing around every handler: stats, response headers, auth, faults, error answers.

Every answer, success or error, carries ``x-request-id`` (the client's, echoed, or a fresh uuid) and
``x-server-trace-id`` in its initial metadata; errors repeat both in trailing metadata. Scripted faults
come first; chaos mode (``chaos.py``) decides a random fault for the calls they leave alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc

from crgate_emulator import wire
from crgate_emulator.authority import Authority
from crgate_emulator.chaos import Chaos, ChaosFault, applicable_kinds
from crgate_emulator.rpc import GrpcAbort
from crgate_emulator.scenario import ANOMALIES
from crgate_emulator.state import EmulatorState
from crgate_emulator.stats import ChaosEvent, EmulatorStats

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
        settings = state.scenario.chaos
        self._chaos = Chaos(settings) if settings is not None else None

    def run(
        self,
        method: str,
        context: grpc.ServicerContext,
        body: Callable[[Headers], R],
        *,
        image_id: str | None = None,
        subject: str | None = None,
    ) -> R:
        """Call ``body(extra_headers)``; the body may append response headers to its argument.

        ``image_id``: the image the call is about (per-image faults apply); ``subject`` (default: the image)
        keys chaos decisions for calls about no image, e.g. the repository of ``ImageService.List``.
        """
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        self._stats.record_call(method, metadata)
        headers: Headers = [
            ("x-request-id", metadata.get("x-request-id") or str(uuid.uuid4())),
            ("x-server-trace-id", str(uuid.uuid4())),
        ]
        extra: Headers = []
        chaos = _ChaosCall(self._chaos, self._state, self._stats, self._authority)
        chaos.decide(method, subject or image_id or "", image_id, metadata)
        try:
            chaos.before_auth()
            self._check_auth(method, metadata)
            fault = self._state.take_fault(method, image_id)
            if fault is not None:
                chaos.cancel()  # a scripted fault says exactly what this call gets
            if fault is not None and not fault.lost_response:
                raise GrpcAbort(grpc.StatusCode[fault.code], fault.message or _fault_message(fault.code))
            chaos.before_body()
            result = body(extra)
            if fault is not None:
                raise GrpcAbort(grpc.StatusCode[fault.code], fault.message or _fault_message(fault.code))
            result = chaos.after_body(result, context)
        except GrpcAbort as failure:
            self._stats.record_error(method, failure.code.name)
            self._abort(context, headers, failure)
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer with request ids
            self._stats.record_error(method, "INTERNAL")
            self._abort(context, headers, GrpcAbort(grpc.StatusCode.INTERNAL, f"emulator error: {exc!r}"))
        context.send_initial_metadata(tuple(headers + extra))
        return result

    def _check_auth(self, method: str, metadata: dict[str, str]) -> None:
        if not self._state.scenario.require_auth or method in UNAUTHENTICATED_METHODS:
            return
        self._authority.authorize(method, metadata.get("authorization", ""))

    @staticmethod
    def _abort(context: grpc.ServicerContext, headers: Headers, failure: GrpcAbort) -> NoReturn:
        context.send_initial_metadata(tuple(headers))
        context.set_trailing_metadata(tuple(headers))
        context.abort(failure.code, failure.message)
        raise AssertionError("context.abort returned")  # it always raises


def _fault_message(code: str) -> str:
    return f"injected fault: {code}"


class _ChaosCall:
    """Chaos mode's fault for one call (if any), applied at its stage of the call and logged."""

    def __init__(self, chaos: Chaos | None, state: EmulatorState, stats: EmulatorStats, authority: Authority):
        self._chaos = chaos
        self._state = state
        self._stats = stats
        self._authority = authority
        self._method = ""
        self._subject = ""
        self._image_id: str | None = None
        self._authorization = ""
        self.number = 0
        self.fault: ChaosFault | None = None

    def decide(self, method: str, subject: str, image_id: str | None, metadata: dict[str, str]) -> None:
        """Count the call and decide its fault, among the kinds that can apply to it."""
        if self._chaos is None:
            return
        self._method, self._subject, self._image_id = method, subject, image_id
        self._authorization = metadata.get("authorization", "")
        checked = self._state.scenario.require_auth and method not in UNAUTHENTICATED_METHODS
        kinds = applicable_kinds(
            method,
            authenticated=checked and bool(self._authorization),
            quota_limited=self._state.quota_limited(image_id),
        )
        self.number, self.fault = self._chaos.next_call(method, subject, kinds)

    def cancel(self) -> None:
        self.fault = None

    def _log(self, detail: str = "", answered: str = "OK", delivered: bool = True) -> None:
        assert self.fault is not None
        event = ChaosEvent(self._method, self._subject, self.number, self.fault.kind, detail, answered, delivered)
        self._stats.record_chaos(event)

    def before_auth(self) -> None:
        if self.fault is not None and self.fault.kind == "revoke":
            self._authority.revoke(self._authorization)
            self._log(answered="UNAUTHENTICATED")  # the auth check that follows refuses the token

    def before_body(self) -> None:
        fault = self.fault
        if fault is None:
            return
        if fault.kind in ("drop", "transient"):
            self._log(fault.code, answered=fault.code)
            message = "chaos: connection dropped" if fault.kind == "drop" else f"chaos: transient {fault.code}"
            raise GrpcAbort(grpc.StatusCode[fault.code], message)
        if fault.kind == "quota" and self._image_id is not None:
            self._state.crowd(self._image_id, fault.seconds)
            self._log(f"{fault.seconds:.2f}s")  # the body refuses the Scan (or a repeat passes)

    def after_body(self, result: Any, context: grpc.ServicerContext) -> Any:
        fault = self.fault
        if fault is None:
            return result
        if fault.kind == "lost_response":
            self._log(fault.code, answered=fault.code)
            raise GrpcAbort(grpc.StatusCode[fault.code], "chaos: the answer was lost on the way back")
        if fault.kind == "stall":
            until = time.monotonic() + fault.seconds
            while context.is_active() and time.monotonic() < until:
                time.sleep(min(0.01, max(0.0, until - time.monotonic())))
            self._log(f"{fault.seconds:.2f}s", delivered=context.is_active())
        if fault.kind == "malformed" and self._image_id is not None:
            image = self._state.image(self._image_id)
            started_at = self._state.started_at
            shapes = [(name, wire.corrupt_answer(result, name, image, started_at)) for name in ANOMALIES]
            applicable = [(name, shaped) for name, shaped in shapes if shaped is not None]
            if applicable:
                name, shaped = applicable[int(fault.pick * len(applicable))]
                self._log(name)
                return shaped
        return result
