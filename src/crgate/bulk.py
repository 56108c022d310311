"""Pausing the cyclic garbage collector while crgate builds or writes many small objects at once.

Decoding, judging and writing 100,000 findings allocate millions of short-lived and long-lived small
objects (findings, tuples, strings, lists) and create no reference cycle among them; reference counting
frees whatever is garbage. Yet every 700 allocations the collector runs, and as the heap grows its
older generations are traversed again and again: with the collector running, decoding and judging take
about twice as long. ``without_cycle_collection`` switches it off for such a stretch.

The collector's first run after a stretch traverses what the stretch made, once. ``gc.freeze`` would
spare that, but it freezes every object of the process, garbage included: resources that only the
collector frees (a cycle holding a socket or a gRPC channel, made before the stretch by whoever) would
then never be freed, and one test run hung that way. So the collector is simply switched back on.

Worker threads decode and judge several images at once, and the collector is one switch for the whole
process: the pause is counted, so the collector comes back (if it was on) only when the last stretch
that paused it ends. Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def without_cycle_collection() -> Iterator[None]:
    """The block runs with the cyclic collector off; it is back on after the last such block ends
    (only if it was on before the first one began)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
