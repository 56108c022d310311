"""The timing policies: the poll schedule keeps lag proportional and polls few; retries are bounded."""

import random

import pytest

from crgate.timing import Deadline, PollPolicy, RetryPolicy


def simulate_polls(policy: PollPolicy, scan_seconds: float, seed: int) -> tuple[int, float]:
    """Polls made and detection lag for a scan of ``scan_seconds`` (RPC time ignored)."""
    rng = random.Random(seed)
    waited = 0.0
    polls = 0
    while waited < scan_seconds:
        polls += 1
        waited += policy.interval(polls, waited, rng)
    return polls, waited - scan_seconds


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("scan_seconds", [0.3, 2, 10, 30, 60, 300])
def test_lag_stays_within_target_and_polls_are_few(scan_seconds, seed):
    polls, lag = simulate_polls(PollPolicy(), scan_seconds, seed)
    assert lag <= max(0.5, 0.2 * scan_seconds)
    if scan_seconds <= 60:
        assert polls <= 25


def test_interval_bounds_hold_for_every_draw():
    policy = PollPolicy()
    rng = random.Random(1)
    for poll in range(1, 60):
        for waited in (0.0, 0.4, 3.0, 17.0, 400.0):
            interval = policy.interval(poll, waited, rng)
            assert 0 < interval <= policy.cap
            assert interval <= max(policy.floor, policy.proportion * waited)
            assert interval <= policy.initial * policy.multiplier ** (poll - 1)


def test_first_interval_is_at_most_half_a_second():
    assert PollPolicy().interval(1, 0.0, random.Random(0)) <= 0.5


def test_server_hint_is_honoured_when_sane_and_ignored_otherwise():
    policy = PollPolicy()
    rng = random.Random(0)
    assert policy.interval(3, 10.0, rng, server_hint=3.0) == 3.0
    for insane in (0.0, -1.0, 10_000.0):
        assert policy.interval(3, 10.0, rng, server_hint=insane) <= 2.0
    assert policy.interval(3, 10.0, rng, server_hint=0.001) == policy.server_hint_min  # no hammering


def test_retry_delay_is_jittered_and_capped():
    policy = RetryPolicy()
    rng = random.Random(0)
    delays = [policy.delay(n, rng) for n in range(1, 20)]
    assert all(0 < d <= policy.cap for d in delays)
    assert delays[0] <= policy.initial


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_deadline_caps_each_call_at_what_is_left():
    clock = FakeClock()
    deadline = Deadline(30, clock=clock)
    assert deadline.call_timeout(20) == 20
    clock.now += 25
    assert deadline.call_timeout(20) == pytest.approx(5)
    clock.now += 10
    assert deadline.expired()
    assert deadline.call_timeout(20) > 0  # never a zero/negative gRPC timeout
