"""Durations for messages: exact values in the policy's notation (``90s``, ``15m``, ``24h``, ``7d``) and
measured ages (``1h30m``).

Pure and free of YAML, so the runner and reports can name an age the way a policy writes it.
"""

from __future__ import annotations

import datetime as dt

UNITS: dict[str, str] = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
"""Unit letter -> ``datetime.timedelta`` keyword."""


def format_duration(duration: dt.timedelta) -> str:
    """A duration in the policy's notation, in its largest exact unit (days from two on): ``90s``,
    ``15m``, ``24h``, ``36h``, ``7d``."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= (2 * size if unit == "d" else size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_age(duration: dt.timedelta) -> str:
    """A measured duration (an age, a wait) in whole seconds: the policy's notation when it is exact
    (``24h``, ``2d``), else the two largest units (``1h30m``, ``1m30s``), so ``172803`` seconds reads
    ``48h0m`` rather than ``172803s``."""
    seconds = int(duration.total_seconds())
    for unit, size, least in (("d", 86400, 2), ("h", 3600, 1), ("m", 60, 1)):
        if seconds >= least * size and seconds % size == 0:  # 24h stays 24h; 48h reads 2d
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


MAX_DURATION = dt.timedelta(days=3650)


def parse_duration(text: str) -> dt.timedelta | None:
    """``7d``, ``36h``, ``90m``, ``3600s`` (a whole number and a unit) as a timedelta, positive and at most
    ten years; None when ``text`` is not one."""
    value, unit = text[:-1], text[-1:]
    if unit not in UNITS or not value.isdigit() or not value.isascii() or len(value) > 9:
        return None
    duration = dt.timedelta(**{UNITS[unit]: int(value)})
    return duration if dt.timedelta(0) < duration <= MAX_DURATION else None
