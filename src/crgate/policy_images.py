"""The policy key ``images:``: limits per image pattern, read as strictly as the top level.

``images`` is a list of rules ``{match: [GLOB, ...], thresholds, only_fixed, unscannable, ignore, vex}``;
``match`` is required and each other key, when set, replaces the top-level key for the images the rule
judges (``thresholds`` as a whole; ``ignore`` and ``vex`` are added after the top-level ones). The
tables of the keys a rule may set are ``crgate.policy_v1``'s (passed in, as for ``kev``), so a rule's
``thresholds`` or ``ignore`` is read exactly like the top-level one. Which rule judges which image is
``crgate.image_rules``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crgate.model import IgnoreRule, ImageRule
from crgate.policy_inputs import FileRef, PolicyFiles
from crgate.yamlstrict import is_null, kind_of, line_of
from crgate.yamlwalk import Key, Walker

_EXAMPLE = "'images: [{match: [\"cr.yandex/*/prod/*\"], thresholds: {critical: 0, high: 0}}]'"
_MATCH_EXAMPLE = "'match: [\"cr.yandex/*/prod/*\"]'"
MAX_RULES = 1000
MAX_GLOBS = 100


@dataclass(frozen=True)
class RuleSpec:
    """One rule as written; its VEX files are read by ``build_rules``."""

    index: int
    line: int
    match: tuple[str, ...]
    values: Mapping[str, Any]


def parse_images(walker: Walker, key_path: str, line: int, node: Node, keys: Mapping[str, Key]) -> tuple[RuleSpec, ...]:
    """``images``: a non-empty list of rule mappings, each checked against ``keys``."""
    if not isinstance(node, SequenceNode) or not node.value:
        what = "an empty list" if isinstance(node, SequenceNode) else "no value" if is_null(node) else kind_of(node)
        raise walker.error(
            f"'images' must be a list of rules, got {what}; write e.g. {_EXAMPLE}, or remove the key",
            line=line,
            key=key_path,
        )
    if len(node.value) > MAX_RULES:
        raise walker.error(f"'images' has {len(node.value)} rules, more than {MAX_RULES}", line=line, key=key_path)
    rules = []
    for index, item in enumerate(node.value):
        item_path, item_line = f"{key_path}[{index}]", line_of(item)
        if not isinstance(item, MappingNode):
            what = "nothing" if is_null(item) else kind_of(item)
            raise walker.error(
                f"each image rule must be a mapping with 'match' and the keys it sets, got {what}; write e.g. "
                "'- {match: [\"cr.yandex/*/dev/*\"], thresholds: {critical: 0}}'",
                line=item_line,
                key=item_path,
            )
        values = walker.mapping(item, item_path, keys)
        if len(values) == 1:
            raise walker.error(
                "this image rule sets nothing besides 'match', so the images it matches are judged by the top-level "
                "keys anyway; set 'thresholds', 'only_fixed', 'unscannable', 'ignore' or 'vex', or remove the rule",
                line=item_line,
                key=item_path,
            )
        rules.append(RuleSpec(index, item_line, cast("tuple[str, ...]", values["match"]), values))
    return tuple(rules)


def parse_match(walker: Walker, key_path: str, line: int, node: Node) -> tuple[str, ...]:
    """``match``: a non-empty list of globs on the canonical reference, each one line of printable text."""
    if isinstance(node, ScalarNode) and not is_null(node):
        raise walker.error(
            f"'match' must be a list of globs, got a single value; write it as a list: 'match: [\"{node.value}\"]'",
            line=line,
            key=key_path,
        )
    if not isinstance(node, SequenceNode) or not node.value:
        what = "an empty list" if isinstance(node, SequenceNode) else "no value" if is_null(node) else kind_of(node)
        raise walker.error(f"'match' must list at least one glob, got {what}; write e.g. {_MATCH_EXAMPLE}", line=line,
                           key=key_path)  # fmt: skip
    if len(node.value) > MAX_GLOBS:
        raise walker.error(f"'match' has more than {MAX_GLOBS} globs", line=line, key=key_path)
    globs: list[str] = []
    for index, item in enumerate(node.value):
        item_path, item_line = f"{key_path}[{index}]", line_of(item)
        glob = walker.text(item, item_path, item_line, "an image glob", f"write e.g. {_MATCH_EXAMPLE}")
        if not glob.isprintable() or any(ch.isspace() for ch in glob) or len(glob) > 1000:
            raise walker.error(
                f"an image glob is one word of printable characters (at most 1000), got {glob[:60]!r}; "
                f"write one glob per list item, e.g. {_MATCH_EXAMPLE}",
                line=item_line,
                key=item_path,
            )
        if glob in globs:
            raise walker.error(f"'{glob}' is listed twice in this rule; list it once", line=item_line, key=item_path)
        globs.append(glob)
    return tuple(globs)


def build_rules(
    specs: Sequence[RuleSpec], files: PolicyFiles | None, error: Any, *, top_only_fixed: bool
) -> tuple[ImageRule, ...]:
    """The ``ImageRule``s of parsed specs, their VEX documents read by ``files``; ``error(message, line, key)``
    builds the policy's error for a rule that contradicts itself (or the top-level ``only_fixed``)."""
    rules = []
    for spec in specs:
        values = spec.values
        thresholds = values.get("thresholds")
        only_fixed = cast("bool | None", values.get("only_fixed"))
        effective_only_fixed = top_only_fixed if only_fixed is None else only_fixed
        if effective_only_fixed and thresholds is not None and thresholds.counts_all:
            key_path, line = thresholds.counts_all[0]
            whose = "this rule's" if only_fixed else "the top-level"
            raise error(
                f"'fixable_only: false' cannot override {whose} 'only_fixed: true', which counts only fixable "
                "findings for every limit; set 'only_fixed: false' in the rule, or remove 'fixable_only: false'",
                line,
                key_path,
            )
        refs = cast("tuple[FileRef, ...]", values.get("vex", ()))
        if refs and files is None:
            raise error("this policy names VEX files, which only a policy read from a file can", spec.line, None)
        vex = tuple(files.vex(ref) for ref in refs) if files is not None else ()
        rules.append(
            ImageRule(
                index=spec.index,
                match=spec.match,
                line=spec.line,
                thresholds=thresholds.limits if thresholds is not None else None,
                fixable_only=thresholds.fixable_only if thresholds is not None else frozenset(),
                only_fixed=only_fixed,
                unscannable=cast("str | None", values.get("unscannable")),
                ignore=cast("tuple[IgnoreRule, ...]", values.get("ignore", ())),
                vex=vex,
            )
        )
    return tuple(rules)
