"""Writing large JSON documents piece by piece, with the C encoder doing the escaping.

A report with 100,000 findings is mostly one or two long arrays. The document around them (a small
"skeleton") is built as a dict and encoded by ``json.dumps``; each long array is a placeholder in it,
replaced on the way out by items the format encodes one at a time, so the whole document never exists
in memory. Items are single-line JSON texts built from ``string``/``ascii_string`` (the ``json``
module's own C escaping functions): several times faster than encoding a dict per item with
``json.dumps``, which for ``indent=...`` even runs Python's pure encoder.

``Splice.write`` makes everything it writes ``inert``: the skeleton, and the items a batch at a time
(a clean batch, the usual case, is checked by three scans in C; only the items of a batch that is not
are rewritten). So the formats encode fields with the plain escaping functions and never make each
field inert on its own: outside string literals JSON holds no ``#``, no ``section_`` and no character
beyond ASCII, so making a whole line inert changes exactly what making each of its strings inert would.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterable
from itertools import islice
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, TextIO

# What a CI log would act on or a terminal would obey, were the JSON printed there: GitHub's legacy
# "##[command" anywhere in a line, GitLab's "section_start:"/"section_end:", and characters that reorder
# or hide text. JSON may write any character as \uXXXX, so escaping them keeps the document lossless.
_CI_COMMAND = re.compile(r"(?<=#)#(?=\[|(?i:vso)\[)|(?<=(?i:section))_|[^\x00-\x7e]")
_INERT_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in "#_" or unicodedata.category(char) in _INERT_CATEGORIES:
        return f"\\u{ord(char):04x}"
    return char


def inert(text: str) -> str:
    """Encoded JSON ``text`` with CI commands and text-reordering characters written as ``\\uXXXX``:
    the same document once parsed, but nothing a log viewer acts on."""
    if text.isascii() and "#" not in text and "ection_" not in text.lower():
        return text
    return _CI_COMMAND.sub(_escaped, text)


string = encode_basestring
"""``string(value)``: a JSON string literal of ``value``, non-ASCII text kept as is (``ensure_ascii=False``).
Not inert on its own: for text that ``Splice.write`` writes (which makes it inert), or pass it to ``inert``."""

ascii_string = encode_basestring_ascii
"""``ascii_string(value)``: a JSON string literal of ``value`` in ASCII (``\\uXXXX`` escapes, the ``json.dumps``
default). Not inert on its own, as ``string``."""


BATCH = 512  # items joined into one write


class Splice:
    """A JSON document written with some arrays streamed in: ``array()`` gives the placeholder."""

    def __init__(self) -> None:
        self._token = uuid.uuid4().hex
        self._arrays: dict[str, Iterable[str]] = {}

    def array(self, items: Iterable[str]) -> str:
        """A placeholder to put in the skeleton where the array of (already encoded) ``items`` goes."""
        key = f"\x00{self._token}:{len(self._arrays)}\x00"
        self._arrays[key] = items
        return key

    def write(self, out: TextIO, skeleton: Any, *, indent: int | None, ensure_ascii: bool) -> None:
        """Encode ``skeleton`` and write it to ``out``, each placeholder replaced by its array.

        With ``indent`` the items go one per line at the array's depth; without it, one per line too
        (still compact JSON, and readable with line tools).
        """
        separators = (",", ": ") if indent is not None else (",", ":")
        text = inert(json.dumps(skeleton, indent=indent, ensure_ascii=ensure_ascii, separators=separators))
        found = []
        for key, items in self._arrays.items():
            encoded = json.dumps(key, ensure_ascii=ensure_ascii)
            start = text.find(encoded)
            if start < 0 or text.find(encoded, start + 1) >= 0:
                raise AssertionError("a JSON placeholder is missing or repeated")  # a bug in the caller
            found.append((start, len(encoded), items))
        position = 0
        for start, length, items in sorted(found, key=lambda item: item[0]):
            line = text[text.rfind("\n", 0, start) + 1 : start]
            depth = len(line) - len(line.lstrip(" "))  # the indentation of the array's key
            out.write(text[position:start])
            _write_array(out, items, indent, depth)
            position = start + length
        out.write(text[position:])
        out.write("\n")


def _write_array(out: TextIO, items: Iterable[str], indent: int | None, depth: int) -> None:
    inner = "\n" + " " * (depth + (indent or 0))
    closing = "\n" + " " * depth
    iterator = iter(items)
    batch = list(islice(iterator, BATCH))
    if not batch:
        out.write("[]")
        return
    separator = "," + inner
    out.write("[" + inner + _inert_join(separator, batch))
    while batch := list(islice(iterator, BATCH)):
        out.write(separator + _inert_join(separator, batch))
    out.write(closing + "]")


def _inert_join(separator: str, items: list[str]) -> str:
    """The items joined, each made ``inert``; a batch with nothing to rewrite is checked as one text."""
    text = separator.join(items)
    # "section_" in any case ends in "n_" or "N_", which no key of crgate's JSON formats holds: looking for
    # those two first spares lowering the whole batch.
    if text.isascii() and "#" not in text and ("n_" not in text and "N_" not in text or "ection_" not in text.lower()):
        return text
    return separator.join(map(inert, items))
