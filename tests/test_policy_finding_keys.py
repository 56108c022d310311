"""Finding-level policy keys other than ignore rules: the mapping form of a limit, only_fixed,
fail_on_stale_ignores, unscannable, baseline and reuse (cases in ``data/policy/finding_keys.yaml``)."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest

from crgate.errors import PolicyError
from crgate.model import Policy
from crgate.policy import parse_policy
from policycases import SOURCE, assert_invalid, invalid, valid_policies, with_rest


@pytest.mark.parametrize("text, expected", valid_policies("finding_keys.yaml"))
def test_valid_finding_level_policies(text: str, expected: Policy) -> None:
    policy = parse_policy(text, SOURCE)
    assert policy == expected
    assert isinstance(policy.thresholds, MappingProxyType)
    assert isinstance(policy.ignore, tuple)


def test_policy_without_new_keys_keeps_the_defaults() -> None:
    policy = parse_policy(with_rest(""), SOURCE)
    assert (
        policy.fixable_only,
        policy.only_fixed,
        policy.ignore,
        policy.baseline,
        policy.reuse_max_age,
        policy.fail_on_stale_ignores,
        policy.unscannable,
    ) == (frozenset(), False, (), None, None, False, "warn")
    assert not policy.uses_findings


@pytest.mark.parametrize("text, line, key, fragments", invalid("finding_keys.yaml"))
def test_invalid_finding_level_policies(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    assert_invalid(text, line, key, fragments)


def test_every_error_says_what_to_write() -> None:
    """Each message of the finding-level tables (these keys and ignore rules) ends in a fix, not just a
    complaint."""
    for param in [*invalid("finding_keys.yaml"), *invalid("ignore.yaml")]:
        with pytest.raises(PolicyError) as info:
            parse_policy(param.values[0], SOURCE)
        message = info.value.message
        assert re.search(r"\b(write|remove|add|put|did you mean|use|say|name|expected)\b", message), message
