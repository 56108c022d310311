"""Live progress of a run on stderr: a redrawn table on a terminal, plain lines in CI logs.

References and scan result ids come from users, manifests and servers: both are shown through
``crgate.textsafe.safe`` (no escape sequence, no line of their own, bounded), whatever the caller passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from crgate.model import ImageState
from crgate.textsafe import safe

HEARTBEAT_SECONDS = 30.0
_FINAL = frozenset(
    str(state)
    for state in (
        ImageState.PASS,
        ImageState.FAIL,
        ImageState.ERROR,
        ImageState.TIMEOUT,
        ImageState.INTERRUPTED,
        ImageState.EXPANDED,  # an index's own row: its platform images carry on in rows of their own
    )
)
"""States after which a row's clock stops: no later update comes for that row."""
REF_LIMIT = 200  # a reference longer than this is cut in progress lines
ID_LIMIT = 128


class NullProgress:
    """Shows nothing (``--progress none``)."""

    def update(self, ref: str, state: str, scan_result_id: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """For logs: one line on each state change, and a 'still scanning' line at most every 30 s."""

    def __init__(
        self, stream: TextIO, clock: Callable[[], float] = time.monotonic, heartbeat: float = HEARTBEAT_SECONDS
    ):
        self._stream = stream
        self._clock = clock
        self._heartbeat = heartbeat
        self._start = clock()
        self._lock = threading.Lock()
        self._last: dict[str, tuple[str, float]] = {}

    def update(self, ref: str, state: str, scan_result_id: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            previous = self._last.get(ref)
            if previous is not None and previous[0] == state:
                if now - previous[1] < self._heartbeat:
                    return
                text = f"still {state}"
            else:
                text = state
            self._last[ref] = (state, now)
            shown_id = safe(scan_result_id, ID_LIMIT) if scan_result_id else ""
            suffix = f" (scan result {shown_id})" if shown_id and state not in ("queued",) else ""
            self._stream.write(f"[{now - self._start:6.1f}s] {safe(ref, REF_LIMIT)}: {safe(text, 64)}{suffix}\n")
            self._stream.flush()

    def close(self) -> None:
        pass


class LiveProgress:
    """For terminals: one line per image with its state and elapsed time, redrawn twice a second."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, list] = {}
        self._shown: dict[str, str] = {}  # ref -> its printable form, computed once
        self._drawn = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="crgate-progress", daemon=True)
        self._ticker.start()

    def update(self, ref: str, state: str, scan_result_id: str | None = None) -> None:
        now = self._clock()
        with self._lock:
            row = self._rows.setdefault(ref, [state, now, None, None])
            if ref not in self._shown:
                self._shown[ref] = safe(ref, REF_LIMIT)
            if row[0] != state:
                row[0] = state
            if state not in ("queued",) and row[2] is None:
                row[2] = now
            if state in _FINAL and row[3] is None:
                row[3] = now
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        now = self._clock()
        width = max((len(shown) for shown in self._shown.values()), default=0)
        lines = []
        for ref, (state, _queued, started, ended) in self._rows.items():
            elapsed = "" if started is None else f"{(ended or now) - started:5.1f}s"
            lines.append(f"  {self._shown[ref]:<{width}}  {safe(state, 64):<11} {elapsed}")
        out = "\x1b[F" * self._drawn + "".join(f"\x1b[2K{line}\n" for line in lines)
        self._stream.write(out)
        self._stream.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._draw()


def progress_for(mode: str, stream: TextIO) -> NullProgress | LineProgress | LiveProgress:
    """The sink of ``--progress MODE``: ``auto`` draws a live table on a terminal and lines in logs."""
    if mode == "auto":
        mode = "live" if stream.isatty() else "lines"
    if mode == "live":
        return LiveProgress(stream)
    if mode == "lines":
        return LineProgress(stream)
    return NullProgress()


class CountProgress:
    """How far an audit of many images is: a line rewritten in place on a terminal (``live``), or a line
    each tenth of the images in CI logs (``lines``: eleven lines at most), and one at the end."""

    def __init__(self, mode: str, stream: TextIO, what: str = "images audited"):
        self._live = mode == "live" or (mode == "auto" and stream.isatty())
        self._quiet = mode == "none"
        self._stream = stream
        self._what = what
        self._lock = threading.Lock()
        self._shown = 0
        self._at = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self._quiet:
            return
        with self._lock:
            now = time.monotonic()
            step = max(1, total // 10)
            if self._live:
                if done == total or now - self._at >= 0.2:
                    self._stream.write(f"\rcrgate: {done}/{total} {self._what}" + ("\n" if done == total else ""))
                    self._at = now
            elif done == total or done - self._shown >= step:
                self._stream.write(f"crgate: {done}/{total} {self._what}\n")
                self._shown, self._at = done, now
            self._stream.flush()
