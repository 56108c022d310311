"""Ignore rules in the policy: id, reason, package, images, expires and duplicate rules (cases in
``data/policy/ignore.yaml``)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from crgate.model import Policy
from crgate.policy import parse_policy
from policycases import SOURCE, assert_invalid, invalid, valid_policies, with_rest


@pytest.mark.parametrize("text, expected", valid_policies("ignore.yaml"))
def test_valid_ignore_rules(text: str, expected: Policy) -> None:
    policy = parse_policy(text, SOURCE)
    assert policy == expected
    assert isinstance(policy.thresholds, MappingProxyType)
    assert isinstance(policy.ignore, tuple)


@pytest.mark.parametrize("text, line, key, fragments", invalid("ignore.yaml"))
def test_invalid_ignore_rules(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    assert_invalid(text, line, key, fragments)


def test_ignore_rule_lines_point_at_each_rule() -> None:
    text = with_rest(
        "ignore:\n"
        "  # the first rule\n"
        "  - id: CVE-2023-4863\n"
        "    reason: a\n"
        "\n"
        "  - reason: b\n"
        "    id: CVE-2023-4864\n"
        "  - {id: CVE-2023-4865, reason: c}\n"
    )
    assert [rule.line for rule in parse_policy(text, SOURCE).ignore] == [6, 9, 11]
