"""How crgate writes durations: in the policy's notation (``90s``, ``24h``, ``7d``) and as ages."""

from __future__ import annotations

import datetime as dt

# (unit, seconds, the least multiple written in that unit): 24h stays 24h, 48h reads 2d.
_UNITS = (("d", 86400, 2), ("h", 3600, 1), ("m", 60, 1))


def format_duration(duration: dt.timedelta) -> str:
    """A duration in the policy's notation, in its largest exact unit: ``90s``, ``15m``, ``36h``, ``7d``."""
    seconds = int(duration.total_seconds())
    for unit, size, least in _UNITS:
        if seconds % size == 0 and seconds >= least * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_age(age: dt.timedelta) -> str:
    """An age for people: an exact unit when there is one, else hours and minutes or minutes and seconds."""
    seconds = int(age.total_seconds())
    for unit, size, least in _UNITS:
        if seconds % size == 0 and seconds >= least * size:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"
