"""Policy test cases kept as data (``tests/data/policy/*.yaml``) and the checks every case table shares.

A case file holds ``valid`` cases (the policy text and what it parses to) and ``invalid`` cases (the
text, the 1-based line and dotted key the error names, and fragments its message must hold). Reading a
case file is plain ``yaml.safe_load``: the cases are test data, not crgate input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from crgate.errors import PolicyError
from crgate.model import BaselineSpec, IgnoreRule, Policy
from crgate.policy import parse_policy

CASES = Path(__file__).resolve().parent / "data" / "policy"
SOURCE = "p.yaml"


def v1(thresholds: str) -> str:
    """A version-1 policy whose ``thresholds:`` block (line 2 on) is ``thresholds``."""
    return "version: 1\nthresholds:\n" + thresholds


def with_rest(rest: str) -> str:
    """A version-1 policy with ``thresholds: {high: 0}`` on lines 2-3 and ``rest`` from line 4 on."""
    return v1("  high: 0\n") + rest


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), name
    return data


def invalid(name: str) -> list[Any]:
    """``(text, line, key, fragments)`` params of a case file's ``invalid`` table."""
    return [
        pytest.param(case["policy"], case["line"], case["key"], case["fragments"], id=case["id"])
        for case in load(name)["invalid"]
    ]


def valid_thresholds(name: str) -> list[Any]:
    """``(text, thresholds)`` params of a case file's ``valid`` table."""
    return [pytest.param(case["policy"], case["thresholds"], id=case["id"]) for case in load(name)["valid"]]


def valid_policies(name: str) -> list[Any]:
    """``(text, Policy)`` params of a case file's ``valid`` table, ``expect`` applied to the default."""
    return [pytest.param(case["policy"], expected(case["expect"]), id=case["id"]) for case in load(name)["valid"]]


def policy(**fields: object) -> Policy:
    """The policy ``with_rest(...)`` texts parse to, with ``fields`` changed."""
    values: dict[str, object] = {"version": 1, "thresholds": {"high": 0}, "source": SOURCE}
    values.update(fields)
    return Policy(**values)  # type: ignore[arg-type]


def expected(fields: dict[str, Any]) -> Policy:
    """A case's ``expect`` mapping as the ``Policy`` it stands for."""
    converted: dict[str, object] = {}
    for name, value in fields.items():
        if name == "fixable_only":
            converted[name] = frozenset(value)
        elif name == "ignore":
            converted[name] = tuple(_rule(rule) for rule in value)
        elif name == "baseline":
            converted[name] = BaselineSpec(**value)
        elif name == "reuse_max_age":
            converted[name] = None if value is None else dt.timedelta(**value)
        else:
            converted[name] = value
    return policy(**converted)


def _rule(data: dict[str, Any]) -> IgnoreRule:
    fields = dict(data)
    if "images" in fields:
        fields["images"] = tuple(fields["images"])
    return IgnoreRule(**fields)


def assert_invalid(text: str, line: int | None, key: str | None, fragments: list[str]) -> PolicyError:
    """Parsing fails naming ``line`` and ``key``, with every fragment in the message."""
    with pytest.raises(PolicyError) as info:
        parse_policy(text, SOURCE)
    err = info.value
    assert (err.source, err.line, err.key) == (SOURCE, line, key), str(err)
    for fragment in fragments:
        assert fragment in err.message, err.message
    return err
