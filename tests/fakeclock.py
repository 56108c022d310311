"""A monotonic clock that moves only when a test says so (``advance``) or when code under test sleeps on it."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A stand-in for ``time.sleep``: no real waiting, and never backwards."""
        assert seconds >= 0
        self.now += seconds
