"""Request validation shared by the handlers: the ``GrpcAbort`` they raise, id checks, filters."""

from __future__ import annotations

import re

import grpc

MAX_ID_LENGTH = 50  # the stubs' "<=50" validation option on every id field
MAX_FILTER_LENGTH = 1000
SCAN_STATUSES = ("RUNNING", "READY", "ERROR")
REPOSITORY_NAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*")
_FILTER_RE = re.compile(r"""\s*([a-z_]+)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*""")


class GrpcAbort(Exception):
    """A gRPC error answer: raised by handlers and state, turned into ``context.abort`` by the dispatcher."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> GrpcAbort:
    return GrpcAbort(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> GrpcAbort:
    return GrpcAbort(grpc.StatusCode.NOT_FOUND, message)


def require_id(value: str, field: str) -> str:
    """A required id field: non-empty and at most 50 characters."""
    if not value:
        raise invalid(f"{field}: field is required")
    return check_id(value, field)


def check_id(value: str, field: str) -> str:
    """An optional id field: at most 50 characters."""
    if len(value) > MAX_ID_LENGTH:
        raise invalid(f"{field}: length must be <= {MAX_ID_LENGTH}")
    return value


def parse_equality_filter(text: str, field: str) -> str | None:
    """The value of a ``<field>="<value>"`` filter; None for an empty filter; INVALID_ARGUMENT otherwise."""
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid(f"filter: length must be <= {MAX_FILTER_LENGTH}")
    match = _FILTER_RE.fullmatch(text)
    if not match or match.group(1) != field:
        raise invalid(f'filter: cannot parse {text!r}; the emulator supports only {field}="<value>"')
    return match.group(2) if match.group(2) is not None else match.group(3)


def parse_status_filter(text: str) -> str | None:
    """``status="RUNNING"`` and the like, for ``ScannerService.List``."""
    value = parse_equality_filter(text, "status")
    if value is not None and value not in SCAN_STATUSES:
        raise invalid(f"filter: unknown status {value!r}; expected one of {', '.join(SCAN_STATUSES)}")
    return value


def reject_order_by(order_by: str) -> None:
    """The emulator has one fixed order; refuse rather than silently ignore another."""
    if order_by:
        raise invalid("order_by: not supported by the emulator")


def refuse_unsupported_filter(answer: str, text: str) -> None:
    """A server configured not to support ``filter`` (``scan_list_filter``) refuses any non-empty one."""
    if answer == "SUPPORTED" or not text.strip():
        return
    if answer == "INVALID_ARGUMENT":
        raise invalid(f"filter: unsupported filter expression {text[:100]!r}")
    raise GrpcAbort(grpc.StatusCode[answer], "filtering scan results is not implemented")
