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
    """How often to ask ``OperationService.Get`` while a scan runs.

    Exponential from ``initial``, never above ``proportion`` of the time waited so far (so detection
    lag stays a fixed fraction of the scan's duration), never below ``floor`` and never above ``cap``.
    Jitter only shortens an interval, so the bounds hold for every draw.
    """

    initial: float = 0.25
    multiplier: float = 2.0
    floor: float = 0.5
    proportion: float = 0.2
    cap: float = 10.0
    jitter: float = 0.05
    server_hint_min: float = 0.1
    server_hint_max: float = 60.0

    def interval(self, poll_number: int, waited: float, rng: random.Random, server_hint: float | None = None) -> float:
        """Seconds to sleep before poll ``poll_number`` (1-based) after ``waited`` seconds of waiting.

        A sane server hint (``x-operation-poll-interval``) replaces the computed value, but never makes
        crgate poll more often than every ``server_hint_min`` seconds.
        """
        if server_hint is not None and 0 < server_hint <= self.server_hint_max:
            return max(server_hint, self.server_hint_min)
        exponential = self.initial * self.multiplier ** max(0, poll_number - 1)
        proportional = max(self.floor, self.proportion * waited)
        base = min(exponential, proportional, self.cap)
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
