"""Files crgate writes at the end of a run (``--output FORMAT=PATH``, ``--pin-to OUT``), proven writable
before the first billed call and written atomically when they are files.

Each file destination gets a temporary sibling at once (so a missing directory or a read-only one is exit
2 before any scan, not after minutes of scanning), is filled at the end, flushed to disk and renamed over
the destination: a reader sees the old file or the whole new one, never a part. An existing file's
permissions are kept. On any failure or interruption the temporary files are removed. Devices, FIFOs and
descriptor names (``/dev/stderr``, ``/dev/fd/N``) are opened at once and written directly, never replaced;
the names of stdout (``/dev/stdout``, ``/dev/fd/1``) are ``-``. A write that fails after the scans is
``UndeliveredReportError`` (exit 3), never a pass.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from crgate.errors import ConfigError, UndeliveredReportError

STDOUT = "-"


_STDOUT_NAMES = frozenset({"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})
"""Paths that are this process's stdout: ``-`` by another name (one format on stdout, and a duplicate
of ``-`` is refused)."""

_DESCRIPTOR = re.compile(r"^/(?:dev/fd|proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd)/\d+$|^/dev/std(?:in|out|err)$")
"""A path naming an open descriptor (``/dev/stderr``, ``/dev/fd/N``, ``>(...)``): written through, never
replaced; whatever it leads to may be a terminal, a pipe or the CI log's own file."""


def as_stdout(path: str) -> str:
    """``-`` for any name of stdout, else ``path`` unchanged."""
    return STDOUT if path in _STDOUT_NAMES else path


def _names_descriptor(path: Path) -> bool:
    """Whether ``path`` is, or links (through at most 8 links) to, a name of an open descriptor."""
    current = os.path.abspath(path)
    for _ in range(8):
        if _DESCRIPTOR.match(current):
            return True
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or gone): the walk ends here
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return False


@dataclass
class PendingFile:
    """One destination, open for writing from the start of the run.

    A regular file (or a path that does not exist yet) gets a temporary sibling that ``commit`` renames
    over the file it resolves to (a link to a regular file stays a link). Anything else that takes
    writes - a character device (``/dev/null``, a terminal), a FIFO, a pipe named by ``/dev/fd/N`` - is
    opened at once and written directly at ``commit``, never renamed over: as root a rename would put a
    regular file in the place of the device node. Its report is held in memory until then, so a failed
    run never sends half a report into a pipe.
    """

    path: Path
    option: str
    """How the user named it, for errors: ``--output json=report.json``."""
    _handle: IO[bytes] | None = field(default=None, repr=False)
    _temporary: str | None = None
    _mode: int | None = None
    _target: str | None = None
    """What the rename replaces: the real path of the destination."""
    _direct: int | None = None
    """The open descriptor of a destination written directly."""

    def open(self) -> None:
        try:
            info: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            info = None
        except OSError as error:
            raise self._error(error) from None
        if info is None and self.path.is_symlink():
            raise ConfigError(
                f"{self.option}: {self.path} is a link to {os.readlink(self.path)}, which does not "
                "exist; give a file path or make what it links to"
            )
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{self.option}: {self.path} is a directory; give a file path")
        if info is not None and (not stat.S_ISREG(info.st_mode) or _names_descriptor(self.path)):
            self._open_direct(info)
            return
        self._mode = None if info is None else info.st_mode & 0o7777
        self._target = os.path.realpath(self.path)
        directory = os.path.dirname(self._target) or "."
        try:
            descriptor, self._temporary = tempfile.mkstemp(
                prefix=f".{os.path.basename(self._target)}.", suffix=".tmp", dir=directory
            )
        except OSError as error:
            if info is None:
                raise self._error(error) from None
            raise ConfigError(
                f"{self.option}: cannot write {self.path}: crgate writes a report next to its file and renames it "
                f"into place, and {directory} takes no new file ({error.strerror or error}); give a path in a "
                "writable directory"
            ) from None
        self._handle = os.fdopen(descriptor, "wb")

    def _open_direct(self, info: os.stat_result) -> None:
        kind = info.st_mode
        if not (stat.S_ISCHR(kind) or stat.S_ISFIFO(kind) or stat.S_ISREG(kind)):
            what = "a block device" if stat.S_ISBLK(kind) else "a socket" if stat.S_ISSOCK(kind) else "not a file"
            raise ConfigError(f"{self.option}: {self.path} is {what}; give a file, a FIFO or a character device")
        # O_NONBLOCK: a FIFO nobody reads would block the open for ever; it is refused instead. O_APPEND: a
        # descriptor name may lead to the very file the log goes to, which must not be cut short.
        flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_APPEND
        try:
            self._direct = os.open(self.path, flags)
        except OSError as error:
            if error.errno == errno.ENXIO and stat.S_ISFIFO(kind):
                raise ConfigError(
                    f"{self.option}: nothing reads the FIFO {self.path}; start its reader before crgate"
                ) from None
            raise self._error(error) from None
        os.set_blocking(self._direct, True)
        self._handle = io.BytesIO()

    @property
    def stream(self) -> IO[bytes]:
        """Where the whole content goes before ``commit``: the temporary file, or memory."""
        assert self._handle is not None, "open() first"
        return self._handle

    def commit(self) -> None:
        """Deliver: rename the flushed temporary file over the destination, or write the content directly.

        A failure here comes after the scans: the report is not delivered (exit 3, ``UndeliveredReportError``).
        """
        assert self._handle is not None
        try:
            if self._direct is not None:
                self._write_direct()
                return
            assert self._temporary is not None and self._target is not None
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            if self._mode is not None:
                os.chmod(self._temporary, self._mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._temporary, 0o666 & ~umask)
            os.replace(self._temporary, self._target)
            self._temporary = None
        except OSError as error:
            raise UndeliveredReportError(
                f"{self.option}: the report was not delivered: writing {self.path} failed ({error.strerror or error})"
            ) from None
        finally:
            self.discard()

    def _write_direct(self) -> None:
        assert self._direct is not None and isinstance(self._handle, io.BytesIO)
        data = memoryview(self._handle.getvalue())
        written = 0
        while written < len(data):  # each write takes at least one byte or raises: bounded by the size
            count = os.write(self._direct, data[written:])
            if count <= 0:
                raise OSError(errno.EIO, f"short write: {written} of {len(data)} bytes")
            written += count

    def discard(self) -> None:
        """Close what is open and remove the temporary file (nothing happens to the destination)."""
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self._direct is not None:
            with contextlib.suppress(OSError):
                os.close(self._direct)
            self._direct = None
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
    if as_stdout(path) != STDOUT:
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
        key = STDOUT if as_stdout(path) == STDOUT else os.path.realpath(path)
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
    options = [(f"--output {out_fmt}={path}", path) for out_fmt, path in outputs]  # as the user named them
    if pin_to is not None:
        options.append((f"--pin-to {pin_to}", pin_to))
    outputs = [(out_fmt, as_stdout(path)) for out_fmt, path in outputs]
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
