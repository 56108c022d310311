"""The exit codes of every crgate command: one documented enum (errors and verdicts carry one;
only the CLI exits with it)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit statuses. Their numbers are not their severity: ``worst`` ranks them (``_RANK``)."""

    PASS = 0
    """Every image passed the policy."""
    VIOLATION = 1
    """At least one image violates the policy."""
    USAGE = 2
    """Usage or configuration error: bad flag, bad policy file, bad image reference."""
    SCAN_ERROR = 3
    """Scan or API error: auth, not found, scan status ERROR, malformed or inconsistent response."""
    TIMEOUT = 4
    """Timed out waiting for a scan result."""
    INTERRUPTED = 130
    """Interrupted by Ctrl-C or SIGTERM."""


# When several images are gated at once, the run's code is the worst of theirs. "We could not tell"
# (3, 4) outranks "the image is bad" (1): an error must never be hidden behind a violation.
_RANK = {
    ExitCode.PASS: 0,
    ExitCode.VIOLATION: 1,
    ExitCode.SCAN_ERROR: 2,
    ExitCode.TIMEOUT: 3,
    ExitCode.USAGE: 4,
    ExitCode.INTERRUPTED: 5,
}


def worst(codes: list[ExitCode] | tuple[ExitCode, ...]) -> ExitCode:
    """The exit code of a run made of several per-image outcomes (PASS for none)."""
    return max(codes, key=_RANK.__getitem__, default=ExitCode.PASS)
