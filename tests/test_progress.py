"""Progress output: lines for logs (state changes plus a 30 s heartbeat), a redrawn table on terminals."""

import io

from crgate.model import ImageState
from crgate.progress import LineProgress, LiveProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_lines_only_on_state_change_and_heartbeat_at_most_every_30s():
    stream, clock = io.StringIO(), Clock()
    progress = LineProgress(stream, clock=clock)
    progress.update("img", "queued")
    progress.update("img", "scanning", "sr1")
    for second in range(1, 70):  # a poll every second for 69 s
        clock.now = float(second)
        progress.update("img", "scanning", "sr1")
    progress.update("img", "pass", "sr1")
    lines = stream.getvalue().splitlines()
    assert [line.split("img: ", 1)[1] for line in lines] == [
        "queued",
        "scanning (scan result sr1)",
        "still scanning (scan result sr1)",
        "still scanning (scan result sr1)",
        "pass (scan result sr1)",
    ]
    assert lines[2].startswith("[  30.0s]") and lines[3].startswith("[  60.0s]")


def test_live_progress_redraws_one_row_per_image():
    stream, clock = io.StringIO(), Clock()
    progress = LiveProgress(stream, clock=clock)
    try:
        progress.update("a", "queued")
        progress.update("b", "queued")
        clock.now = 1.0
        progress.update("a", "scanning")
        clock.now = 3.5
        progress.update("a", "pass")
    finally:
        progress.close()
    frames = stream.getvalue().split("\x1b[2K")
    last_rows = [frame for frame in frames if frame.strip()][-2:]
    assert "a" in last_rows[0] and "pass" in last_rows[0] and "2.5s" in last_rows[0]
    assert "b" in last_rows[1] and "queued" in last_rows[1]
    assert "\x1b[F\x1b[F" in stream.getvalue()  # moved the cursor up to redraw in place


def test_an_expanded_index_row_stops_its_clock():
    """An index's row gets no update after it expands (its platform images have rows of their own)."""
    stream, clock = io.StringIO(), Clock()
    progress = LiveProgress(stream, clock=clock)
    try:
        progress.update("app:multi", ImageState.RESOLVING)
        clock.now = 1.5
        progress.update("app:multi", ImageState.EXPANDED)
        progress.update("app:multi (linux/amd64)", ImageState.SCANNING)
        clock.now = 40.0
        progress.update("app:multi (linux/amd64)", ImageState.PASS)
    finally:
        progress.close()
    frames = stream.getvalue().split("\x1b[2K")
    index_row, platform_row = [frame for frame in frames if frame.strip()][-2:]
    assert "multi-platform" in index_row and "1.5s" in index_row
    assert "pass" in platform_row and "38.5s" in platform_row
