"""The built-in default policy, the one-line summary and the duration notation."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from crgate.durations import format_duration as format_duration_itself
from crgate.model import THRESHOLD_KEYS, BaselineSpec, IgnoreRule, Policy
from crgate.policy import (
    BUILTIN_DEFAULT_SOURCE,
    BUILTIN_DEFAULT_TEXT,
    DEFAULT_POLICY,
    describe_policy,
    format_duration,
    load_policy,
    parse_policy,
)
from policycases import SOURCE, with_rest

POLICY_DIR = Path(__file__).resolve().parents[1] / "policy"


def test_default_policy() -> None:
    digest = hashlib.sha256(BUILTIN_DEFAULT_TEXT.encode()).hexdigest()
    expected = Policy(version=1, thresholds={"critical": 0, "high": 0}, source="built-in default", sha256=digest)
    assert expected == DEFAULT_POLICY
    documented = parse_policy(BUILTIN_DEFAULT_TEXT, "built-in default")
    assert (documented.version, dict(documented.thresholds)) == (1, {"critical": 0, "high": 0})
    assert DEFAULT_POLICY.source == BUILTIN_DEFAULT_SOURCE


def test_default_yaml_matches_the_built_in_default() -> None:
    loaded = load_policy(POLICY_DIR / "default.yaml")
    assert (loaded.version, dict(loaded.thresholds)) == (
        DEFAULT_POLICY.version,
        dict(DEFAULT_POLICY.thresholds),
    )


@pytest.mark.parametrize(
    "thresholds, summary",
    [
        (
            {"critical": 0, "high": 0},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit",
        ),
        (
            {"total": 50, "medium": 20},
            "medium <= 20, total <= 50; critical, high, low, negligible, undefined: no limit",
        ),
        (
            dict.fromkeys(THRESHOLD_KEYS, 1),
            "critical <= 1, high <= 1, medium <= 1, low <= 1, negligible <= 1, undefined <= 1, total <= 1",
        ),
        ({}, "critical, high, medium, low, negligible, undefined, total: no limit"),
    ],
)
def test_describe_policy(thresholds: dict[str, int], summary: str) -> None:
    assert describe_policy(Policy(version=1, thresholds=thresholds, source="x")) == summary


@pytest.mark.parametrize(
    "fields, summary",
    [
        (
            {"fixable_only": frozenset({"high", "total"}), "thresholds": {"critical": 0, "high": 0, "total": 5}},
            "critical <= 0, high <= 0 (fixable only), total <= 5 (fixable only); medium, low, negligible, "
            "undefined: no limit",
        ),
        (
            {"only_fixed": True, "fixable_only": frozenset({"high"})},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; "
            "only fixable findings count",
        ),
        (
            {"ignore": (IgnoreRule(id="CVE-2023-4863", reason="x"),), "fail_on_stale_ignores": True},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; 1 ignore rule; "
            "stale ignore rules fail",
        ),
        (
            {"ignore": (IgnoreRule(id="A", reason="x"), IgnoreRule(id="B", reason="y"))},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; 2 ignore rules",
        ),
        (
            {"baseline": BaselineSpec(image="cr.yandex/crpabc/app:prod")},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; "
            "baseline cr.yandex/crpabc/app:prod",
        ),
        (
            {"baseline": BaselineSpec(image="cr.yandex/crpabc/app:prod", missing="pass")},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; "
            "baseline cr.yandex/crpabc/app:prod (passes when the baseline is missing)",
        ),
        (
            {"reuse_max_age": dt.timedelta(hours=24), "unscannable": "fail"},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit; "
            "reuse scans up to 24h old; unscannable images: fail",
        ),
        (
            {"unscannable": "warn", "reuse_max_age": None, "ignore": ()},
            "critical <= 0, high <= 0; medium, low, negligible, undefined, total: no limit",
        ),
    ],
)
def test_describe_policy_finding_level(fields: dict[str, object], summary: str) -> None:
    values: dict[str, object] = {"version": 1, "thresholds": {"critical": 0, "high": 0}, "source": "x", **fields}
    assert describe_policy(Policy(**values)) == summary  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "duration, text",
    [
        (dt.timedelta(seconds=90), "90s"),
        (dt.timedelta(minutes=15), "15m"),
        (dt.timedelta(hours=1), "1h"),
        (dt.timedelta(hours=24), "24h"),
        (dt.timedelta(hours=36), "36h"),
        (dt.timedelta(days=2), "2d"),
        (dt.timedelta(days=7), "7d"),
        (dt.timedelta(seconds=3601), "3601s"),
    ],
)
def test_format_duration_round_trips(duration: dt.timedelta, text: str) -> None:
    assert format_duration(duration) == text
    assert parse_policy(with_rest(f"reuse: {{max_age: {text}}}\n"), SOURCE).reuse_max_age == duration


def test_format_duration_is_one_function_without_yaml() -> None:
    """The runner and reports can name durations without loading the YAML reader."""
    assert format_duration is format_duration_itself
    code = "import sys, crgate.durations; assert 'yaml' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
