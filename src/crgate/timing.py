"""Pure timing: the overall deadline, polling intervals and retry backoff (no I/O, transport-neutral).

Nothing here sleeps or reads a real clock unless given one, so tests drive it with a fake clock
(google api-core's ``future/polling.py`` and ``retry/`` are the model).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class Deadline:
    """One overall deadline for a whole run (``--timeout``), read from a monotonic clock."""

    def __init__(self, seconds: float, clock: Clock = time.monotonic):
        if not math.isfinite(seconds) or seconds <= 0:  # NaN would never expire: a loop without end
            raise ValueError(f"a deadline must be a positive finite number of seconds, not {seconds!r}")
        self._clock = clock
        self.seconds = seconds
        self.started = clock()
        self.expires = self.started + seconds

    def remaining(self) -> float:
        return self.expires - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def elapsed(self) -> float:
        return self._clock() - self.started

    def call_timeout(self, per_call: float) -> float:
        """The gRPC deadline for one call: the per-call cap, but never past the overall deadline."""
        return max(0.001, min(per_call, self.remaining()))


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask whether a scan is done (``OperationService.Get``, a cheap unbilled read).

    Real scans take 20 s to about 2 minutes and every second of detection lag is a second of every
    pipeline, so after a quick first poll (a cached or tiny scan) crgate polls every ``steady`` seconds: the lag stays
    under ``steady`` at every duration while the calls stay well under a fixed 1 s poller's. Only once
    a scan has run ``long_after`` seconds (far longer than real scans) does the interval grow, in
    proportion to the time waited, up to ``cap``. Jitter only shortens an interval, so every bound
    holds for every draw. A server's ``x-operation-poll-interval`` replaces the computed value.
    """

    first: float = 0.25
    steady: float = 1.8
    long_after: float = 300.0
    cap: float = 10.0
    jitter: float = 0.03
    server_hint_min: float = 0.1
    server_hint_max: float = 60.0

    def interval(self, poll_number: int, waited: float, rng: random.Random, server_hint: float | None = None) -> float:
        """Seconds to sleep before poll ``poll_number`` (1-based) after ``waited`` seconds of waiting.

        A sane server hint (``x-operation-poll-interval``) replaces the computed value, but never makes
        crgate poll more often than every ``server_hint_min`` seconds.
        """
        if server_hint is not None and 0 < server_hint <= self.server_hint_max:
            return max(server_hint, self.server_hint_min)
        if poll_number <= 1:
            base = self.first
        elif waited < self.long_after:
            base = self.steady
        else:
            base = min(self.cap, self.steady * waited / self.long_after)
        return base * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between retries of a transient gRPC failure (UNAVAILABLE and friends)."""

    initial: float = 0.5
    multiplier: float = 2.0
    cap: float = 10.0
    max_attempts: int = 8
    """Attempts in all, the first included; the overall deadline may end them sooner."""

    def delay(self, retry_number: int, rng: random.Random) -> float:
        """Seconds before retry ``retry_number`` (1-based): jittered in [50%, 100%] of the backoff."""
        base = min(self.cap, self.initial * self.multiplier ** max(0, retry_number - 1))
        return base * (0.5 + 0.5 * rng.random())


SLOT_BACKOFF = RetryPolicy(initial=1.0, multiplier=1.5, cap=8.0, max_attempts=0)
"""Waiting for a scan slot while the cloud's quota is in use: no attempt limit (``--timeout`` ends it);
a freed slot is noticed within the 8 s cap."""
