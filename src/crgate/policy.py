"""The policy file (format version 1) and its strict loader.

Pure: no I/O beyond reading the policy file itself. Every problem becomes a ``PolicyError`` that
names the file, the 1-based line and the dotted key path, and says what to write instead.

The loader composes the YAML into a node tree (which keeps line numbers) and walks it; Python values
are built only for scalars. Adding a key to the format is a table change: a new entry in
``_TOP_LEVEL_KEYS`` (or ``_THRESHOLD_KEYS``) with a parser, plus the field on ``Policy``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crgate.errors import PolicyError
from crgate.model import THRESHOLD_KEYS, Policy

BUILTIN_DEFAULT_SOURCE = "built-in default"
DEFAULT_POLICY = Policy(
    version=1,
    thresholds=MappingProxyType({"critical": 0, "high": 0}),
    source=BUILTIN_DEFAULT_SOURCE,
)
DISCOVERY_FILES: tuple[str, ...] = (".crgate.yaml", "crgate.yaml")
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

_NULL_TAG = "tag:yaml.org,2002:null"
# Integers written the way every YAML version reads the same: no leading zeros, 0x/0o/0b prefixes,
# underscores or base-60 (PyYAML's YAML 1.1 reads ``010`` as 8 and ``1:30`` as 90).
_PLAIN_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_THRESHOLDS_EXAMPLE = "'thresholds: {critical: 0, high: 0}'"
# Names users reach for that difflib cannot guess; used for the "did you mean" hint.
_ALIASES = {"other": "undefined", "unknown": "undefined", "all": "total", "sum": "total"}


# --------------------------------------------------------------------------------------------------
# Public API


def parse_policy(text: str, source: str) -> Policy:
    """Parse policy text; ``source`` names the file in error messages."""
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects forbidden characters up front
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, source) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise _reader_error(exc, text, source) from None
    try:
        return _Walker(loader, source).policy(root)
    finally:
        loader.dispose()


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse a policy file; the path, as given, is the source named in messages."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError(
            f"cannot read the policy file: {reason}; check the path and its permissions", source=source
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            f"the file is not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8",
            source=source,
            line=line,
        ) from None
    return parse_policy(text, source)


def discover_policy(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Policy:
    """The policy to use: ``explicit`` if given (it must exist), else the first of ``DISCOVERY_FILES``
    found in ``cwd`` (default: the current directory), else ``DEFAULT_POLICY``.

    ``explicit`` is opened as given (relative to the process's working directory). A discovery file
    that exists but cannot be read or parsed is an error, never a silent fallback to the default.
    """
    if explicit is not None:
        return load_policy(explicit)
    for name in DISCOVERY_FILES:
        candidate = Path(name) if cwd is None else Path(cwd) / name
        if os.path.lexists(candidate):  # a dangling symlink is an error, not "no policy"
            return load_policy(candidate)
    return DEFAULT_POLICY


def describe_policy(policy: Policy) -> str:
    """A one-line human summary, e.g. ``critical <= 0, high <= 0; medium, ...: no limit``."""
    limited = [f"{key} <= {policy.thresholds[key]}" for key in THRESHOLD_KEYS if key in policy.thresholds]
    unlimited = [key for key in THRESHOLD_KEYS if key not in policy.thresholds]
    parts = []
    if limited:
        parts.append(", ".join(limited))
    if unlimited:
        parts.append(", ".join(unlimited) + ": no limit")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------
# YAML-level errors


def _yaml_error(exc: yaml.MarkedYAMLError, source: str) -> PolicyError:
    """Translate a PyYAML parse/compose error, pointing at its problem mark."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.composer.ComposerError) and "single document" in (exc.context or ""):
        return PolicyError(
            "the file holds more than one YAML document (a second '---'); keep a single policy document",
            source=source,
            line=line,
        )
    detail = "; ".join(p for p in (exc.context, exc.problem) if p)
    return PolicyError(f"invalid YAML: {detail}; fix the syntax", source=source, line=line)


def _reader_error(exc: yaml.YAMLError, text: str, source: str) -> PolicyError:
    """Translate a ReaderError (a forbidden character), which carries an offset but no line."""
    position = getattr(exc, "position", None)
    line = text[:position].count("\n") + 1 if isinstance(position, int) else None
    character = getattr(exc, "character", None)
    what = f"the character U+{character:04X}" if isinstance(character, int) else "a character"
    return PolicyError(f"invalid YAML: {what} is not allowed in a YAML file; remove it", source=source, line=line)


# --------------------------------------------------------------------------------------------------
# The node walker


_Pair = tuple[str, ScalarNode, Node]
# A key parser gets the walker, the key's dotted path, its line and its value node.
_Parser = Callable[["_Walker", str, int, Node], object]


@dataclass(frozen=True)
class _Key:
    """One known key of a mapping: how to parse its value, and what to say when it is missing."""

    parse: _Parser
    required: bool = False
    missing_hint: str = ""


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a single value"


class _Walker:
    """Walks a composed policy document, turning nodes into a ``Policy`` or a ``PolicyError``."""

    def __init__(self, loader: yaml.SafeLoader, source: str):
        self.loader = loader
        self.source = source

    def error(self, message: str, line: int | None = None, key: str | None = None) -> PolicyError:
        return PolicyError(message, source=self.source, line=line, key=key)

    # -- document ----------------------------------------------------------------------------------

    def policy(self, root: Node | None) -> Policy:
        """Validate the whole document and build the ``Policy``."""
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL_TAG):
            raise self.error(
                f"the policy file is empty (or only comments); write at least 'version: 1' and {_THRESHOLDS_EXAMPLE}"
            )
        self.check_duplicates(root, "", set())
        if not isinstance(root, MappingNode):
            raise self.error(
                f"the policy must be a YAML mapping with the keys 'version' and 'thresholds', got {_kind(root)}",
                line=_line(root),
            )
        values = self.mapping(root, "", _TOP_LEVEL_KEYS, first="version")
        return Policy(
            version=cast(int, values["version"]),
            thresholds=cast("Mapping[str, int]", values["thresholds"]),
            source=self.source,
        )

    def check_duplicates(self, node: Node, path: str, seen: set[int]) -> None:
        """Reject a key repeated in any mapping of the document (PyYAML would keep the last)."""
        if id(node) in seen:  # aliases can share nodes, even cyclically
            return
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first_lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    continue  # reported as "keys must be names" by mapping()
                key_path = _join(path, key_node.value)
                if key_node.value in first_lines:
                    raise self.error(
                        f"duplicate key '{key_node.value}' (first set on line "
                        f"{first_lines[key_node.value]}); YAML would silently keep only the last one, "
                        "so remove one of them",
                        line=_line(key_node),
                        key=key_path,
                    )
                first_lines[key_node.value] = _line(key_node)
                self.check_duplicates(value_node, key_path, seen)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.check_duplicates(item, f"{path}[{index}]", seen)

    # -- mappings ----------------------------------------------------------------------------------

    def pairs(self, node: MappingNode, path: str) -> list[_Pair]:
        """The mapping's (name, key node, value node) triples; every key must be a plain name."""
        result: list[_Pair] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.error(
                    f"keys must be plain names, got {_kind(key_node)} as a key",
                    line=_line(key_node),
                    key=path or None,
                )
            result.append((key_node.value, key_node, value_node))
        return result

    def mapping(
        self, node: MappingNode, path: str, known: Mapping[str, _Key], first: str | None = None
    ) -> dict[str, object]:
        """Parse a mapping against its table of known keys.

        ``first`` (``version``) is parsed before anything else, so a file of a newer format reports
        its version rather than keys this crgate lacks. Unknown keys are reported before missing ones,
        so a typo (``versoin``) gets a "did you mean" rather than "missing 'version'".
        """
        pairs = self.pairs(node, path)
        values: dict[str, object] = {}
        for name, key_node, value_node in pairs:
            if name == first:
                values[name] = known[name].parse(self, _join(path, name), _line(key_node), value_node)
        for name, key_node, _ in pairs:
            if name not in known:
                raise self.unknown_key(name, _join(path, name), _line(key_node), known)
        if first is not None and first not in values:
            self.check_present(node, path, known, values, only=first)
        for name, key_node, value_node in pairs:
            if name not in values:
                values[name] = known[name].parse(self, _join(path, name), _line(key_node), value_node)
        self.check_present(node, path, known, values)
        return values

    def check_present(
        self,
        node: MappingNode,
        path: str,
        known: Mapping[str, _Key],
        values: Mapping[str, object],
        only: str | None = None,
    ) -> None:
        """Raise for the first required key (or just ``only``) that the mapping lacks."""
        for name, spec in known.items():
            if spec.required and name not in values and only in (None, name):
                raise self.error(
                    f"missing required key '{name}'; {spec.missing_hint}",
                    line=_line(node),
                    key=_join(path, name),
                )

    def unknown_key(self, name: str, key_path: str, line: int, known: Collection[str]) -> PolicyError:
        """An unknown key, with a "did you mean" hint and the valid keys."""
        where = f" under '{key_path.rsplit('.', 1)[0]}'" if "." in key_path else ""
        alias = _ALIASES.get(name.lower())
        close = [alias] if alias in known else difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ";"
        return self.error(
            f"unknown key '{name}'{where}{hint} valid keys are: {', '.join(known)}",
            line=line,
            key=key_path,
        )

    # -- scalars -----------------------------------------------------------------------------------

    def scalar(self, node: ScalarNode, key_path: str, line: int) -> object:
        """The Python value PyYAML's safe schema gives a scalar (``yes`` is a boolean there)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise self.error(
                f"cannot read the value ({exc.problem}); write a plain whole number without a YAML tag",
                line=line,
                key=key_path,
            ) from None

    def whole_number(self, node: Node, key_path: str, line: int, what: str, null_hint: str, example: int = 0) -> int:
        """A whole number written as plain decimal digits, or a ``PolicyError`` that says why not."""
        must = f"{what} must be a whole number"
        if not isinstance(node, ScalarNode):
            raise self.error(f"{must}, got {_kind(node)}", line=line, key=key_path)
        value = self.scalar(node, key_path, line)
        text = node.value
        if value is None:
            raise self.error(f"{must}, but it has no value; {null_hint}", line=line, key=key_path)
        if isinstance(value, bool):
            raise self.error(
                f"{must}, got {text!r}, which YAML reads as the boolean {str(value).lower()}; "
                f"write a number such as {example}",
                line=line,
                key=key_path,
            )
        if isinstance(value, int):
            if not _PLAIN_DECIMAL.fullmatch(text):
                raise self.error(
                    f"{must} in plain decimal digits: YAML 1.1 reads {text!r} as {value} but other "
                    "tools may not; write it without leading zeros, prefixes, underscores or colons",
                    line=line,
                    key=key_path,
                )
            return value
        if isinstance(value, float):
            if math.isfinite(value) and value.is_integer():
                fix = f"write it without the decimal point: {int(value)}"
            else:
                fix = f"write a whole number such as {example}"
            raise self.error(f"{must}, got the decimal number {text}; {fix}", line=line, key=key_path)
        if isinstance(value, str):
            if _PLAIN_DECIMAL.fullmatch(value.strip()):
                fix = f"write the number without quotes: {value.strip()}"
            else:
                fix = f"write a number such as {example}"
            raise self.error(f"{must}, got the text {value!r}; {fix}", line=line, key=key_path)
        kind = "a date" if isinstance(value, (dt.date, dt.datetime)) else f"a {type(value).__name__}"
        raise self.error(f"{must}, got {kind} ({text!r}); write a number such as {example}", line=line, key=key_path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --------------------------------------------------------------------------------------------------
# Key parsers and the tables of known keys


def _parse_version(walker: _Walker, key_path: str, line: int, node: Node) -> int:
    """``version``: must be a supported format version (only 1 today)."""
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    version = walker.whole_number(node, key_path, line, "'version'", "write 'version: 1'", example=1)
    if version not in SUPPORTED_VERSIONS:
        raise walker.error(
            f"unsupported policy version {version}; this crgate reads version {supported}: write "
            "'version: 1', or upgrade crgate for a newer format",
            line=line,
            key=key_path,
        )
    return version


def _parse_limit(walker: _Walker, key_path: str, line: int, node: Node) -> int:
    """One threshold: a maximum count, ``>= 0``. (A later format adds a mapping form here.)"""
    limit = walker.whole_number(
        node,
        key_path,
        line,
        "the limit",
        "write a number (0 allows none), or remove the key for no limit",
    )
    if limit < 0:
        raise walker.error(
            f"the limit must not be negative, got {limit}; write 0 to allow none, or remove the key for no limit",
            line=line,
            key=key_path,
        )
    return limit


def _parse_thresholds(walker: _Walker, key_path: str, line: int, node: Node) -> Mapping[str, int]:
    """``thresholds``: a non-empty mapping of threshold key -> limit."""
    no_limits = f"without limits every image would pass; set at least one, e.g. {_THRESHOLDS_EXAMPLE}"
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
        raise walker.error(f"'thresholds' is empty; {no_limits}", line=line, key=key_path)
    if not isinstance(node, MappingNode):
        raise walker.error(
            f"'thresholds' must be a mapping of severity to maximum count, e.g. {_THRESHOLDS_EXAMPLE}, "
            f"got {_kind(node)}",
            line=line,
            key=key_path,
        )
    if not node.value:
        raise walker.error(f"'thresholds' sets no limits; {no_limits}", line=line, key=key_path)
    values = walker.mapping(node, key_path, _THRESHOLD_KEYS)
    return MappingProxyType({key: cast(int, values[key]) for key in THRESHOLD_KEYS if key in values})


# Top-level keys of format version 1, in the order they are documented. Add new keys here.
_TOP_LEVEL_KEYS: dict[str, _Key] = {
    "version": _Key(_parse_version, required=True, missing_hint="add 'version: 1' as the first line"),
    "thresholds": _Key(
        _parse_thresholds,
        required=True,
        missing_hint=f"without limits every image would pass; add e.g. {_THRESHOLDS_EXAMPLE}",
    ),
}
_THRESHOLD_KEYS: dict[str, _Key] = {key: _Key(_parse_limit) for key in THRESHOLD_KEYS}

# The names the loader accepts, for tests and tools that must stay in sync (e.g. the JSON Schema).
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(_TOP_LEVEL_KEYS)
