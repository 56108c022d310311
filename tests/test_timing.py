"""The timing policies: the poll schedule keeps lag small at every duration and polls few; retries are bounded."""

import math
import random

import pytest

from crgate.timing import Deadline, PollPolicy, RetryPolicy
from fakeclock import FakeClock


def simulate_polls(policy: PollPolicy, scan_seconds: float, seed: int) -> tuple[int, float]:
    """Polls made and detection lag for a scan of ``scan_seconds`` (RPC time ignored)."""
    rng = random.Random(seed)
    waited = 0.0
    polls = 0
    while waited < scan_seconds:
        polls += 1
        waited += policy.interval(polls, waited, rng)
    return polls, waited - scan_seconds


def sdk_polls(scan_seconds: float) -> int:
    """Polls of the yandexcloud SDK's waiter (a fixed 1 s poller) for the same scan."""
    return math.ceil(scan_seconds)


OFF_GRID = [0.3, 2.5, 10.0, 10.5, 30.0, 30.5, 60.0, 60.5, 120.5, 299.0]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("scan_seconds", OFF_GRID)
def test_lag_stays_under_two_seconds_at_every_real_duration(scan_seconds, seed):
    policy = PollPolicy()
    _, lag = simulate_polls(policy, scan_seconds, seed)
    assert lag <= policy.steady <= 2.0


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("scan_seconds", [10.0, 10.5, 30.0, 30.5, 60.0, 60.5, 120.5])
def test_polls_stay_well_under_a_fixed_one_second_poller(scan_seconds, seed):
    polls, _ = simulate_polls(PollPolicy(), scan_seconds, seed)
    assert polls <= 0.7 * sdk_polls(scan_seconds)
    if scan_seconds <= 61:
        assert polls <= 40


@pytest.mark.parametrize("seed", range(5))
def test_a_scan_far_longer_than_real_ones_is_polled_less_and_less(seed):
    policy = PollPolicy()
    polls_first_hour, lag = simulate_polls(policy, 3600.0, seed)
    # About 170 polls in the first 5 minutes; a steady 1.8 s would make 2,000 in the hour.
    assert polls_first_hour <= 700
    assert lag <= policy.cap


def test_interval_bounds_hold_for_every_draw():
    policy = PollPolicy()
    rng = random.Random(1)
    for poll in range(1, 60):
        for waited in (0.0, 0.4, 3.0, 17.0, 299.0, 400.0, 10_000.0):
            interval = policy.interval(poll, waited, rng)
            assert 0 < interval <= policy.cap
            assert interval >= (1 - policy.jitter) * min(policy.first, policy.steady)
            if waited < policy.long_after:
                assert interval <= max(policy.first, policy.steady)


def test_first_interval_is_at_most_half_a_second():
    assert PollPolicy().interval(1, 0.0, random.Random(0)) <= 0.5


def test_server_hint_is_honoured_when_sane_and_ignored_otherwise():
    policy = PollPolicy()
    rng = random.Random(0)
    assert policy.interval(3, 10.0, rng, server_hint=3.0) == 3.0
    for insane in (0.0, -1.0, 10_000.0):
        assert policy.interval(3, 10.0, rng, server_hint=insane) <= policy.steady
    assert policy.interval(3, 10.0, rng, server_hint=0.001) == policy.server_hint_min  # no hammering


def test_retry_delay_is_jittered_and_capped():
    policy = RetryPolicy()
    rng = random.Random(0)
    delays = [policy.delay(n, rng) for n in range(1, 20)]
    assert all(0 < d <= policy.cap for d in delays)
    assert delays[0] <= policy.initial


def test_deadline_caps_each_call_at_what_is_left():
    clock = FakeClock(100.0)
    deadline = Deadline(30, clock=clock)
    assert deadline.call_timeout(20) == 20
    clock.now += 25
    assert deadline.call_timeout(20) == pytest.approx(5)
    clock.now += 10
    assert deadline.expired()
    assert deadline.call_timeout(20) > 0  # never a zero/negative gRPC timeout
