"""Pausing the cyclic garbage collector while crgate builds or writes many small objects at once.

Decoding, judging and writing 100,000 findings allocate millions of short-lived and long-lived small
objects (findings, tuples, strings, lists) and create no reference cycle among them; reference counting
frees whatever is garbage. Yet every 700 allocations the collector runs, and as the heap grows its
older generations are traversed again and again: with the collector running, decoding and judging take
about twice as long. ``without_cycle_collection`` switches it off for such a stretch.

When the last stretch ends, what exists is moved to the collector's permanent generation
(``gc.freeze``) before the collector is switched back on: otherwise its first run after the stretch
would traverse every object the stretch made (a tenth of a second for 100,000 findings). Frozen objects
are freed by reference counting as before; only a reference cycle among them would never be collected,
and the findings, reports and their strings form none.

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
                gc.freeze()
                gc.enable()
