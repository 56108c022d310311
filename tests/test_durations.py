"""Durations as messages print them (crgate.durations): exact policy values and measured ages."""

from __future__ import annotations

import datetime as dt

import pytest

from crgate.durations import format_age, format_duration


@pytest.mark.parametrize(
    ("seconds", "exact", "age"),
    [
        (45, "45s", "45s"),
        (90, "90s", "1m30s"),
        (900, "15m", "15m"),
        (5400, "90m", "90m"),
        (5430, "5430s", "1h30m"),
        (86400, "24h", "24h"),
        (172800, "2d", "2d"),
        (172803, "172803s", "48h0m"),
    ],
)
def test_policy_notation_and_ages(seconds: int, exact: str, age: str) -> None:
    assert format_duration(dt.timedelta(seconds=seconds)) == exact
    assert format_age(dt.timedelta(seconds=seconds)) == age
