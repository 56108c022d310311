"""crgate's own exceptions. Third-party errors (gRPC, YAML, OS) are translated into these once, at the
boundary where they happen; only the CLI turns them into exit codes (see ``exit_code_for``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crgate.exitcodes import ExitCode
from crgate.model import ErrorInfo, ErrorKind


class CrgateError(Exception):
    """Base class. ``str(err)`` is a complete, user-facing message (never a secret).

    Each class names its exit code and the ``kind`` reports show; subclasses override both.
    """

    exit_code: ExitCode = ExitCode.SCAN_ERROR
    kind: ErrorKind = ErrorKind.SCAN


class ConfigError(CrgateError):
    """Bad flag, bad configuration, bad input file: the user must change something (exit 2)."""

    exit_code = ExitCode.USAGE
    kind = ErrorKind.CONFIG


class PolicyError(ConfigError):
    """The policy file is unusable. Carries where: file, line (1-based, when known) and key path."""

    def __init__(self, message: str, *, source: str, line: int | None = None, key: str | None = None):
        self.message = message
        self.source = source
        self.line = line
        self.key = key
        where = source if line is None else f"{source}:{line}"
        what = f" (key '{key}')" if key else ""
        super().__init__(f"policy {where}{what}: {message}")


class ImageRefError(ConfigError):
    """An image reference that cannot be parsed."""


class ScanError(CrgateError):
    """The scanner or another API answered with an error, or could not be asked (exit 3)."""

    exit_code = ExitCode.SCAN_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        method: str | None = None,
        request_ids: Sequence[str] = (),
        scan_result_id: str | None = None,
    ):
        self.message = message
        self.code = code
        self.method = method
        self.request_ids = tuple(request_ids)
        self.scan_result_id = scan_result_id
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        details = []
        if self.method:
            details.append(f"method {self.method}")
        if self.code:
            details.append(f"code {self.code}")
        if self.scan_result_id:
            details.append(f"scan result {self.scan_result_id}")
        if self.request_ids:
            details.append("request id " + ", ".join(self.request_ids))
        if details:
            parts.append(f"[{'; '.join(details)}]")
        return " ".join(parts)


class ScanFailedError(ScanError):
    """The scanner says the scan itself failed: the operation ended in an error, or status ERROR."""


class ScanQuotaError(ScanError):
    """The cloud refused to start a scan because its quota of concurrent scans is in use. The refused
    call started nothing; the run waits for a slot (it becomes a timeout only when ``--timeout`` passes).

    ``resume_key`` is set when an earlier attempt of the same call may have started a scan after all
    (its answer was lost): the next attempt must send that idempotency key again, never a new one.
    """

    def __init__(self, message: str, *, resume_key: str | None = None, **details: Any):
        self.resume_key = resume_key
        super().__init__(message, **details)


class UnsupportedCallError(ScanError):
    """An optional call the server does not support (INVALID_ARGUMENT, UNIMPLEMENTED): crgate goes on
    without what it would have learnt."""


class ImageNotFoundError(ScanError):
    """The image (or its repository) does not exist in the registry."""

    kind = ErrorKind.NOT_FOUND


class MalformedResponseError(ScanError):
    """The API answered, but the answer is malformed, inconsistent or not a usable result."""

    kind = ErrorKind.MALFORMED


class UndeliveredReportError(CrgateError):
    """A report or pin file could not be written after the scans (a full disk, a closed pipe), or could
    not be made as its consumer would take it (a dotenv file over GitLab's limit): the gate's answer did
    not reach its reader, so the run must not exit 0 or 1 (exit 3)."""

    exit_code = ExitCode.SCAN_ERROR


class ScanTimeoutError(CrgateError):
    """The overall deadline passed before the scan finished (exit 4)."""

    exit_code = ExitCode.TIMEOUT
    kind = ErrorKind.TIMEOUT

    def __init__(self, message: str, *, scan_result_id: str | None = None, operation_id: str | None = None):
        self.scan_result_id = scan_result_id
        self.operation_id = operation_id
        super().__init__(message)


class InterruptedRunError(CrgateError):
    """The run was interrupted (Ctrl-C / SIGTERM) while this work was in flight (exit 130)."""

    exit_code = ExitCode.INTERRUPTED
    kind = ErrorKind.INTERRUPTED


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for an error; anything unexpected fails closed as a scan error."""
    if isinstance(error, CrgateError):
        return error.exit_code
    return ExitCode.SCAN_ERROR


def error_info(error: BaseException) -> ErrorInfo:
    """The plain description of an image's error that reports carry (an unexpected one fails closed)."""
    if not isinstance(error, CrgateError):
        return ErrorInfo(ErrorKind.SCAN, f"internal error: {type(error).__name__}: {error}", ExitCode.SCAN_ERROR)
    scan = error if isinstance(error, ScanError) else None
    return ErrorInfo(
        kind=error.kind,
        message=str(error),
        exit_code=error.exit_code,
        code=scan.code if scan else None,
        method=scan.method if scan else None,
        request_ids=scan.request_ids if scan else (),
    )
