"""How many scans one run keeps running at once, adapting to the cloud's quota.

Yandex allows 10 concurrent scans per cloud (``container-registry.parallelScans.count``), shared with
scan-on-push, scheduled scans and other pipelines. A run starts at its ``--concurrency``; when the cloud
refuses a scan, the run's limit drops to the scans it holds (the refused worker keeps its slot and
probes with backoff, every other worker waits here instead of calling ``Scan``), and each accepted scan
raises the limit by one again (additive increase, multiplicative-style decrease: one run never hammers
the quota, and it climbs back as slots free up). A refused worker asks again when its backoff ends, or
at once when one of the run's own scans ends (that scan's quota slot is free now): a wave of scans
follows the previous one without waiting out a backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from crgate.errors import InterruptedRunError, ScanTimeoutError
from crgate.timing import Deadline

WAKE_SECONDS = 0.2
"""Waiting is sliced so that Ctrl-C and the deadline are noticed promptly."""
_now = time.monotonic


class ScanSlots:
    """A semaphore whose size follows the cloud's answers; thread-safe."""

    def __init__(self, most: int, cancel: threading.Event):
        self.most = max(1, most)
        self._limit = self.most
        self._held = 0
        self._freed = 0
        """Quota slots known to be free (the run's own scans that ended), one per refused worker waiting."""
        self._pausing = 0
        self._cancel = cancel
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        with self._changed:
            return self._limit

    def acquire(self, deadline: Deadline, on_wait: Callable[[], None] = lambda: None) -> None:
        """Wait for a slot; ScanTimeoutError when ``deadline`` passes first, InterruptedRunError on Ctrl-C.

        ``on_wait`` is called once when there is none free at first (progress shows the wait).
        """
        with self._changed:
            if self._held >= self._limit:
                on_wait()
            while self._held >= self._limit:
                if self._cancel.is_set():
                    raise InterruptedRunError("interrupted while waiting for a scan slot")
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise ScanTimeoutError(
                        f"timed out after {deadline.seconds:g}s waiting for a scan slot: the cloud's quota of "
                        "concurrent scans stayed in use (container-registry.parallelScans.count)"
                    )
                self._changed.wait(min(WAKE_SECONDS, remaining))
            self._held += 1

    def refused(self) -> None:
        """The cloud refused the holder's scan: keep its slot (it probes), stop others from starting."""
        with self._changed:
            self._limit = max(1, self._held)

    def accepted(self) -> None:
        """The holder's scan was started: let one more start, up to ``most``."""
        with self._changed:
            self._limit = min(self.most, self._limit + 1)
            self._changed.notify_all()

    def release(self, *, scan_ended: bool = False) -> None:
        """The holder is done: its scan is over (``scan_ended``: it ran, so its quota slot is free now)
        or was never started."""
        with self._changed:
            self._held -= 1
            if scan_ended and self._pausing:  # a slot nobody waits for now is no news to a later refusal
                self._freed = min(self._freed + 1, self._pausing)
            self._changed.notify_all()

    def pause(self, seconds: float) -> None:
        """After a refusal: wait ``seconds``, or less if one of the run's scans ends first (one ended scan
        wakes one refused worker); InterruptedRunError on Ctrl-C."""
        with self._changed:
            self._pausing += 1
            try:
                until = _now() + seconds
                while not self._cancel.is_set():
                    if self._freed > 0:
                        self._freed -= 1
                        return
                    remaining = until - _now()
                    if remaining <= 0:
                        return
                    self._changed.wait(min(WAKE_SECONDS, remaining))
                raise InterruptedRunError("interrupted while waiting for a scan slot")
            finally:
                self._pausing -= 1
                self._freed = min(self._freed, self._pausing)
