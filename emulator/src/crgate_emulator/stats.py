"""What the emulator saw, for tests to assert on. Updated under a lock; read freely."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

SCAN_OUTCOMES = ("started", "repeated", "refused", "failed")


@dataclass(frozen=True)
class ScanAttempt:
    """One ``ScannerService.Scan`` call as the emulator handled it.

    ``outcome``: ``started`` (a new scan), ``repeated`` (a known idempotency key: its operation again,
    nothing created), ``refused`` (the cloud's quota was full: nothing created) or ``failed`` (answered
    with an error before any scan logic: an injected fault, a bad request, auth). ``code`` is the status
    the client got: a ``started`` scan answered ``UNAVAILABLE`` is a lost response (the scan runs).
    """

    image_id: str
    idempotency_key: str
    outcome: str
    code: str = "OK"
    operation_id: str = ""
    scan_result_id: str = ""
    cloud_id: str = ""
    in_use: int = 0  # quota slots of the cloud in use after the call, other clients' included


@dataclass(frozen=True)
class ChaosEvent:
    """One fault chaos mode injected (``crgate_emulator.chaos``).

    ``subject`` is the image the call was about (or the repository of an ``ImageService.List``), ``number``
    the call's number among that method's calls about it; ``detail`` the code, anomaly or seconds;
    ``answered`` the status the client was sent (``OK`` for a malformed or stalled answer); ``delivered``
    False when a stall outlasted the client, which then never saw the answer.
    """

    method: str
    subject: str
    number: int
    kind: str
    detail: str = ""
    answered: str = "OK"
    delivered: bool = True


@dataclass
class EmulatorStats:
    """Calls per ``Service.Method``, scans really started (and the most running at once), idempotency keys,
    metadata received, a log of every ``Scan`` call (``scan_log``) and of every chaos fault (``chaos_log``)."""

    calls: Counter[str] = field(default_factory=Counter)
    scans_started: int = 0
    max_concurrent_scans: int = 0
    idempotency_keys: list[str] = field(default_factory=list)
    request_metadata: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    """Error answers per ``Service.Method:CODE`` (e.g. ``ScannerService.Scan:UNAUTHENTICATED``)."""
    scan_attempts: list[ScanAttempt] = field(default_factory=list)
    chaos_events: list[ChaosEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_call(self, method: str, metadata: dict[str, str]) -> None:
        """One call of ``method`` with its invocation metadata (an ``idempotency-key`` is noted too)."""
        with self._lock:
            self.calls[method] += 1
            self.request_metadata.append((method, dict(metadata)))
            key = metadata.get("idempotency-key")
            if method == "ScannerService.Scan" and key is not None:
                self.idempotency_keys.append(key)

    def record_error(self, method: str, code: str) -> None:
        """An error answer with status ``code`` to a call of ``method``."""
        with self._lock:
            self.errors[f"{method}:{code}"] += 1

    def record_scan_started(self, running: int = 1) -> None:
        """A new scan; ``running`` scans (this one included) are RUNNING now."""
        with self._lock:
            self.scans_started += 1
            self.max_concurrent_scans = max(self.max_concurrent_scans, running)

    def metadata_of(self, method: str) -> list[dict[str, str]]:
        """Metadata of every call of ``method``, in arrival order."""
        with self._lock:
            return [md for name, md in self.request_metadata if name == method]

    def record_scan_attempt(self, attempt: ScanAttempt) -> None:
        with self._lock:
            self.scan_attempts.append(attempt)

    def scan_log(self, outcome: str | None = None, *, image_id: str | None = None) -> list[ScanAttempt]:
        """``Scan`` calls in arrival order, optionally only of one outcome or one image."""
        if outcome is not None and outcome not in SCAN_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(SCAN_OUTCOMES)}, got {outcome!r}")
        with self._lock:
            return [
                attempt
                for attempt in self.scan_attempts
                if outcome in (None, attempt.outcome) and image_id in (None, attempt.image_id)
            ]

    def record_chaos(self, event: ChaosEvent) -> None:
        with self._lock:
            self.chaos_events.append(event)

    def chaos_log(self, kind: str | None = None, *, subject: str | None = None) -> list[ChaosEvent]:
        """Chaos faults in the order they were injected, optionally only of one kind or one subject."""
        with self._lock:
            return [
                event for event in self.chaos_events if kind in (None, event.kind) and subject in (None, event.subject)
            ]
