"""The width click wraps help text to, found without importing ``shutil``.

click's ``HelpFormatter`` asks ``shutil.get_terminal_size`` when no width is given, and importing
``shutil`` loads ``bz2``, ``lzma``, ``zlib`` and ``fnmatch`` (about 4 ms, a tenth of click's own
import) on every ``--help``. The CLI passes this width instead; it is the one click would compute.
"""

from __future__ import annotations

import os
import sys

HELP_MAX_WIDTH = 100
"""crgate's help is at most this many columns wide, however wide the terminal."""
FALLBACK_COLUMNS = 80
"""Columns when neither ``COLUMNS`` nor the terminal says (output to a pipe or file), as shutil's."""


def terminal_columns() -> int:
    """``COLUMNS`` when a positive number, else stdout's terminal width, else 80 (shutil's order)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else FALLBACK_COLUMNS


def help_width(forced: int | None = None, max_width: int = HELP_MAX_WIDTH) -> int:
    """click's help width: the terminal's columns, at most ``max_width``, less 2, at least 50.

    ``forced`` is click's ``formatting.FORCED_WIDTH`` (its test runner sets it); it wins, as in click.
    The CLI passes it: no module but the CLI imports click.
    """
    if forced is not None:
        return forced
    return max(min(terminal_columns(), max_width) - 2, 50)
