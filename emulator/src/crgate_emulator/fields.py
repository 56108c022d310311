"""Strict readers of plain scenario data (as from ``yaml.safe_load``): each checks one field's type and
range and fails with a ``ConfigError`` naming the source, line, key path and what was expected.
``scenario``, ``identities`` and ``clouds`` build on them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from crgate.errors import ConfigError
from crgate.yamlstrict import join_path as join

ID_RE = re.compile(r"[a-z0-9]+")
MAX_ID = 50
# gRPC status names, as scenario fields spell codes (``OK`` only where a fault script lets a call through).
GRPC_CODES: tuple[str, ...] = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


class FieldParser:
    """The readers, bound to the source name used in messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str, node: Any = None) -> NoReturn:
        line = getattr(node, "line", None)
        where = f"{self.source}:{line}" if line else self.source
        raise ConfigError(f"emulator scenario {where} (key '{path or '<root>'}'): {message}")

    def mapping(self, value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                self.fail(join(path, str(key)), f"unknown key (allowed: {', '.join(allowed)})", value)
        for key in required:
            if value.get(key) is None:
                self.fail(join(path, key), "required key is missing", value)
        return dict(value)

    def seq(self, value: Any, path: str, parent: Any = None) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {kind(value)}", parent)
        return value

    def string(self, value: Any, path: str, parent: Any, *, default: str | None = None) -> str:
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value:
            hint = " (quote it)" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            self.fail(path, f"expected a non-empty string, got {kind(value)}{hint}", parent)
        return value

    def text(self, value: Any, path: str, parent: Any) -> str:
        """An optional free-text field: absent or null means empty."""
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {kind(value)} (quote it)", parent)
        return value

    def ident(self, value: Any, path: str, parent: Any) -> str:
        text = self.string(value, path, parent)
        if not ID_RE.fullmatch(text) or len(text) > MAX_ID:
            self.fail(path, f"{text!r} is not an id ([a-z0-9]+, at most {MAX_ID} characters)", parent)
        return text

    def number(self, value: Any, path: str, parent: Any, *, default: float, minimum: float = 0.0) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.fail(path, f"expected a number >= {minimum:g}, got {value!r}", parent)
        return float(value)

    def integer(self, value: Any, path: str, parent: Any, *, default: int, minimum: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected an integer >= {minimum}, got {value!r}", parent)
        return value

    def boolean(self, value: Any, path: str, parent: Any, *, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}", parent)
        return value

    def choice(self, value: Any, path: str, parent: Any, choices: Sequence[str]) -> str:
        if not isinstance(value, str) or value.upper() not in choices:
            self.fail(path, f"expected one of {', '.join(choices)}, got {value!r}", parent)
        return value.upper()

    def timestamp(self, value: Any, path: str, parent: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self.fail(path, f"expected an RFC 3339 timestamp, got {value!r}", parent)
        if not isinstance(value, dt.datetime):
            self.fail(path, f"expected an RFC 3339 timestamp, got {value!r}", parent)
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, Mapping) else type(value).__name__
    )
