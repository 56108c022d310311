"""Reading untrusted input, bounded: every file and stream crgate reads comes through here.

Each kind of input has a size cap (``InputKind``). A file or stream is read up to cap + 1 bytes and no
further, so a huge file, ``/dev/zero`` or an endless pipe costs at most the cap in memory and time; a
regular file whose size is already over the cap is refused before reading. The refusal is the caller's
``ConfigError`` (exit 2) naming the file, its size (or "more than N" for a stream) and the cap.

``check_json_nesting`` bounds JSON depth before ``json.loads`` sees the text, so no saved report can
make the JSON parser (or anything walking its result) recurse without bound.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from crgate.errors import ConfigError

KiB = 1 << 10
MiB = 1 << 20

# Builds the caller's error for a problem with the input (the caller knows how to name it).
ErrorFor = Callable[..., ConfigError]


@dataclass(frozen=True)
class InputKind:
    """One kind of input and how much of it crgate will read."""

    noun: str
    """How a message names the kind: ``a policy file``."""
    cap: int
    """The most bytes accepted."""
    hint: str
    """What to do instead, for the message."""


POLICY = InputKind("a policy file", 1 * MiB, "a policy is a page of YAML: is this the right file?")
MANIFEST = InputKind(
    "a manifest", 32 * MiB, "split the manifests into several files, each passed with its own --from-manifest"
)
# A saved JSON report lists every finding (about 400 bytes each, indented): 100,000 findings take 40 MiB.
SAVED_REPORT = InputKind(
    "a saved report", 128 * MiB, "pass a report written by 'crgate check --format json' or '--output json=FILE'"
)
SCENARIO = InputKind("an emulator scenario", 8 * MiB, "split the scenario or give fewer findings per image")
SERVICE_ACCOUNT_KEY = InputKind(
    "a service account key", 64 * KiB, "give the authorized key JSON written by 'yc iam key create'"
)
CA_FILE = InputKind("a CA certificate file", 4 * MiB, "give only the PEM certificates of the CAs to trust")
# A VEX document is a few statements; a vendor's covering every image it ships runs to a few MiB.
VEX = InputKind("a VEX document", 16 * MiB, "split the VEX statements into several documents, each its own --vex")
# CISA's catalog is about 1.5 MiB (1,300 entries) today.
KEV_CATALOG = InputKind(
    "a KEV catalog", 32 * MiB, "give CISA's known_exploited_vulnerabilities.json (or a file of the same format)"
)
KINDS: tuple[InputKind, ...] = (
    POLICY,
    MANIFEST,
    SAVED_REPORT,
    SCENARIO,
    SERVICE_ACCOUNT_KEY,
    CA_FILE,
    VEX,
    KEV_CATALOG,
)

_CHUNK = 1 * MiB


def size_text(size: int) -> str:
    """``512 bytes``, ``64 KiB``, ``1.5 MiB``: sizes as messages give them."""
    for unit, scale in (("MiB", MiB), ("KiB", KiB)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def read_file(path: str | os.PathLike[str], kind: InputKind, error: ErrorFor) -> bytes:
    """The bytes of the file at ``path``, at most ``kind.cap`` of them.

    ``OSError`` (missing, unreadable, a directory) propagates: callers word that themselves. Over the
    cap: ``error(message)``.
    """
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > kind.cap:
            raise error(
                f"the file is {size_text(info.st_size)} ({info.st_size:,} bytes), over the {size_text(kind.cap)} "
                f"limit for {kind.noun}; {kind.hint}"
            )
        return _read_capped(handle, kind, error, what="the file holds")


def read_bytes(path: str | os.PathLike[str], kind: InputKind, error: ErrorFor) -> bytes:
    """The bytes of the file at ``path``, bounded as ``read_file``; a file that cannot be opened or read
    becomes ``error(message)`` naming what to check."""
    try:
        return read_file(path, kind, error)
    except OSError as exc:
        the = kind.noun.split(" ", 1)[1] if kind.noun.startswith(("a ", "an ")) else kind.noun
        raise error(f"cannot read the {the}: {exc.strerror or exc}; check the path and its permissions") from None


def read_text(path: str | os.PathLike[str], kind: InputKind, error: ErrorFor) -> str:
    """The UTF-8 text of the file at ``path``, bounded as ``read_file``; a file that cannot be opened or
    read, or is not UTF-8, becomes ``error(message)`` naming what to check."""
    return decode_utf8(read_bytes(path, kind, error), error)


def read_stream(stream: BinaryIO, kind: InputKind, error: ErrorFor) -> bytes:
    """At most ``kind.cap`` bytes of ``stream`` (standard input); over the cap: ``error(message)``."""
    return _read_capped(stream, kind, error, what="the input holds")


def _read_capped(handle: BinaryIO, kind: InputKind, error: ErrorFor, *, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total <= kind.cap:
        chunk = handle.read(min(_CHUNK, kind.cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise error(f"{what} more than {size_text(kind.cap)}, the limit for {kind.noun}; {kind.hint}")


def decode_utf8(data: bytes, error: ErrorFor) -> str:
    """``data`` as UTF-8 text (a byte-order mark is dropped); ``error(message, line=N)`` otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"the file is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8",
            line=line,
        ) from None


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_nesting(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (strings do not count), without parsing it
    and without recursion; for text that is not JSON the number means little, and the parser will say."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_json_nesting(text: str, limit: int, error: ErrorFor) -> None:
    """Refuse JSON nesting deeper than ``limit`` (``error(message)``), before ``json.loads`` recurses."""
    depth = json_nesting(text)
    if depth > limit:
        raise error(f"the JSON nests {depth} levels deep, more than the {limit} this file can need")


class DuplicateKey(ValueError):
    """A JSON object names one key twice (``args[0]``): ``json.loads`` would silently keep the last."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads`` that raises ``DuplicateKey``: an edited file can hide a
    value behind a second copy of its key, and which one a reader keeps is not for crgate to guess."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_json_text(text: str, data: object, error: ErrorFor) -> None:
    """Refuse parsed JSON holding a lone UTF-16 surrogate (``"\\ud800"``): JSON allows the escape, but
    such a string cannot be printed or written as UTF-8, so it would fail later, far from its cause.
    Only texts with a surrogate escape at all pay for the exact check."""
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(
            f"the JSON holds a lone UTF-16 surrogate escape (\\u{ord(exc.object[exc.start]):04x}), which is not "
            "text; the file was edited or corrupted"
        ) from None


def load_json(text: str, max_depth: int, error: ErrorFor, *, fix: str = "") -> Any:
    """``text`` parsed strictly: nesting bounded before ``json.loads`` recurses, a key given twice in one
    object refused (``unique_keys``), no lone surrogate; every refusal is ``error(message)``, ``fix``
    appended to the message of invalid JSON."""
    check_json_nesting(text, max_depth, error)
    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as duplicate:
        raise error(f"the key {duplicate.args[0]!r} appears twice in one object; keep one") from None
    except (ValueError, RecursionError) as invalid:  # ValueError: JSONDecodeError, or an int of 5000 digits
        raise error(f"not valid JSON: {invalid}{f'; {fix}' if fix else ''}") from None
    check_json_text(text, data, error)
    return data


def read_ca_file(path: str) -> bytes:
    """The PEM certificates of ``--ca-file``; ConfigError naming the file when it is unusable."""

    def too_large(message: str) -> ConfigError:
        return ConfigError(f"--ca-file {path}: {message}")

    try:
        data = read_file(path, CA_FILE, too_large)
    except OSError as error:
        raise ConfigError(f"--ca-file {path}: cannot read: {error.strerror or error}") from error
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(f"--ca-file {path}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
    return data
