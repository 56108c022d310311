"""The one strict YAML reader, shared by policies, manifests and emulator scenarios.

It composes YAML text into PyYAML node trees (every node keeps its line; Python values are built only
where a caller asks for them) and refuses, naming the line, what no format reader should ever see:

- duplicate keys, at any depth (PyYAML would silently keep the last one; other tools refuse them);
- a merge key (``<<``, where the format honours merges) whose value is not a mapping or a list of
  mappings;
- structure bombs, before they cost exponential time or memory: nesting deeper than
  ``Rules.max_depth``, more than ``Rules.max_nodes`` nodes in the input, aliases and merge keys that
  would expand to more than ``Rules.max_expanded`` nodes (a "billion laughs" document is ten lines
  long), and an alias or merge key that refers to a node containing it (it would expand forever).

Depth is bounded while composing, so PyYAML's recursive composer never nears Python's recursion limit;
the expansion check is one iterative pass that visits every distinct node once. Walkers that run after
``read_documents`` may therefore recurse over the expanded tree: its depth and size are bounded.

Errors are built by the caller's ``ErrorFactory``, so each input names itself in its own words
(``policy p.yaml:3``, ``manifest m.yaml, document 2, line 5``, ``emulator scenario s.yaml:4``).
Reading typed values out of nodes (numbers, booleans, text, known keys with "did you mean" hints) is
``crgate.yamlwalk``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from crgate.errors import ConfigError

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"


class ErrorFactory(Protocol):
    """Builds the caller's own error (``PolicyError``, ``ManifestError``, ...) for a problem found at
    ``line`` of document ``document`` (1-based; None when unknown), under the dotted ``key`` path."""

    def __call__(
        self, message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ConfigError: ...


@dataclass(frozen=True)
class Rules:
    """What one kind of input may hold."""

    name: str
    """What one document is, for messages: ``policy``, ``scenario``."""
    max_depth: int
    """Nesting levels, counted through aliases and merges as a walker sees them."""
    max_nodes: int
    """Nodes written in the whole input (every document; an alias counts once)."""
    max_expanded: int
    """Nodes of the whole input with every alias and merge key expanded."""
    merge_keys: bool = False
    """True: ``<<`` merges mappings (manifests, scenarios). False: ``<<`` is a plain key name."""
    fast: bool = False
    """True: let libyaml tokenize (about ten times faster) when PyYAML has it; syntax messages are
    then libyaml's. False: PyYAML's own parser, whose messages the policy tests pin."""


@dataclass(frozen=True)
class Document:
    number: int
    """1-based position in the input."""
    root: Node


class _Refused(Exception):
    """A structure limit was hit while composing; carries the line."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.message = message
        self.line = line


class _Guard:
    """Composer hook: count nodes and bound nesting before PyYAML recurses into a node."""

    rules: Rules
    depth: int = 0
    nodes: int = 0

    def compose_node(self, parent: Node | None, index: object) -> Node:
        event = self.peek_event()  # type: ignore[attr-defined]
        self.nodes += 1
        if self.nodes > self.rules.max_nodes:
            raise _Refused(too_many_nodes(self.rules), event.start_mark.line + 1)
        if not isinstance(event, AliasEvent):
            self.depth += 1
        try:
            if self.depth > self.rules.max_depth:
                raise _Refused(too_deep(self.rules), event.start_mark.line + 1)
            return super().compose_node(parent, index)  # type: ignore[misc, no-any-return]
        finally:
            if not isinstance(event, AliasEvent):
                self.depth -= 1


class _PureLoader(_Guard, yaml.SafeLoader):
    def __init__(self, text: str, rules: Rules):
        self.rules = rules
        yaml.SafeLoader.__init__(self, text)


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_Guard, Composer, Resolver, CParser):  # libyaml's events, PyYAML's composer
        def __init__(self, text: str, rules: Rules):
            self.rules = rules
            CParser.__init__(self, text)
            Composer.__init__(self)
            Resolver.__init__(self)


def _loader(text: str, rules: Rules) -> Any:
    if rules.fast and yaml.__with_libyaml__:
        try:
            return _FastLoader(text, rules)
        except UnicodeEncodeError as exc:  # a lone surrogate: libyaml takes UTF-8, PyYAML reports it
            raise yaml.reader.ReaderError("<text>", exc.start, ord(text[exc.start]), "unicode", exc.reason) from None
    return _PureLoader(text, rules)


# --------------------------------------------------------------------------------------------------
# Reading


def read_documents(text: str, rules: Rules, error: ErrorFactory) -> Iterator[Document]:
    """Every document of ``text``, composed and checked, one at a time (so a large multi-document input
    never holds more than one document's nodes beyond what the caller keeps)."""
    loader = None
    number = 0
    budget = rules.max_expanded
    try:
        loader = _loader(text, rules)
        while loader.check_node():
            number += 1
            root = loader.get_node()
            budget -= check_document(root, rules, budget, _at_document(error, number))
            yield Document(number, root)
    except _Refused as exc:
        raise error(exc.message, line=exc.line, document=max(number, 1)) from None
    except yaml.MarkedYAMLError as exc:
        raise syntax_error(exc, error, document=max(number, 1)) from None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        raise reader_error(exc, text, error, document=max(number, 1)) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_document(text: str, rules: Rules, error: ErrorFactory) -> Node | None:
    """The single document of ``text``; None when there is none (an empty file, or only comments)."""
    loader = None
    try:
        loader = _loader(text, rules)
        if not loader.check_node():
            return None
        root = loader.get_node()
        if not loader.check_event(StreamEndEvent):
            line = loader.peek_event().start_mark.line + 1
            raise error(
                f"the file holds more than one YAML document (a second '---'); keep a single {rules.name} document",
                line=line,
            )
        check_document(root, rules, rules.max_expanded, error)
        return root  # type: ignore[no-any-return]
    except _Refused as exc:
        raise error(exc.message, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        raise syntax_error(exc, error) from None
    except yaml.YAMLError as exc:
        raise reader_error(exc, text, error) from None
    finally:
        if loader is not None:
            loader.dispose()


def _at_document(error: ErrorFactory, number: int) -> ErrorFactory:
    def at(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ConfigError:
        return error(message, line=line, document=number if document is None else document, key=key)

    return at


def syntax_error(exc: yaml.MarkedYAMLError, error: ErrorFactory, document: int | None = None) -> ConfigError:
    """A PyYAML scan/parse/compose error, pointing at its problem mark."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    detail = "; ".join(p for p in (exc.context, exc.problem) if p)
    return error(f"invalid YAML: {detail}; fix the syntax", line=line, document=document)


def reader_error(exc: yaml.YAMLError, text: str, error: ErrorFactory, document: int | None = None) -> ConfigError:
    """A ReaderError (a character YAML forbids): it carries an offset, not a line."""
    position = getattr(exc, "position", None)
    line = text[:position].count("\n") + 1 if isinstance(position, int) else None
    character = getattr(exc, "character", None)
    what = f"the character U+{character:04X}" if isinstance(character, int) else "a character"
    return error(f"invalid YAML: {what} is not allowed in a YAML file; remove it", line=line, document=document)


def too_many_nodes(rules: Rules) -> str:
    return (
        f"the file holds more than {rules.max_nodes:,} YAML nodes (values, keys and list items), the limit "
        f"for a {rules.name} file; split it into smaller files"
    )


def too_deep(rules: Rules) -> str:
    return (
        f"the YAML nests more than {rules.max_depth} levels deep (counting through aliases and merge keys), "
        f"the limit for a {rules.name} file; flatten it"
    )


# --------------------------------------------------------------------------------------------------
# The checks after composing: duplicates, merges, cycles, expansion


class _Frame:
    """One collection being visited: its children in document order, and what they add up to."""

    __slots__ = ("node", "path", "index", "size", "height", "first_lines")

    def __init__(self, node: Node, path: str):
        self.node = node
        self.path = path
        self.index = 0
        self.size = 1
        self.height = 1
        self.first_lines: dict[str, int] = {}


def check_document(root: Node, rules: Rules, budget: int, error: ErrorFactory) -> int:
    """Refuse duplicate keys, bad merge values, cycles and over-large expansions; return the document's
    expanded size (it must fit ``budget``, what is left of ``rules.max_expanded`` for the input)."""
    if isinstance(root, ScalarNode):
        return 1
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active = {id(root)}
    stack = [_Frame(root, "")]
    while stack:
        frame = stack[-1]
        child = _next_child(frame, rules, error)
        if child is None:
            stack.pop()
            active.discard(id(frame.node))
            done[id(frame.node)] = (frame.size, frame.height)
            if not stack:
                return frame.size
            _add(stack, (frame.size, frame.height), rules, budget, error)
            continue
        node, path = child
        if isinstance(node, ScalarNode):
            _add(stack, (1, 1), rules, budget, error)
        elif id(node) in done:
            _add(stack, done[id(node)], rules, budget, error)
        elif id(node) in active:
            raise error(
                "an alias or merge key ('<<') here refers to a mapping or list that contains it, so it would "
                "expand forever; refer only to anchors defined outside the node that uses them",
                line=line_of(frame.node),
                key=path or None,
            )
        else:
            if len(stack) + 1 > rules.max_depth:
                raise error(too_deep(rules), line=line_of(node), key=path or None)
            active.add(id(node))
            stack.append(_Frame(node, path))
    raise AssertionError("unreachable")  # pragma: no cover


def _add(stack: list[_Frame], child: tuple[int, int], rules: Rules, budget: int, error: ErrorFactory) -> None:
    """Add a finished child's size and height to the frame on top; refuse when a limit is passed."""
    frame = stack[-1]
    size, height = child
    frame.size += size
    frame.height = max(frame.height, height + 1)
    if len(stack) - 1 + frame.height > rules.max_depth:
        raise error(too_deep(rules), line=line_of(frame.node), key=frame.path or None)
    if frame.size > budget:
        raise error(
            f"expanding the aliases and merge keys ('<<') of this file would give more than "
            f"{rules.max_expanded:,} YAML nodes, the limit for a {rules.name} file (a YAML bomb?); "
            "write the values out or use fewer, smaller anchors",
            line=line_of(frame.node),
            key=frame.path or None,
        )


def _next_child(frame: _Frame, rules: Rules, error: ErrorFactory) -> tuple[Node, str] | None:
    """The frame's next child node and its key path, checking mapping keys as they are reached."""
    node = frame.node
    if isinstance(node, SequenceNode):
        if frame.index >= len(node.value):
            return None
        frame.index += 1
        return node.value[frame.index - 1], f"{frame.path}[{frame.index - 1}]"
    assert isinstance(node, MappingNode)
    pair, part = divmod(frame.index, 2)
    if pair >= len(node.value):
        return None
    frame.index += 1
    key_node, value_node = node.value[pair]
    if not isinstance(key_node, ScalarNode):
        return (key_node, frame.path) if part == 0 else (value_node, frame.path)
    key_path = join_path(frame.path, key_node.value)
    if part == 0:
        first = frame.first_lines.get(key_node.value)
        if first is not None:
            raise error(
                f"invalid YAML: duplicate key '{key_node.value}' (first set on line {first}); YAML forbids "
                "repeating a key and PyYAML would silently keep only the last one, so remove one of them",
                line=line_of(key_node),
                key=key_path,
            )
        frame.first_lines[key_node.value] = line_of(key_node)
        return key_node, key_path
    if rules.merge_keys and key_node.tag == MERGE_TAG and not _mergeable(value_node):
        raise error(
            "a merge key ('<<') must refer to a mapping or a list of mappings, e.g. '<<: *defaults'",
            line=line_of(key_node),
            key=key_path,
        )
    return value_node, key_path


def _mergeable(node: Node) -> bool:
    if isinstance(node, SequenceNode):
        return all(isinstance(item, MappingNode) for item in node.value)
    return isinstance(node, MappingNode)


# --------------------------------------------------------------------------------------------------
# Node helpers for walkers


def line_of(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a single value"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG


def join_path(path: str, name: str) -> str:
    """A dotted key path: ``thresholds`` + ``high`` -> ``thresholds.high``."""
    return f"{path}.{name}" if path else name


def scalar_value(node: ScalarNode) -> object:
    """The Python value PyYAML's safe schema gives a scalar (``yes`` is a boolean there).

    Raises ``ValueError`` with PyYAML's reason when the scalar cannot be read (a bad ``!!int``, an
    impossible date, an unknown tag).
    """
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise ValueError(exc.problem or str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise anything on odd input
        raise ValueError(str(exc) or type(exc).__name__) from None


def merged_sources(node: MappingNode) -> list[MappingNode]:
    """The mappings merged into ``node`` by its ``<<`` keys, in the order that decides (earlier wins)."""
    sources: list[MappingNode] = []
    for key_node, value in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
            items = value.value if isinstance(value, SequenceNode) else [value]
            sources.extend(item for item in items if isinstance(item, MappingNode))
    return sources


def value_of(node: MappingNode, key: str) -> Node | None:
    """The value of ``key`` in a checked mapping, honouring merge keys: an explicit key wins over a merged
    one, and of merged mappings the earlier wins (YAML's merge-key rule). None when absent."""
    for key_node, value in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG and key_node.value == key:
            return value
    for source in merged_sources(node):
        found = value_of(source, key)
        if found is not None:
            return found
    return None


class LineDict(dict[Any, Any]):
    """A mapping of plain data that remembers the line it started on."""

    line: int | None = None


def plain_data(root: Node, error: ErrorFactory) -> Any:
    """Python data of a checked document: mappings become ``LineDict`` (merge keys applied, explicit
    keys winning), lists become lists, scalars their safe-schema values. A node shared through aliases
    becomes one shared object, so building costs what the document holds, not what it expands to."""
    built: dict[int, Any] = {}

    def build(node: Node) -> Any:
        if id(node) in built:
            return built[id(node)]
        if isinstance(node, ScalarNode):
            try:
                return scalar_value(node)
            except ValueError as exc:
                raise error(f"cannot read the value ({exc})", line=line_of(node)) from None
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            built[id(node)] = items
            items.extend(build(item) for item in node.value)
            return items
        assert isinstance(node, MappingNode)
        result = LineDict()
        result.line = line_of(node)
        built[id(node)] = result
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                raise error(f"keys must be plain names, got {kind_of(key_node)} as a key", line=line_of(key_node))
            key = build(key_node)
            if key in result:
                raise error(f"duplicate key {key!r}", line=line_of(key_node))
            result[key] = build(value)
        for source in merged_sources(node):
            for key, value in build(source).items():
                result.setdefault(key, value)
        return result

    return build(root)
