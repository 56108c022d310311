"""Durations in the policy's notation (``90s``, ``15m``, ``24h``, ``7d``), for messages and summaries.

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
