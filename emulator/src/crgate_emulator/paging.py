"""Yandex-style paging: ``page_size`` 0 means 100, at most 1000; opaque page tokens bound to the query."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

import grpc

from crgate_emulator.rpc import GrpcAbort

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MAX_TOKEN_LENGTH = 100  # the stubs' validation option on every page_token

T = TypeVar("T")


def paginate(items: Sequence[T], page_size: int, page_token: str, scope: str) -> tuple[list[T], str]:
    """One page of ``items`` and the next page token ("" on the last page).

    ``scope`` identifies the query (method and filters); a token from another query is rejected.
    """
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise GrpcAbort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size: must be in range 0-{MAX_PAGE_SIZE}")
    size = page_size or DEFAULT_PAGE_SIZE
    offset = _decode(page_token, scope) if page_token else 0
    page = list(items[offset : offset + size])
    end = offset + len(page)
    return page, (_encode(end, scope) if end < len(items) else "")


def _fingerprint(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:16]


def _encode(offset: int, scope: str) -> str:
    raw = json.dumps({"o": offset, "s": _fingerprint(scope)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str, scope: str) -> int:
    invalid = GrpcAbort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: invalid page token")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise invalid
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(data, dict) or data.get("s") != _fingerprint(scope):
        raise invalid
    offset = data.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset <= 0:
        raise invalid
    return offset
