"""The one strict YAML reader (crgate.yamlstrict): duplicate keys, merge keys, cycles and structure
limits, with small ``Rules`` so each limit is reached in a few lines; the CLI-level proofs that every
input kind uses it are in test_input_bounds.py."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import yaml

from crgate.errors import ConfigError
from crgate.yamlstrict import Rules, plain_data, read_document, read_documents, value_of

SMALL = Rules(name="test", max_depth=8, max_nodes=50, max_expanded=60, merge_keys=True)


@dataclass(frozen=True)
class Where:
    message: str
    line: int | None
    document: int | None
    key: str | None


class Refused(ConfigError):
    def __init__(self, where: Where):
        super().__init__(where.message)
        self.where = where


def error(message: str, *, line: int | None = None, document: int | None = None, key: str | None = None) -> Refused:
    return Refused(Where(message, line, document, key))


def refusal(text: str, rules: Rules = SMALL) -> Where:
    with pytest.raises(Refused) as info:
        list(read_documents(text, rules, error))
    return info.value.where


@pytest.mark.parametrize("fast", [False, True], ids=["pyyaml", "libyaml"])
def test_both_parsers_compose_the_same_lines(fast: bool) -> None:
    text = "a: 1\nb:\n  - x\n  - {y: 2}\n---\nc: &z [1]\nd: *z\n"
    documents = list(read_documents(text, replace(SMALL, fast=fast), error))
    assert [d.number for d in documents] == [1, 2]
    first, second = (plain_data(d.root, error) for d in documents)
    assert first == {"a": 1, "b": ["x", {"y": 2}]} and first.line == 1 and first["b"][1].line == 4
    assert second == {"c": [1], "d": [1]} and second["c"] is second["d"]


def test_node_limit_counts_every_document() -> None:
    text = "---\n".join("[1, 2, 3, 4]\n" for _ in range(11))  # 5 nodes a document
    where = refusal(text)
    assert (where.document, where.line) == (11, 21)
    assert "more than 50 YAML nodes" in where.message


def test_expansion_budget_is_shared_by_the_documents() -> None:
    one = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [*a, *a]\n"  # 14 written, 34 expanded
    assert len(list(read_documents(one, SMALL, error))) == 1
    where = refusal(one + "---\n" + one)
    assert where.document == 2 and "would give more than 60 YAML nodes" in where.message


def test_depth_counts_through_aliases() -> None:
    text = "a: &a [[[[1]]]]\nb: [[[[*a]]]]\n"  # five levels each, nine with the alias expanded
    where = refusal(text)
    assert (where.line, where.key) == (2, "b[0][0][0]")
    assert "nests more than 8 levels deep" in where.message


def test_cycles_through_sequences_and_merges_are_refused() -> None:
    assert refusal("a: &a [1, [2, *a]]\n").key == "a[1][1]"
    assert "would expand forever" in refusal("a: &a {b: {<<: *a}}\n").message


def test_duplicates_are_found_in_document_order_and_once_per_shared_node() -> None:
    where = refusal("a: {x: 1, x: 2}\na: 3\n")
    assert (where.line, where.key) == (1, "a.x")
    where = refusal("a: &s {k: 1, k: 2}\nb: *s\n")
    assert where.key == "a.k"


def test_merge_keys_explicit_wins_and_earlier_merge_wins() -> None:
    root = read_document("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], x: 0}\n", SMALL, error)
    assert isinstance(root, yaml.MappingNode)
    c = value_of(root, "c")
    assert isinstance(c, yaml.MappingNode)
    assert [value_of(c, key).value for key in "xyz"] == ["0", "1", "2"]  # type: ignore[union-attr]
    assert plain_data(c, error) == {"x": 0, "y": 1, "z": 2}
    assert value_of(c, "w") is None


def test_merge_keys_off_leave_the_key_to_the_format() -> None:
    rules = replace(SMALL, merge_keys=False)
    root = read_document("a: {<<: 1}\n", rules, error)
    assert root is not None  # a policy reports '<<' as an unknown key itself
    with pytest.raises(Refused) as info:
        read_document("a: {<<: 1}\n", SMALL, error)
    assert "must refer to a mapping" in info.value.where.message


def test_read_document_refuses_a_second_document_and_returns_none_for_none() -> None:
    assert read_document("# nothing\n", SMALL, error) is None
    with pytest.raises(Refused) as info:
        read_document("a: 1\n---\nb: 2\n", SMALL, error)
    assert info.value.where.line == 2 and "keep a single test document" in info.value.where.message


def test_plain_data_refuses_keys_yaml_reads_alike_and_complex_keys() -> None:
    root = read_document("1: a\n01: b\n", SMALL, error)
    assert root is not None
    with pytest.raises(Refused, match="duplicate key 1"):
        plain_data(root, error)
    root = read_document("? [a]\n: b\n", SMALL, error)
    assert root is not None
    with pytest.raises(Refused, match="keys must be plain names"):
        plain_data(root, error)


@pytest.mark.parametrize("fast", [False, True], ids=["pyyaml", "libyaml"])
def test_characters_yaml_forbids_are_refused_with_their_line_by_both_parsers(fast: bool) -> None:
    for text, character in (("a: 1\nb: \x07\n", "U+0007"), ("a: 1\nb: \udc00\n", "U+DC00")):
        where = refusal(text, replace(SMALL, fast=fast))
        assert where.line == 2 and f"the character {character} is not allowed" in where.message
