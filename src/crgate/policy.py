"""The policy file (format version 1) and its strict loader.

Pure: no I/O beyond reading the policy file itself. Every problem becomes a ``PolicyError`` that
names the file, the 1-based line and the dotted key path, and says what to write instead.

The loader composes the YAML into a node tree (which keeps line numbers) and walks it; Python values
are built only for scalars. Adding a key to the format is a table change: a new entry in
``_TOP_LEVEL_KEYS`` (or one of the nested tables: ``_THRESHOLD_KEYS``, ``_LIMIT_KEYS``,
``_IGNORE_RULE_KEYS``, ``_BASELINE_KEYS``, ``_REUSE_KEYS``) with a parser, plus the field on ``Policy``.
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

from crgate.errors import ImageRefError, PolicyError
from crgate.images import parse_image_ref
from crgate.model import THRESHOLD_KEYS, BaselineSpec, IgnoreRule, Policy

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
_NUMBER_FIX = "write a plain whole number without a YAML tag"
_THRESHOLDS_EXAMPLE = "'thresholds: {critical: 0, high: 0}'"
_LIMIT_FORM_EXAMPLE = "{max: 0, fixable_only: true}"
_IGNORE_EXAMPLE = "'- {id: CVE-2023-4863, reason: \"not reachable in this service\"}'"
_BASELINE_EXAMPLE = "'baseline: {image: cr.yandex/<registry-id>/<repository>:<tag>}'"
# Booleans that every YAML version reads the same (the YAML 1.2 core schema). PyYAML (YAML 1.1) also
# reads yes/no/on/off as booleans, YAML 1.2 tools read them as text: both readings are rejected.
_BOOLEAN_WORDS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_CVE_ID = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}", re.IGNORECASE)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION = re.compile(r"(0|[1-9][0-9]*)([smhd])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION_EXAMPLES = "90s, 15m, 24h or 7d"
# Names users reach for that difflib cannot guess; used for the "did you mean" hint (only when the
# target is a valid key where the name was written).
_ALIASES = {
    "other": "undefined",
    "unknown": "undefined",
    "all": "total",
    "sum": "total",
    "limit": "max",
    "count": "max",
    "fixable": "fixable_only",
    "fixable_only": "only_fixed",
    "cve": "id",
    "vulnerability": "id",
    "comment": "reason",
    "justification": "reason",
    "note": "reason",
    "why": "reason",
    "pkg": "package",
    "until": "expires",
    "expiry": "expires",
    "expiration": "expires",
    "allowlist": "ignore",
    "whitelist": "ignore",
    "exceptions": "ignore",
    "suppress": "ignore",
    "suppressions": "ignore",
    "ttl": "max_age",
    "on_missing": "missing",
}


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
    """A one-line human summary, e.g. ``critical <= 0, high <= 0; medium, ...: no limit``, followed by
    whatever else the policy sets: ``high <= 0 (fixable only)``, ``only fixable findings count``,
    ``2 ignore rules``, ``baseline <image>``, ``reuse scans up to 24h old``, ``unscannable images: fail``.
    """

    def limit(key: str) -> str:
        text = f"{key} <= {policy.thresholds[key]}"
        if key in policy.fixable_only and not policy.only_fixed:
            text += " (fixable only)"
        return text

    limited = [limit(key) for key in THRESHOLD_KEYS if key in policy.thresholds]
    unlimited = [key for key in THRESHOLD_KEYS if key not in policy.thresholds]
    parts = []
    if limited:
        parts.append(", ".join(limited))
    if unlimited:
        parts.append(", ".join(unlimited) + ": no limit")
    if policy.only_fixed:
        parts.append("only fixable findings count")
    if policy.ignore:
        count = len(policy.ignore)
        parts.append(f"{count} ignore rule{'s' if count != 1 else ''}")
    if policy.fail_on_stale_ignores:
        parts.append("stale ignore rules fail")
    if policy.baseline is not None:
        missing = " (passes when the baseline is missing)" if policy.baseline.missing == "pass" else ""
        parts.append(f"baseline {policy.baseline.image}{missing}")
    if policy.reuse_max_age:
        parts.append(f"reuse scans up to {format_duration(policy.reuse_max_age)} old")
    if policy.unscannable != DEFAULT_POLICY.unscannable:
        parts.append(f"unscannable images: {policy.unscannable}")
    return "; ".join(parts)


def format_duration(duration: dt.timedelta) -> str:
    """A duration in the policy's notation, in its largest exact unit (days from two on): ``90s``,
    ``15m``, ``24h``, ``36h``, ``7d``."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= (2 * size if unit == "d" else size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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
        thresholds = cast(_Thresholds, values["thresholds"])
        only_fixed = cast(bool, values.get("only_fixed", False))
        if only_fixed and thresholds.counts_all:
            key_path, line = thresholds.counts_all[0]
            severity = key_path.split(".")[1]
            raise self.error(
                f"'fixable_only: false' cannot override 'only_fixed: true', which counts only fixable "
                f"findings for every limit; to count every {severity} finding, remove 'only_fixed' and set "
                "'fixable_only: true' on the other limits instead",
                line=line,
                key=key_path,
            )
        return Policy(
            version=cast(int, values["version"]),
            thresholds=thresholds.limits,
            source=self.source,
            fixable_only=thresholds.fixable_only,
            only_fixed=only_fixed,
            ignore=cast("tuple[IgnoreRule, ...]", values.get("ignore", ())),
            baseline=cast("BaselineSpec | None", values.get("baseline")),
            reuse_max_age=cast("dt.timedelta | None", values.get("reuse")),
            fail_on_stale_ignores=cast(bool, values.get("fail_on_stale_ignores", False)),
            unscannable=cast(str, values.get("unscannable", DEFAULT_POLICY.unscannable)),
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

    def scalar(self, node: ScalarNode, key_path: str, line: int, fix: str = _NUMBER_FIX) -> object:
        """The Python value PyYAML's safe schema gives a scalar (``yes`` is a boolean there)."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem
        except (ValueError, OverflowError) as exc:  # e.g. '2027-02-30' or '!!int abc'
            problem = str(exc)
        raise self.error(f"cannot read the value ({problem}); {fix}", line=line, key=key_path)

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

    def boolean(self, node: Node, key_path: str, line: int, what: str, null_hint: str) -> bool:
        """``true`` or ``false``; YAML 1.1's ``yes``/``no``/``on``/``off`` are rejected as ambiguous."""
        must = f"{what} must be true or false"
        if not isinstance(node, ScalarNode):
            raise self.error(f"{must}, got {_kind(node)}; write true or false", line=line, key=key_path)
        value = self.scalar(node, key_path, line, fix="write true or false")
        text = node.value
        if value is None:
            raise self.error(f"{must}, but it has no value; {null_hint}", line=line, key=key_path)
        if isinstance(value, bool):
            if text in _BOOLEAN_WORDS:
                return value
            word = str(value).lower()
            raise self.error(
                f"{must}: PyYAML reads {text!r} as {word} but YAML 1.2 tools read it as text; write {word}",
                line=line,
                key=key_path,
            )
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            fix = f"write it without quotes: {value.strip().lower()}"
        else:
            fix = "write true or false"
        raise self.error(f"{must}, got {_describe(value, text)}; {fix}", line=line, key=key_path)

    def text(self, node: Node, key_path: str, line: int, what: str, hint: str) -> str:
        """A non-empty string, stripped; a scalar YAML reads as something else must be quoted."""
        if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:
            raise self.error(f"{what} has no value; {hint}", line=line, key=key_path)
        if not isinstance(node, ScalarNode):
            raise self.error(f"{what} must be text, got {_kind(node)}; {hint}", line=line, key=key_path)
        value = self.scalar(node, key_path, line, fix=f"put it in quotes: '{node.value}'")
        if not isinstance(value, str):
            raise self.error(
                f"{what} must be text, but YAML reads {node.value!r} as {_describe(value, node.value)}; "
                f"put it in quotes: '{node.value}'",
                line=line,
                key=key_path,
            )
        stripped = value.strip()
        if not stripped:
            raise self.error(f"{what} is empty; {hint}", line=line, key=key_path)
        return stripped

    def choice(self, node: Node, key_path: str, line: int, what: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, written exactly (the first is the default)."""
        options = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
        must = f"{what} must be {options}"
        example = f"write e.g. '{key_path.rsplit('.', 1)[-1]}: {choices[0]}'"
        if not isinstance(node, ScalarNode):
            raise self.error(f"{must}, got {_kind(node)}; {example}", line=line, key=key_path)
        value = self.scalar(node, key_path, line, fix=example)
        if isinstance(value, str) and value in choices:
            return value
        if value is None:
            raise self.error(
                f"{must}, but it has no value; {example} (the default), or remove the key",
                line=line,
                key=key_path,
            )
        if isinstance(value, str):
            folded = {c.lower(): c for c in choices}
            close = [folded[value.strip().lower()]] if value.strip().lower() in folded else []
            close = close or difflib.get_close_matches(value.strip().lower(), list(choices), n=1, cutoff=0.6)
            fix = f"did you mean '{close[0]}'?" if close else f"write one of {options}"
            raise self.error(f"{must}, got {value!r}; {fix}", line=line, key=key_path)
        raise self.error(f"{must}, got {_describe(value, node.value)}; {example}", line=line, key=key_path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: object, text: str) -> str:
    """How the message names a scalar YAML read as ``value`` (from the source ``text``)."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the number {text}"
    if isinstance(value, float):
        return f"the decimal number {text}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, dt.datetime):
        return f"a date and time ({text!r})"
    if isinstance(value, dt.date):
        return f"a date ({text!r})"
    return f"a {type(value).__name__} ({text!r})"


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


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


@dataclass(frozen=True)
class _Limit:
    """One parsed threshold: ``high: 0`` or ``high: {max: 0, fixable_only: true}``."""

    max: int
    fixable_only: bool = False
    counts_all_line: int | None = None
    """Line of an explicit ``fixable_only: false`` (which ``only_fixed: true`` would contradict)."""


@dataclass(frozen=True)
class _Thresholds:
    limits: Mapping[str, int]
    fixable_only: frozenset[str]
    counts_all: tuple[tuple[str, int], ...]
    """(key path, line) of every explicit ``fixable_only: false``."""


def _parse_count(walker: _Walker, key_path: str, line: int, node: Node) -> int:
    """A maximum count, ``>= 0``."""
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


def _parse_limit(walker: _Walker, key_path: str, line: int, node: Node) -> _Limit:
    """One threshold: a maximum count, or the mapping form ``{max: N, fixable_only: true}``."""
    if isinstance(node, MappingNode):
        values = walker.mapping(node, key_path, _LIMIT_KEYS)
        fixable = values.get("fixable_only")
        counts_all_line = None
        if fixable is False:
            counts_all_line = next(_line(k) for k, _ in node.value if k.value == "fixable_only")
        return _Limit(cast(int, values["max"]), fixable is True, counts_all_line)
    if isinstance(node, SequenceNode):
        severity = key_path.rsplit(".", 1)[-1]
        raise walker.error(
            f"the limit must be a whole number or a mapping, got a list; write e.g. '{severity}: 0' or "
            f"'{severity}: {_LIMIT_FORM_EXAMPLE}'",
            line=line,
            key=key_path,
        )
    return _Limit(_parse_count(walker, key_path, line, node))


def _parse_fixable_only(walker: _Walker, key_path: str, line: int, node: Node) -> bool:
    return walker.boolean(
        node,
        key_path,
        line,
        "'fixable_only'",
        "write true to count only findings with a known fix, or remove the key to count all",
    )


def _parse_thresholds(walker: _Walker, key_path: str, line: int, node: Node) -> _Thresholds:
    """``thresholds``: a non-empty mapping of threshold key -> limit."""
    no_limits = f"without limits every image would pass; set at least one, e.g. {_THRESHOLDS_EXAMPLE}"
    if _is_null(node):
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
    limits = {key: cast(_Limit, values[key]) for key in THRESHOLD_KEYS if key in values}
    return _Thresholds(
        limits=MappingProxyType({key: limit.max for key, limit in limits.items()}),
        fixable_only=frozenset(key for key, limit in limits.items() if limit.fixable_only),
        counts_all=tuple(
            (f"{key_path}.{key}.fixable_only", limit.counts_all_line)
            for key, limit in limits.items()
            if limit.counts_all_line is not None
        ),
    )


def _flag(what: str) -> _Parser:
    """A parser for a top-level boolean that defaults to false."""

    def parse(walker: _Walker, key_path: str, line: int, node: Node) -> bool:
        return walker.boolean(node, key_path, line, f"'{key_path}'", f"write true or false ({what}), or remove the key")

    return parse


def _choice(*choices: str) -> _Parser:
    """A parser for a key whose value is one of ``choices`` (the first is the default)."""

    def parse(walker: _Walker, key_path: str, line: int, node: Node) -> str:
        return walker.choice(node, key_path, line, f"'{key_path.rsplit('.', 1)[-1]}'", choices)

    return parse


# -- ignore


def _parse_ignore(walker: _Walker, key_path: str, line: int, node: Node) -> tuple[IgnoreRule, ...]:
    """``ignore``: a list of rules; no two rules may have the same id, package and images."""
    if _is_null(node):
        raise walker.error(
            f"'ignore' has no value; list rules under it, e.g. {_IGNORE_EXAMPLE}, write 'ignore: []' "
            "for none, or remove the key",
            line=line,
            key=key_path,
        )
    if not isinstance(node, SequenceNode):
        raise walker.error(
            f"'ignore' must be a list of rules, each with an 'id' and a 'reason', got {_kind(node)}; write "
            f"each rule as a list item starting with '-', e.g. {_IGNORE_EXAMPLE}",
            line=line,
            key=key_path,
        )
    rules: list[IgnoreRule] = []
    first_lines: dict[tuple[str, str | None, frozenset[str]], int] = {}
    for index, item in enumerate(node.value):
        item_path = f"{key_path}[{index}]"
        item_line = _line(item)
        if not isinstance(item, MappingNode):
            if isinstance(item, ScalarNode) and not _is_null(item):
                fix = f"write '- id: {item.value}' and give it a 'reason: ...' on the next line"
            elif _is_null(item):
                fix = f"write the rule after the '-', e.g. {_IGNORE_EXAMPLE}, or remove the empty item"
            else:
                fix = f"write e.g. {_IGNORE_EXAMPLE}"
            what = "nothing" if _is_null(item) else _kind(item)
            raise walker.error(
                f"each ignore rule must be a mapping with an 'id' and a 'reason', got {what}; {fix}",
                line=item_line,
                key=item_path,
            )
        values = walker.mapping(item, item_path, _IGNORE_RULE_KEYS)
        rule = IgnoreRule(
            id=cast(str, values["id"]),
            reason=cast(str, values["reason"]),
            package=cast("str | None", values.get("package")),
            images=cast("tuple[str, ...]", values.get("images", ())),
            expires=cast("dt.date | None", values.get("expires")),
            line=item_line,
        )
        identity = (rule.id.upper(), rule.package, frozenset(rule.images))
        if identity in first_lines:
            raise walker.error(
                f"duplicate ignore rule: the rule on line {first_lines[identity]} already ignores '{rule.id}' "
                "with the same package and images; remove one of them (keep the reason and expiry that "
                "still hold)",
                line=item_line,
                key=item_path,
            )
        first_lines[identity] = item_line
        rules.append(rule)
    return tuple(rules)


def _parse_rule_id(walker: _Walker, key_path: str, line: int, node: Node) -> str:
    """A vulnerability id as the scanner reports it: CVE-YYYY-NNNN, GHSA-..., and so on."""
    hint = "write the vulnerability id the scanner reports, e.g. 'id: CVE-2023-4863'"
    value = walker.text(node, key_path, line, "the vulnerability id", hint)
    if any(ch.isspace() for ch in value):
        raise walker.error(
            f"the vulnerability id must not contain spaces, got {value!r}; write one id per rule, "
            "e.g. 'id: CVE-2023-4863'",
            line=line,
            key=key_path,
        )
    if value.upper().startswith("CVE") and not _CVE_ID.fullmatch(value):
        raise walker.error(
            f"{value!r} looks like a CVE id but is not of the form CVE-YYYY-NNNN (a 4-digit year and at "
            "least 4 digits, joined by '-'); write it as the scanner reports it, e.g. 'CVE-2023-4863'",
            line=line,
            key=key_path,
        )
    return value


def _parse_rule_reason(walker: _Walker, key_path: str, line: int, node: Node) -> str:
    hint = "say why the finding is acceptable, e.g. 'reason: \"not reachable in this service\"'"
    return walker.text(node, key_path, line, "the reason", hint)


def _parse_rule_package(walker: _Walker, key_path: str, line: int, node: Node) -> str:
    hint = "write a package name or glob, e.g. 'package: \"libwebp*\"', or remove the key to match every package"
    return walker.text(node, key_path, line, "the package", hint)


def _parse_rule_images(walker: _Walker, key_path: str, line: int, node: Node) -> tuple[str, ...]:
    """A non-empty list of image globs (a single string is rejected: a list says 'any of these')."""
    example = "'images: [\"cr.yandex/*/app*\"]'"
    remove = "or remove the key to apply the rule to every image"
    if isinstance(node, ScalarNode) and not _is_null(node):
        value = walker.scalar(node, key_path, line, fix=f"write a list of globs, e.g. {example}")
        fix = f"write it as a list: 'images: [\"{value}\"]'" if isinstance(value, str) else f"e.g. {example}"
        raise walker.error(
            f"'images' must be a list of image globs, got a single value; {fix}", line=line, key=key_path
        )
    if not isinstance(node, SequenceNode):
        what = "no value" if _is_null(node) else _kind(node)
        raise walker.error(
            f"'images' must be a list of image globs, got {what}; write e.g. {example}, {remove}",
            line=line,
            key=key_path,
        )
    if not node.value:
        raise walker.error(f"'images' lists no images; write e.g. {example}, {remove}", line=line, key=key_path)
    globs = []
    for index, item in enumerate(node.value):
        item_path = f"{key_path}[{index}]"
        glob = walker.text(item, item_path, _line(item), "an image glob", f"write e.g. {example}")
        if any(ch.isspace() for ch in glob):
            raise walker.error(
                f"an image glob must not contain spaces, got {glob!r}; write one glob per list item, e.g. {example}",
                line=_line(item),
                key=item_path,
            )
        globs.append(glob)
    return tuple(globs)


def _parse_rule_expires(walker: _Walker, key_path: str, line: int, node: Node) -> dt.date:
    """A calendar date, ``YYYY-MM-DD`` (a YAML date or a quoted string); the rule applies through it."""
    fix = "write the last day the rule applies as YYYY-MM-DD, e.g. 'expires: 2027-01-31', or remove the key"
    if not isinstance(node, ScalarNode) or _is_null(node):
        what = "no value" if _is_null(node) else _kind(node)
        raise walker.error(f"'expires' must be a date, got {what}; {fix}", line=line, key=key_path)
    candidate = node.value  # a YAML date or a string: read the text, not PyYAML's reading of it
    if node.tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:str"):
        value = walker.scalar(node, key_path, line, fix=fix)
        raise walker.error(
            f"'expires' must be a date, got {_describe(value, candidate)}; {fix}", line=line, key=key_path
        )
    if not _DATE.fullmatch(candidate):
        if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]", candidate):
            raise walker.error(
                f"'expires' takes a date without a time, got {candidate!r}; write just the date: "
                f"'expires: {candidate[:10]}'",
                line=line,
                key=key_path,
            )
        raise walker.error(f"'expires' must be a date, got {candidate!r}; {fix}", line=line, key=key_path)
    try:
        return dt.date.fromisoformat(candidate)
    except ValueError as exc:
        raise walker.error(f"{candidate!r} is not a real date ({exc}); {fix}", line=line, key=key_path) from None


# -- baseline and reuse


def _section(walker: _Walker, key_path: str, line: int, node: Node, example: str) -> MappingNode:
    """The value of a section key (``baseline``, ``reuse``): a mapping."""
    if isinstance(node, MappingNode):
        return node
    what = "no value" if _is_null(node) else _kind(node)
    raise walker.error(
        f"'{key_path}' must be a mapping, got {what}; write e.g. {example}, or remove the key",
        line=line,
        key=key_path,
    )


def _parse_baseline(walker: _Walker, key_path: str, line: int, node: Node) -> BaselineSpec:
    example = _BASELINE_EXAMPLE
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str" and node.value.strip():
        example = f"'baseline: {{image: {node.value.strip()}}}'"
    values = walker.mapping(_section(walker, key_path, line, node, example), key_path, _BASELINE_KEYS)
    return BaselineSpec(image=cast(str, values["image"]), missing=cast(str, values.get("missing", "fail")))


def _parse_baseline_image(walker: _Walker, key_path: str, line: int, node: Node) -> str:
    hint = "name the image whose findings are accepted, e.g. 'image: cr.yandex/<registry-id>/app:production'"
    value = walker.text(node, key_path, line, "the baseline image", hint)
    try:
        parse_image_ref(value)
    except ImageRefError as exc:
        raise walker.error(str(exc), line=line, key=key_path) from None
    return value


def _parse_reuse(walker: _Walker, key_path: str, line: int, node: Node) -> dt.timedelta | None:
    values = walker.mapping(_section(walker, key_path, line, node, "'reuse: {max_age: 24h}'"), key_path, _REUSE_KEYS)
    return cast("dt.timedelta | None", values["max_age"])


def _parse_duration(walker: _Walker, key_path: str, line: int, node: Node) -> dt.timedelta | None:
    """A whole number and a unit (``90s``, ``15m``, ``24h``, ``7d``), or ``0``: always scan (None)."""
    must = "the maximum age must be a whole number followed by s, m, h or d"
    fix = f"write e.g. {_DURATION_EXAMPLES}, or 0 to always scan"
    if not isinstance(node, ScalarNode) or _is_null(node):
        what = "no value" if _is_null(node) else _kind(node)
        raise walker.error(f"{must}, got {what}; {fix}", line=line, key=key_path)
    value = walker.scalar(node, key_path, line, fix=fix)
    text = node.value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or (isinstance(value, int) and not _PLAIN_DECIMAL.fullmatch(text))
    ):
        raise walker.error(f"{must}, got {_describe(value, text)}; {fix}", line=line, key=key_path)
    if isinstance(value, int):
        if value == 0:
            return None
        if value < 0:
            raise walker.error(f"{must}, got {text}: an age cannot be negative; {fix}", line=line, key=key_path)
        raise walker.error(
            f"{must}: {text} has no unit; write {value}s, {value}m, {value}h or {value}d",
            line=line,
            key=key_path,
        )
    if value == "0":
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        raise walker.error(f"{must}, got {value!r}{_duration_problem(value)}; {fix}", line=line, key=key_path)
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        return None
    try:
        return dt.timedelta(**{_DURATION_UNITS[unit]: amount})
    except OverflowError:
        raise walker.error(f"the maximum age {value} is too large; {fix}", line=line, key=key_path) from None


def _duration_problem(text: str) -> str:
    """What is wrong with a duration that does not match ``_DURATION``, if it can be told."""
    shape = re.fullmatch(r"\s*([-+]?)\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", text)
    if shape is None:
        return ""
    sign, number, unit = shape.groups()
    if sign == "-":
        return ": an age cannot be negative"
    if "." in number:
        return ": use a whole number of a smaller unit (90m, not 1.5h)"
    if unit and unit not in _DURATION_UNITS:
        return f": unknown unit '{unit}'"
    return ""


# -- the tables

# Top-level keys of format version 1, in the order they are documented. Add new keys here.
_TOP_LEVEL_KEYS: dict[str, _Key] = {
    "version": _Key(_parse_version, required=True, missing_hint="add 'version: 1' as the first line"),
    "thresholds": _Key(
        _parse_thresholds,
        required=True,
        missing_hint=f"without limits every image would pass; add e.g. {_THRESHOLDS_EXAMPLE}",
    ),
    "only_fixed": _Key(_flag("true counts only findings with a known fix, for every limit")),
    "ignore": _Key(_parse_ignore),
    "baseline": _Key(_parse_baseline),
    "reuse": _Key(_parse_reuse),
    "fail_on_stale_ignores": _Key(
        _flag("true fails the run when an ignore rule in force matched no finding of any image")
    ),
    "unscannable": _Key(_choice("warn", "fail", "skip")),
}
_THRESHOLD_KEYS: dict[str, _Key] = {key: _Key(_parse_limit) for key in THRESHOLD_KEYS}
# The mapping form of one threshold: ``high: {max: 0, fixable_only: true}``.
_LIMIT_KEYS: dict[str, _Key] = {
    "max": _Key(
        _parse_count,
        required=True,
        missing_hint=f"write the maximum count, e.g. {_LIMIT_FORM_EXAMPLE}",
    ),
    "fixable_only": _Key(_parse_fixable_only),
}
_IGNORE_RULE_KEYS: dict[str, _Key] = {
    "id": _Key(
        _parse_rule_id,
        required=True,
        missing_hint="write the vulnerability id the scanner reports, e.g. 'id: CVE-2023-4863'",
    ),
    "package": _Key(_parse_rule_package),
    "images": _Key(_parse_rule_images),
    "reason": _Key(
        _parse_rule_reason,
        required=True,
        missing_hint="every ignore rule needs one: say why the finding is acceptable, e.g. "
        "'reason: \"not reachable in this service\"'",
    ),
    "expires": _Key(_parse_rule_expires),
}
_BASELINE_KEYS: dict[str, _Key] = {
    "image": _Key(
        _parse_baseline_image,
        required=True,
        missing_hint="name the image whose findings are accepted, e.g. 'image: cr.yandex/<registry-id>/app:production'",
    ),
    "missing": _Key(_choice("fail", "pass")),
}
_REUSE_KEYS: dict[str, _Key] = {
    "max_age": _Key(
        _parse_duration,
        required=True,
        missing_hint="write e.g. 'max_age: 24h', or remove 'reuse' to always scan",
    ),
}

# The names the loader accepts, for tests and tools that must stay in sync (e.g. the JSON Schema).
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(_TOP_LEVEL_KEYS)
LIMIT_KEYS: tuple[str, ...] = tuple(_LIMIT_KEYS)
IGNORE_RULE_KEYS: tuple[str, ...] = tuple(_IGNORE_RULE_KEYS)
BASELINE_KEYS: tuple[str, ...] = tuple(_BASELINE_KEYS)
REUSE_KEYS: tuple[str, ...] = tuple(_REUSE_KEYS)
