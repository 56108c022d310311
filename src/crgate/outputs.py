"""Files crgate writes at the end of a run (``--output FORMAT=PATH``, ``--pin-to OUT``), proven writable
before the first billed call and written atomically.

Each destination gets a temporary sibling at once (so a missing directory or a read-only one is exit 2
before any scan, not after minutes of scanning), is filled at the end, flushed to disk and renamed over
the destination: a reader sees the old file or the whole new one, never a part. An existing file's
permissions are kept. On any failure or interruption the temporary files are removed.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from crgate.errors import ConfigError

STDOUT = "-"


@dataclass
class PendingFile:
    """One destination with its temporary sibling, open for writing."""

    path: Path
    option: str
    """How the user named it, for errors: ``--output json=report.json``."""
    _handle: IO[bytes] | None = field(default=None, repr=False)
    _temporary: str | None = None
    _mode: int | None = None

    def open(self) -> None:
        try:
            self._mode = self.path.stat().st_mode & 0o7777
        except FileNotFoundError:
            self._mode = None
        except OSError as error:
            raise self._error(error) from None
        if self.path.is_dir():
            raise ConfigError(f"{self.option}: {self.path} is a directory; give a file path")
        try:
            descriptor, self._temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent or "."
            )
        except OSError as error:
            raise self._error(error) from None
        self._handle = os.fdopen(descriptor, "wb")

    @property
    def stream(self) -> IO[bytes]:
        """The temporary file, to write the whole content into before ``commit``."""
        assert self._handle is not None, "open() first"
        return self._handle

    def commit(self) -> None:
        """Flush to disk and rename over the destination."""
        assert self._handle is not None and self._temporary is not None
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            if self._mode is not None:
                os.chmod(self._temporary, self._mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._temporary, 0o666 & ~umask)
            os.replace(self._temporary, self.path)
            self._temporary = None
        except OSError as error:
            raise self._error(error) from None
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file (nothing happens to the destination)."""
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self._temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._temporary)
            self._temporary = None

    def _error(self, error: OSError) -> ConfigError:
        return ConfigError(f"{self.option}: cannot write {self.path}: {error.strerror or error}")


def parse_output(value: str, formats: Sequence[str]) -> tuple[str, str]:
    """``--output FORMAT=PATH`` as ``(format, path)`` (``-`` for stdout); ConfigError saying what is wrong."""
    fmt, sep, path = value.partition("=")
    if not sep or not path:
        raise ConfigError(f"'{value}' is not FORMAT=PATH (e.g. json=report.json)")
    if fmt not in formats:
        raise ConfigError(f"unknown format '{fmt}' in '{value}'; choose one of {', '.join(formats)}")
    if path != STDOUT:
        target = Path(path)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise ConfigError(f"directory '{parent}' for '{value}' does not exist")
        if target.is_dir():
            raise ConfigError(f"'{path}' is a directory; give a file path")
    return fmt, path


def check_distinct(destinations: Sequence[tuple[str, str]]) -> None:
    """``(option, path)`` pairs that name one file twice, or stdout twice, are exit 2."""
    seen: dict[str, str] = {}
    for option, path in destinations:
        key = STDOUT if path == STDOUT else os.path.realpath(path)
        if key in seen:
            where = "stdout" if key == STDOUT else f"the same file ({path})"
            raise ConfigError(f"{seen[key]} and {option} both write to {where}; give each its own destination")
        seen[key] = option


@contextlib.contextmanager
def pending(files: Sequence[tuple[str, Path]]) -> Iterator[list[PendingFile]]:
    """Open a temporary sibling for every ``(option, path)`` now; remove what was not committed at the end."""
    opened: list[PendingFile] = []
    try:
        for option, path in files:
            file = PendingFile(path, option)
            file.open()
            opened.append(file)
        yield opened
    finally:
        for file in opened:
            file.discard()


@dataclass(frozen=True)
class ReportPlan:
    """Where each report of a run goes: one format on stdout, the human table on stderr when a machine
    format takes stdout, and any number of files."""

    stdout_format: str
    files: tuple[tuple[str, Path, str], ...] = ()
    """``(format, path, option)`` for each ``--output FORMAT=PATH`` that is a file."""
    pin_to: Path | None = None
    """``--pin-to OUT``: the pinned manifest, the last of the files to prepare."""

    @property
    def text_on_stderr(self) -> bool:
        return self.stdout_format != "text"

    def destinations(self) -> list[tuple[str, Path]]:
        """``(option, path)`` of every file of the run, for ``pending``: the reports, then the pin file."""
        files = [(option, path) for _, path, option in self.files]
        return files + ([(f"--pin-to {self.pin_to}", self.pin_to)] if self.pin_to is not None else [])


def plan_reports(
    fmt: str, fmt_given: bool, outputs: Sequence[tuple[str, str]], pin_to: str | None = None
) -> ReportPlan:
    """``--format``, the ``--output`` pairs and ``--pin-to`` as a plan; ConfigError (exit 2) when two
    write one place.

    ``-`` as an output path means stdout, as it means stdin for ``--from-manifest``: it takes the place
    of ``--format`` when that was left at its default; stdout holds one format only.
    """
    options = [(f"--output {out_fmt}={path}", path) for out_fmt, path in outputs]
    if pin_to is not None:
        options.append((f"--pin-to {pin_to}", pin_to))
    to_stdout = [out_fmt for out_fmt, path in outputs if path == STDOUT]
    stdout_format = fmt
    if to_stdout:
        if fmt_given:
            options.insert(0, (f"--format {fmt}", STDOUT))
        stdout_format = to_stdout[0]
    check_distinct(options)
    files = tuple((out_fmt, Path(path), f"--output {out_fmt}={path}") for out_fmt, path in outputs if path != STDOUT)
    return ReportPlan(stdout_format, files, Path(pin_to) if pin_to is not None else None)


def write_reports(
    report: Any,
    plan: ReportPlan,
    files: Sequence[PendingFile],
    stdout: TextIO,
    stderr: TextIO,
    *,
    location: str,
    invocation: Mapping[str, str] | None = None,
    sarif_category: str = "crgate",
) -> None:
    """Every report of ``plan`` in one pass (``crgate.report.write_all``); files are committed after all
    of them are written, so a failure leaves none half-written."""
    from crgate.report import write_all

    def write(destinations: list[tuple[str, TextIO]]) -> None:
        write_all(report, destinations, location=location, invocation=invocation, sarif_category=sarif_category)

    write_planned(plan, files, stdout, stderr, write)


def write_planned(
    plan: ReportPlan,
    files: Sequence[PendingFile],
    stdout: TextIO,
    stderr: TextIO,
    write: Callable[[list[tuple[str, TextIO]]], None],
) -> None:
    """Hand ``write`` every ``(format, stream)`` of ``plan``: stdout's format, the human table on stderr
    when a machine format takes stdout, then each file; files are committed only once all are written."""
    streams = [io.TextIOWrapper(file.stream, encoding="utf-8", newline="\n", write_through=False) for file in files]
    destinations: list[tuple[str, TextIO]] = [(plan.stdout_format, stdout)]
    if plan.text_on_stderr:  # humans still read the table when a machine format takes stdout
        destinations.append(("text", stderr))
    destinations += [(fmt, stream) for (fmt, _, _), stream in zip(plan.files, streams, strict=True)]
    write(destinations)
    stdout.flush()
    stderr.flush()
    for stream in streams:
        stream.flush()
        stream.detach()
    for file in files:
        file.commit()
