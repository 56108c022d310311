"""Typed values out of checked YAML nodes, with errors that say what to write instead.

A ``Walker`` turns the nodes of a document read by ``crgate.yamlstrict`` into Python values, one
helper per kind of value: whole numbers written the way every YAML version reads them, booleans that
YAML 1.1 and 1.2 agree on, non-empty text, one of a few choices, and mappings parsed against a table
of known keys (unknown keys get a "did you mean" hint). Every problem is built by the caller's
``ErrorFactory`` with the line and the dotted key path.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from yaml.nodes import MappingNode, Node, ScalarNode

from crgate.errors import ConfigError
from crgate.yamlstrict import NULL_TAG, ErrorFactory, join_path, kind_of, line_of, scalar_value

# Integers written the way every YAML version reads the same: no leading zeros, 0x/0o/0b prefixes,
# underscores or base-60 (PyYAML's YAML 1.1 reads ``010`` as 8 and ``1:30`` as 90).
PLAIN_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
NUMBER_FIX = "write a plain whole number without a YAML tag"
# Booleans that every YAML version reads the same (the YAML 1.2 core schema). PyYAML (YAML 1.1) also
# reads yes/no/on/off as booleans, YAML 1.2 tools read them as text: both readings are rejected.
_BOOLEAN_WORDS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})

Pair = tuple[str, ScalarNode, Node]
# A key parser gets the walker, the key's dotted path, its line and its value node.
Parser = Callable[["Walker", str, int, Node], object]


@dataclass(frozen=True)
class Key:
    """One known key of a mapping: how to parse its value, and what to say when it is missing."""

    parse: Parser
    required: bool = False
    missing_hint: str = ""


class Walker:
    """Reads typed values out of one document's nodes; every problem is raised as the caller's error.

    ``aliases`` maps names users reach for, which difflib cannot guess, to the key they mean
    (``other`` -> ``undefined``); the hint is given only when that key is valid where the name was.
    """

    def __init__(self, error: ErrorFactory, aliases: Mapping[str, str] = MappingProxyType({})):
        self._error = error
        self.aliases = aliases

    def error(self, message: str, line: int | None = None, key: str | None = None) -> ConfigError:
        return self._error(message, line=line, key=key)

    # -- mappings ----------------------------------------------------------------------------------

    def pairs(self, node: MappingNode, path: str) -> list[Pair]:
        """The mapping's (name, key node, value node) triples; every key must be a plain name."""
        result: list[Pair] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise self.error(
                    f"keys must be plain names, got {kind_of(key_node)} as a key",
                    line=line_of(key_node),
                    key=path or None,
                )
            result.append((key_node.value, key_node, value_node))
        return result

    def mapping(
        self, node: MappingNode, path: str, known: Mapping[str, Key], first: str | None = None
    ) -> dict[str, object]:
        """Parse a mapping against its table of known keys.

        ``first`` (a format's ``version``) is parsed before anything else, so a file of a newer format
        reports its version rather than keys this crgate lacks. Unknown keys are reported before missing
        ones, so a typo (``versoin``) gets a "did you mean" rather than "missing 'version'".
        """
        pairs = self.pairs(node, path)
        values: dict[str, object] = {}
        for name, key_node, value_node in pairs:
            if name == first:
                values[name] = known[name].parse(self, join_path(path, name), line_of(key_node), value_node)
        for name, key_node, _ in pairs:
            if name not in known:
                raise self.unknown_key(name, join_path(path, name), line_of(key_node), known)
        if first is not None and first not in values:
            self.check_present(node, path, known, values, only=first)
        for name, key_node, value_node in pairs:
            if name not in values:
                values[name] = known[name].parse(self, join_path(path, name), line_of(key_node), value_node)
        self.check_present(node, path, known, values)
        return values

    def check_present(
        self,
        node: MappingNode,
        path: str,
        known: Mapping[str, Key],
        values: Mapping[str, object],
        only: str | None = None,
    ) -> None:
        """Raise for the first required key (or just ``only``) that the mapping lacks."""
        for name, spec in known.items():
            if spec.required and name not in values and only in (None, name):
                raise self.error(
                    f"missing required key '{name}'; {spec.missing_hint}",
                    line=line_of(node),
                    key=join_path(path, name),
                )

    def unknown_key(self, name: str, key_path: str, line: int, known: Collection[str]) -> ConfigError:
        """An unknown key, with a "did you mean" hint and the valid keys."""
        where = f" under '{key_path.rsplit('.', 1)[0]}'" if "." in key_path else ""
        close = closest(name, known, self.aliases)
        hint = f"; did you mean '{close}'?" if close else ";"
        return self.error(
            f"unknown key '{name}'{where}{hint} valid keys are: {', '.join(known)}",
            line=line,
            key=key_path,
        )

    # -- scalars -----------------------------------------------------------------------------------

    def scalar(self, node: ScalarNode, key_path: str, line: int, fix: str = NUMBER_FIX) -> object:
        """The Python value PyYAML's safe schema gives a scalar (``yes`` is a boolean there)."""
        try:
            return scalar_value(node)
        except ValueError as exc:  # e.g. '2027-02-30' or '!!int abc'
            raise self.error(f"cannot read the value ({exc}); {fix}", line=line, key=key_path) from None

    def whole_number(self, node: Node, key_path: str, line: int, what: str, null_hint: str, example: int = 0) -> int:
        """A whole number written as plain decimal digits, or an error that says why not."""
        must = f"{what} must be a whole number"
        if not isinstance(node, ScalarNode):
            raise self.error(f"{must}, got {kind_of(node)}", line=line, key=key_path)
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
            if not PLAIN_DECIMAL.fullmatch(text):
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
            if PLAIN_DECIMAL.fullmatch(value.strip()):
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
            raise self.error(f"{must}, got {kind_of(node)}; write true or false", line=line, key=key_path)
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
        raise self.error(f"{must}, got {describe(value, text)}; {fix}", line=line, key=key_path)

    def text(self, node: Node, key_path: str, line: int, what: str, hint: str) -> str:
        """A non-empty string, stripped; a scalar YAML reads as something else must be quoted."""
        if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
            raise self.error(f"{what} has no value; {hint}", line=line, key=key_path)
        if not isinstance(node, ScalarNode):
            raise self.error(f"{what} must be text, got {kind_of(node)}; {hint}", line=line, key=key_path)
        value = self.scalar(node, key_path, line, fix=f"put it in quotes: '{node.value}'")
        if not isinstance(value, str):
            raise self.error(
                f"{what} must be text, but YAML reads {node.value!r} as {describe(value, node.value)}; "
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
            raise self.error(f"{must}, got {kind_of(node)}; {example}", line=line, key=key_path)
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
        raise self.error(f"{must}, got {describe(value, node.value)}; {example}", line=line, key=key_path)


def closest(name: str, known: Collection[str], aliases: Mapping[str, str] = MappingProxyType({})) -> str | None:
    """The known name a typo most likely meant (an alias users reach for, else the closest spelling)."""
    alias = aliases.get(name.lower())
    if alias in known:
        return alias
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def describe(value: object, text: str) -> str:
    """How a message names a scalar YAML read as ``value`` (from the source ``text``)."""
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
