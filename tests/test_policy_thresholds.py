"""Policy thresholds: the limits per severity, unknown and duplicate keys (cases in
``data/policy/thresholds.yaml``)."""

from __future__ import annotations

import pytest

from crgate.errors import ConfigError, PolicyError
from crgate.exitcodes import ExitCode
from crgate.model import Policy
from crgate.policy import parse_policy
from policycases import SOURCE, assert_invalid, invalid, v1, valid_thresholds


def test_parses_the_documented_example() -> None:
    text = v1("  critical: 0\n  high: 0\n  medium: 20\n  undefined: 10  # other\n  total: 50\n")
    policy = parse_policy(text, SOURCE)
    assert policy == Policy(
        version=1,
        thresholds={"critical": 0, "high": 0, "medium": 20, "undefined": 10, "total": 50},
        source=SOURCE,
    )


def test_thresholds_come_in_threshold_key_order_and_are_read_only() -> None:
    policy = parse_policy(v1("  total: 5\n  low: 3\n  critical: 1\n"), SOURCE)
    assert list(policy.thresholds) == ["critical", "low", "total"]
    with pytest.raises(TypeError):
        policy.thresholds["high"] = 0  # type: ignore[index]


@pytest.mark.parametrize("text, thresholds", valid_thresholds("thresholds.yaml"))
def test_valid_policies(text: str, thresholds: dict[str, int]) -> None:
    policy = parse_policy(text, SOURCE)
    assert policy.version == 1
    assert dict(policy.thresholds) == thresholds
    assert policy.source == SOURCE


@pytest.mark.parametrize("text, line, key, fragments", invalid("thresholds.yaml"))
def test_invalid_policies(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    assert_invalid(text, line, key, fragments)


def test_error_text_names_file_line_and_key() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(v1("  critcal: 0\n"), "ci/.crgate.yaml")
    assert str(info.value) == (
        "policy ci/.crgate.yaml:3 (key 'thresholds.critcal'): unknown key 'critcal' under 'thresholds'; "
        "did you mean 'critical'? valid keys are: critical, high, medium, low, negligible, undefined, total"
    )
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == ExitCode.USAGE
