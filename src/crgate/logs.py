"""crgate's log lines on stderr: ``crgate: warning: ...`` like every other line it writes for people.

``-v`` shows crgate's API calls, ``-vv`` everything (third-party libraries included). Every record goes
through ``masking.SafeRecords`` first: known secrets redacted, then the text made inert.
"""

from __future__ import annotations

import logging
from typing import TextIO

from crgate.masking import SafeRecords, SecretMasker


def configure_logging(verbose: int, stream: TextIO, masker: SecretMasker | None = None) -> None:
    """One handler on ``stream`` at the level ``verbose`` asks for (0: warnings, 1: info, 2+: debug)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("crgate: {levelname}: {message}", style="{"))
    if verbose < 2:  # grpc logs its own errors (with tracebacks) that crgate has already translated
        handler.addFilter(logging.Filter("crgate"))
    handler.addFilter(SafeRecords(masker))
    handler.addFilter(_lower_level_name)
    # force: the CLI owns the process; a handler installed before (a test runner's) must not swallow ours.
    logging.basicConfig(level=level, handlers=[handler], force=True)


def _lower_level_name(record: logging.LogRecord) -> bool:
    record.levelname = record.levelname.lower()
    return True
