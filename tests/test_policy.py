"""The policy loader (crgate.policy), the example policies and the JSON Schema of the format."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import jsonschema
import pytest
import yaml

from crgate.errors import ConfigError, PolicyError
from crgate.exitcodes import ExitCode
from crgate.model import THRESHOLD_KEYS, BaselineSpec, IgnoreRule, Policy
from crgate.policy import (
    BASELINE_KEYS,
    BUILTIN_DEFAULT_SOURCE,
    DEFAULT_POLICY,
    DISCOVERY_FILES,
    IGNORE_RULE_KEYS,
    LIMIT_KEYS,
    REUSE_KEYS,
    TOP_LEVEL_KEYS,
    describe_policy,
    discover_policy,
    format_duration,
    load_policy,
    parse_policy,
)

POLICY_DIR = Path(__file__).resolve().parents[1] / "policy"
SCHEMA_PATH = POLICY_DIR / "schema.json"
EXAMPLE_POLICIES = sorted(POLICY_DIR.glob("*.yaml"))
SOURCE = "p.yaml"


def _v1(thresholds: str) -> str:
    """A version-1 policy whose ``thresholds:`` block (line 2 on) is ``thresholds``."""
    return "version: 1\nthresholds:\n" + thresholds


def _with(rest: str) -> str:
    """A version-1 policy with ``thresholds: {high: 0}`` on lines 2-3 and ``rest`` from line 4 on."""
    return _v1("  high: 0\n") + rest


def _rule(body: str) -> str:
    """A policy whose first ignore rule starts on line 5 with ``body`` (continuation lines indented by 4)."""
    return _with("ignore:\n  - " + body)


# --------------------------------------------------------------------------------------------------
# Valid policies


def test_parses_the_documented_example() -> None:
    text = _v1("  critical: 0\n  high: 0\n  medium: 20\n  undefined: 10  # other\n  total: 50\n")
    policy = parse_policy(text, SOURCE)
    assert policy == Policy(
        version=1,
        thresholds={"critical": 0, "high": 0, "medium": 20, "undefined": 10, "total": 50},
        source=SOURCE,
    )


def test_thresholds_come_in_threshold_key_order_and_are_read_only() -> None:
    policy = parse_policy(_v1("  total: 5\n  low: 3\n  critical: 1\n"), SOURCE)
    assert list(policy.thresholds) == ["critical", "low", "total"]
    with pytest.raises(TypeError):
        policy.thresholds["high"] = 0  # type: ignore[index]


@pytest.mark.parametrize(
    "text, thresholds",
    [
        pytest.param("version: 1\nthresholds: {critical: 0, high: 2}\n", {"critical": 0, "high": 2}, id="flow"),
        pytest.param('"version": 1\n"thresholds":\n  "high": 3\n', {"high": 3}, id="quoted-keys"),
        pytest.param("---\nversion: 1\nthresholds:\n  high: 0\n...\n", {"high": 0}, id="explicit-document"),
        pytest.param("\ufeffversion: 1\nthresholds:\n  high: 0\n", {"high": 0}, id="byte-order-mark"),
        pytest.param(_v1("  high: +4\n"), {"high": 4}, id="plus-sign"),
        pytest.param(_v1("  high: 1000000\n"), {"high": 1000000}, id="big"),
        pytest.param(_v1("  high: &n 2\n  critical: *n\n"), {"critical": 2, "high": 2}, id="alias"),
        pytest.param(_v1("  high: !!int 7\n"), {"high": 7}, id="explicit-int-tag"),
        pytest.param(
            _v1("  " + "\n  ".join(f"{k}: 1" for k in THRESHOLD_KEYS) + "\n"),
            dict.fromkeys(THRESHOLD_KEYS, 1),
            id="every-key",
        ),
    ],
)
def test_valid_policies(text: str, thresholds: dict[str, int]) -> None:
    policy = parse_policy(text, SOURCE)
    assert policy.version == 1
    assert dict(policy.thresholds) == thresholds
    assert policy.source == SOURCE


# --------------------------------------------------------------------------------------------------
# Invalid policies: every case names the line, the key and what to do.

BAD_POLICIES = [
    # unknown keys, with a "did you mean" hint and the valid keys
    pytest.param(
        _v1("  critcal: 0\n"),
        3,
        "thresholds.critcal",
        [
            "unknown key 'critcal' under 'thresholds'",
            "did you mean 'critical'?",
            "valid keys are: critical, high, medium, low, negligible, undefined, total",
        ],
        id="unknown-threshold-typo",
    ),
    pytest.param(
        _v1("  high: 0\n  Critical: 0\n"),
        4,
        "thresholds.Critical",
        ["did you mean 'critical'?"],
        id="unknown-threshold-case",
    ),
    pytest.param(
        _v1("  other: 0\n"),
        3,
        "thresholds.other",
        ["unknown key 'other'", "did you mean 'undefined'?"],
        id="unknown-threshold-other-alias",
    ),
    pytest.param(
        _v1("  severe: 0\n"),
        3,
        "thresholds.severe",
        ["unknown key 'severe' under 'thresholds'; valid keys are: critical"],
        id="unknown-threshold-no-hint",
    ),
    pytest.param(
        "version: 1\nthreshold:\n  high: 0\n",
        2,
        "threshold",
        ["unknown key 'threshold'", "did you mean 'thresholds'?", "valid keys are: version, thresholds"],
        id="unknown-top-level-typo",
    ),
    pytest.param(
        "versoin: 1\nthresholds:\n  high: 0\n",
        1,
        "versoin",
        ["did you mean 'version'?"],
        id="unknown-top-level-before-missing-version",
    ),
    pytest.param(
        _v1("  high: 0\nignores: []\n"),
        4,
        "ignores",
        ["unknown key 'ignores'", "did you mean 'ignore'?"],
        id="unknown-top-level-ignores",
    ),
    pytest.param(_v1("  high: 0\n  <<: {low: 1}\n"), 4, "thresholds.<<", ["unknown key '<<'"], id="merge-key"),
    pytest.param(
        _v1("  ? [high]\n  : 0\n"),
        3,
        "thresholds",
        ["keys must be plain names, got a list"],
        id="complex-key",
    ),
    # duplicate keys, at any depth
    pytest.param(
        _v1("  high: 0\n  medium: 1\n  high: 5\n"),
        5,
        "thresholds.high",
        ["duplicate key 'high' (first set on line 3)", "remove one of them"],
        id="duplicate-threshold",
    ),
    pytest.param(
        _v1("  high: 0\n  'high': 5\n"),
        4,
        "thresholds.high",
        ["duplicate key 'high'"],
        id="duplicate-threshold-quoted",
    ),
    pytest.param(
        "version: 1\nthresholds: {high: 0}\nversion: 1\n",
        3,
        "version",
        ["duplicate key 'version' (first set on line 1)"],
        id="duplicate-top-level",
    ),
    pytest.param(
        "version: 1\nthresholds: {high: 0}\nthresholds: {low: 0}\n",
        3,
        "thresholds",
        ["duplicate key 'thresholds'"],
        id="duplicate-thresholds",
    ),
    pytest.param(
        _v1("  high: {max: 0, max: 1}\n"),
        3,
        "thresholds.high.max",
        ["duplicate key 'max'"],
        id="duplicate-nested",
    ),
    # limits
    pytest.param(
        _v1("  high: -1\n"),
        3,
        "thresholds.high",
        ["must not be negative, got -1", "write 0 to allow none", "remove the key for no limit"],
        id="limit-negative",
    ),
    pytest.param(
        _v1("  high: 1.5\n"),
        3,
        "thresholds.high",
        ["must be a whole number, got the decimal number 1.5"],
        id="limit-float",
    ),
    pytest.param(
        _v1("  high: 1.0\n"),
        3,
        "thresholds.high",
        ["got the decimal number 1.0", "without the decimal point: 1"],
        id="limit-float-whole",
    ),
    pytest.param(_v1("  high: 1e3\n"), 3, "thresholds.high", ["must be a whole number"], id="limit-exponent"),
    pytest.param(_v1("  high: .inf\n"), 3, "thresholds.high", ["got the decimal number .inf"], id="limit-infinity"),
    pytest.param(
        _v1('  high: "5"\n'),
        3,
        "thresholds.high",
        ["got the text '5'", "without quotes: 5"],
        id="limit-string-number",
    ),
    pytest.param(_v1("  high: none\n"), 3, "thresholds.high", ["got the text 'none'"], id="limit-string"),
    pytest.param(
        _v1("  high: true\n"),
        3,
        "thresholds.high",
        ["got 'true', which YAML reads as the boolean true"],
        id="limit-true",
    ),
    pytest.param(
        _v1("  high: yes\n"),
        3,
        "thresholds.high",
        ["got 'yes', which YAML reads as the boolean true"],
        id="limit-yes",
    ),
    pytest.param(
        _v1("  high: off\n"),
        3,
        "thresholds.high",
        ["got 'off', which YAML reads as the boolean false"],
        id="limit-off",
    ),
    pytest.param(
        _v1("  high:\n  low: 1\n"),
        3,
        "thresholds.high",
        ["has no value", "remove the key for no limit"],
        id="limit-null-empty",
    ),
    pytest.param(
        _v1("  low: 1\n  high:\n"),
        4,
        "thresholds.high",
        ["has no value", "remove the key for no limit"],
        id="limit-null-at-end",
    ),
    pytest.param(_v1("  high: ~\n"), 3, "thresholds.high", ["has no value"], id="limit-null-tilde"),
    pytest.param(
        _v1("  high: [0]\n"),
        3,
        "thresholds.high",
        ["must be a whole number or a mapping, got a list", "'high: 0' or 'high: {max: 0, fixable_only: true}'"],
        id="limit-list",
    ),
    pytest.param(
        _v1("  high: 010\n"),
        3,
        "thresholds.high",
        ["plain decimal digits", "reads '010' as 8"],
        id="limit-octal",
    ),
    pytest.param(_v1("  high: 0x10\n"), 3, "thresholds.high", ["reads '0x10' as 16"], id="limit-hex"),
    pytest.param(_v1("  high: 1_000\n"), 3, "thresholds.high", ["reads '1_000' as 1000"], id="limit-underscore"),
    pytest.param(_v1("  high: 1:30\n"), 3, "thresholds.high", ["reads '1:30' as 90"], id="limit-base-60"),
    pytest.param(_v1("  high: 2024-01-01\n"), 3, "thresholds.high", ["got a date"], id="limit-date"),
    pytest.param(
        _v1("  high: !custom 0\n"),
        3,
        "thresholds.high",
        ["cannot read the value", "without a YAML tag"],
        id="limit-unknown-tag",
    ),
    pytest.param(
        _v1("  high: !!int abc\n"),
        3,
        "thresholds.high",
        ["cannot read the value (invalid literal for int()", "without a YAML tag"],
        id="limit-bad-int-tag",
    ),
    pytest.param(
        _v1("  high: 2027-02-30\n"),
        3,
        "thresholds.high",
        ["cannot read the value (day is out of range for month)"],
        id="limit-impossible-date",
    ),
    # version
    pytest.param(
        "thresholds:\n  high: 0\n",
        1,
        "version",
        ["missing required key 'version'", "add 'version: 1'"],
        id="version-missing",
    ),
    pytest.param(
        "# policy\n\nthresholds:\n  high: 0\n",
        3,
        "version",
        ["missing required key 'version'"],
        id="version-missing-after-comments",
    ),
    pytest.param(
        "version: 2\nthresholds:\n  high: 0\n",
        1,
        "version",
        ["unsupported policy version 2", "reads version 1", "upgrade crgate"],
        id="version-2",
    ),
    pytest.param(
        "version: 2\nthresholds:\n  high: 0\nsuppress: []\n",
        1,
        "version",
        ["unsupported policy version 2"],
        id="version-2-before-unknown-keys",
    ),
    pytest.param(
        "version: 0\nthresholds:\n  high: 0\n", 1, "version", ["unsupported policy version 0"], id="version-0"
    ),
    pytest.param(
        'version: "1"\nthresholds:\n  high: 0\n',
        1,
        "version",
        ["'version' must be a whole number, got the text '1'", "without quotes: 1"],
        id="version-string",
    ),
    pytest.param(
        "version: 1.0\nthresholds:\n  high: 0\n",
        1,
        "version",
        ["got the decimal number 1.0", "without the decimal point: 1"],
        id="version-float",
    ),
    pytest.param(
        "version: true\nthresholds:\n  high: 0\n",
        1,
        "version",
        ["boolean true", "such as 1"],
        id="version-bool",
    ),
    pytest.param(
        "version:\nthresholds:\n  high: 0\n",
        1,
        "version",
        ["has no value", "write 'version: 1'"],
        id="version-null",
    ),
    pytest.param("version: [1]\nthresholds:\n  high: 0\n", 1, "version", ["got a list"], id="version-list"),
    # thresholds
    pytest.param(
        "version: 1\n",
        1,
        "thresholds",
        ["missing required key 'thresholds'", "every image would pass"],
        id="thresholds-missing",
    ),
    pytest.param(
        "version: 1\nthresholds:\n",
        2,
        "thresholds",
        ["'thresholds' is empty", "set at least one"],
        id="thresholds-null",
    ),
    pytest.param(
        "version: 1\nthresholds: {}\n",
        2,
        "thresholds",
        ["'thresholds' sets no limits", "every image would pass"],
        id="thresholds-empty-mapping",
    ),
    pytest.param(
        "version: 1\nthresholds:\n  - critical: 0\n",
        2,
        "thresholds",
        ["'thresholds' must be a mapping", "got a list"],
        id="thresholds-list",
    ),
    pytest.param(
        "version: 1\nthresholds: 0\n",
        2,
        "thresholds",
        ["'thresholds' must be a mapping", "got a single value"],
        id="thresholds-scalar",
    ),
    # the document
    pytest.param("", None, None, ["the policy file is empty (or only comments)"], id="empty"),
    pytest.param("\n\n   \n", None, None, ["is empty"], id="blank"),
    pytest.param("# nothing\n# here\n", None, None, ["is empty (or only comments)"], id="only-comments"),
    pytest.param("---\n", None, None, ["is empty"], id="empty-document"),
    pytest.param("- version: 1\n", 1, None, ["must be a YAML mapping", "got a list"], id="document-list"),
    pytest.param("# c\nversion 1\n", 2, None, ["must be a YAML mapping", "got a single value"], id="document-scalar"),
    pytest.param(
        _v1("  high: 0\n---\nversion: 1\n"),
        4,
        None,
        ["more than one YAML document", "keep a single policy document"],
        id="multiple-documents",
    ),
    pytest.param(
        _v1("  high: 0\n   low: 1\n"),
        4,
        None,
        ["invalid YAML: mapping values are not allowed here", "fix the syntax"],
        id="yaml-indent",
    ),
    pytest.param(
        "version: 1\nthresholds: {high: 0\n",
        3,
        None,
        ["invalid YAML", "expected ',' or '}'"],
        id="yaml-unclosed-flow",
    ),
    pytest.param(_v1("\thigh: 0\n"), 3, None, ["invalid YAML", "'\\t'"], id="yaml-tab"),
    pytest.param(
        "version: 1\nthresholds: *limits\n",
        2,
        None,
        ["invalid YAML: found undefined alias 'limits'"],
        id="yaml-undefined-alias",
    ),
    pytest.param(
        "version: 1\n\x07thresholds:\n",
        2,
        None,
        ["invalid YAML: the character U+0007 is not allowed"],
        id="yaml-control-character",
    ),
]


@pytest.mark.parametrize("text, line, key, fragments", BAD_POLICIES)
def test_invalid_policies(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, SOURCE)
    err = info.value
    assert (err.source, err.line, err.key) == (SOURCE, line, key), str(err)
    for fragment in fragments:
        assert fragment in err.message, err.message


def test_error_text_names_file_line_and_key() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(_v1("  critcal: 0\n"), "ci/.crgate.yaml")
    assert str(info.value) == (
        "policy ci/.crgate.yaml:3 (key 'thresholds.critcal'): unknown key 'critcal' under 'thresholds'; "
        "did you mean 'critical'? valid keys are: critical, high, medium, low, negligible, undefined, total"
    )
    assert isinstance(info.value, ConfigError)
    assert info.value.exit_code == ExitCode.USAGE


# --------------------------------------------------------------------------------------------------
# Finding-level keys: fixable-only limits, only_fixed, ignore, baseline, reuse, fail_on_stale_ignores,
# unscannable. Valid policies first, then a table of errors (line, key, message fragments).


def _policy(**fields: object) -> Policy:
    """The policy ``_with(...)`` texts parse to, with ``fields`` changed."""
    values: dict[str, object] = {"version": 1, "thresholds": {"high": 0}, "source": SOURCE}
    values.update(fields)
    return Policy(**values)  # type: ignore[arg-type]


RULE = IgnoreRule(id="CVE-2023-4863", reason="not reachable", line=5)
VALID_FINDING_LEVEL = [
    # thresholds: the mapping form
    pytest.param(
        _v1("  critical: 0\n  high: {max: 2, fixable_only: true}\n"),
        {"thresholds": {"critical": 0, "high": 2}, "fixable_only": frozenset({"high"})},
        id="limit-form-flow",
    ),
    pytest.param(
        _v1("  high:\n    max: 0\n    fixable_only: true\n  total:\n    max: 9\n    fixable_only: true\n"),
        {"thresholds": {"high": 0, "total": 9}, "fixable_only": frozenset({"high", "total"})},
        id="limit-form-block-with-total",
    ),
    pytest.param(
        _v1("  high: {max: 3}\n"),
        {"thresholds": {"high": 3}, "fixable_only": frozenset()},
        id="limit-form-max-only",
    ),
    pytest.param(
        _v1("  high: {max: 3, fixable_only: false}\n"),
        {"thresholds": {"high": 3}, "fixable_only": frozenset()},
        id="limit-form-fixable-false",
    ),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: True}\n  low: {max: 1, fixable_only: FALSE}\n"),
        {"thresholds": {"high": 0, "low": 1}, "fixable_only": frozenset({"high"})},
        id="limit-form-yaml-1.2-spellings",
    ),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: true}\n"),
        {"thresholds": {"high": 0}, "fixable_only": frozenset({"high"})},
        id="only-fixable-limits-still-count-as-limits",
    ),
    # only_fixed, fail_on_stale_ignores, unscannable
    pytest.param(_with("only_fixed: true\n"), {"only_fixed": True}, id="only-fixed-true"),
    pytest.param(_with("only_fixed: false\n"), {"only_fixed": False}, id="only-fixed-false"),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: true}\nonly_fixed: true\n"),
        {"only_fixed": True, "fixable_only": frozenset({"high"})},
        id="only-fixed-with-redundant-fixable-only",
    ),
    pytest.param(_with("fail_on_stale_ignores: true\n"), {"fail_on_stale_ignores": True}, id="stale-true"),
    pytest.param(_with("fail_on_stale_ignores: false\n"), {"fail_on_stale_ignores": False}, id="stale-false"),
    pytest.param(_with("unscannable: warn\n"), {"unscannable": "warn"}, id="unscannable-warn"),
    pytest.param(_with("unscannable: fail\n"), {"unscannable": "fail"}, id="unscannable-fail"),
    pytest.param(_with("unscannable: 'skip'\n"), {"unscannable": "skip"}, id="unscannable-skip-quoted"),
    # ignore
    pytest.param(_with("ignore: []\n"), {"ignore": ()}, id="ignore-empty"),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: not reachable\n"),
        {"ignore": (RULE,)},
        id="ignore-minimal",
    ),
    pytest.param(
        _rule(
            'id: CVE-2023-4863\n    package: "libwebp*"\n    images: ["cr.yandex/*/app*", cr.yandex/crpabc/web]\n'
            '    reason: "WebP decoding is not reachable in this service"\n    expires: 2027-01-31\n'
        ),
        {
            "ignore": (
                IgnoreRule(
                    id="CVE-2023-4863",
                    reason="WebP decoding is not reachable in this service",
                    package="libwebp*",
                    images=("cr.yandex/*/app*", "cr.yandex/crpabc/web"),
                    expires=dt.date(2027, 1, 31),
                    line=5,
                ),
            )
        },
        id="ignore-every-key",
    ),
    pytest.param(
        _rule("{id: CVE-2023-4863, reason: not reachable}\n"),
        {"ignore": (RULE,)},
        id="ignore-flow-rule",
    ),
    pytest.param(
        _rule("reason: not reachable\n    id: CVE-2023-4863\n"),
        {"ignore": (RULE,)},
        id="ignore-any-key-order",
    ),
    pytest.param(
        _rule('id: "  CVE-2023-4863 "\n    reason: "  not reachable\\n"\n'),
        {"ignore": (RULE,)},
        id="ignore-id-and-reason-stripped",
    ),
    pytest.param(
        _rule("id: cve-2023-4863\n    reason: x\n"),
        {"ignore": (IgnoreRule(id="cve-2023-4863", reason="x", line=5),)},
        id="ignore-id-case-kept",
    ),
    pytest.param(
        _rule("reason: >\n      a long reason\n      on two lines\n    id: CVE-2023-4863\n"),
        {"ignore": (IgnoreRule(id="CVE-2023-4863", reason="a long reason on two lines", line=5),)},
        id="ignore-folded-reason",
    ),
    pytest.param(
        _with(
            "ignore:\n"
            "  - {id: CVE-2023-12345, reason: five digits}\n"
            "  - {id: GHSA-jfh8-c2jp-5v3q, reason: github advisory}\n"
            "  - {id: GO-2022-0969, reason: go advisory}\n"
            "  - {id: RHSA-2023:1234, reason: red hat}\n"
            "  - {id: PYSEC-2021-19, reason: python}\n"
        ),
        {
            "ignore": (
                IgnoreRule(id="CVE-2023-12345", reason="five digits", line=5),
                IgnoreRule(id="GHSA-jfh8-c2jp-5v3q", reason="github advisory", line=6),
                IgnoreRule(id="GO-2022-0969", reason="go advisory", line=7),
                IgnoreRule(id="RHSA-2023:1234", reason="red hat", line=8),
                IgnoreRule(id="PYSEC-2021-19", reason="python", line=9),
            )
        },
        id="ignore-scanner-id-kinds",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: '2027-01-31'\n"),
        {"ignore": (IgnoreRule(id="CVE-2023-4863", reason="x", expires=dt.date(2027, 1, 31), line=5),)},
        id="ignore-expires-quoted",
    ),
    pytest.param(
        _rule('id: CVE-2023-4863\n    reason: x\n    expires: "2028-02-29"\n'),
        {"ignore": (IgnoreRule(id="CVE-2023-4863", reason="x", expires=dt.date(2028, 2, 29), line=5),)},
        id="ignore-expires-leap-day",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images:\n      - ' cr.yandex/*/app* '\n"),
        {"ignore": (IgnoreRule(id="CVE-2023-4863", reason="x", images=("cr.yandex/*/app*",), line=5),)},
        id="ignore-images-block-list-stripped",
    ),
    pytest.param(
        _with(
            "ignore:\n"
            "  - {id: CVE-2023-4863, reason: a}\n"
            "  - {id: CVE-2023-4863, package: libwebp7, reason: b}\n"
            "  - {id: CVE-2023-4863, images: [cr.yandex/*], reason: c}\n"
            "  - {id: CVE-2023-4864, reason: d}\n"
        ),
        {
            "ignore": (
                IgnoreRule(id="CVE-2023-4863", reason="a", line=5),
                IgnoreRule(id="CVE-2023-4863", reason="b", package="libwebp7", line=6),
                IgnoreRule(id="CVE-2023-4863", reason="c", images=("cr.yandex/*",), line=7),
                IgnoreRule(id="CVE-2023-4864", reason="d", line=8),
            )
        },
        id="ignore-same-id-different-scope-is-not-a-duplicate",
    ),
    # baseline
    pytest.param(
        _with("baseline:\n  image: cr.yandex/crpabc/app:production\n"),
        {"baseline": BaselineSpec(image="cr.yandex/crpabc/app:production", missing="fail")},
        id="baseline-default-missing",
    ),
    pytest.param(
        _with("baseline: {image: ' cr.cloud.yandex.net/crpabc/app ', missing: pass}\n"),
        {"baseline": BaselineSpec(image="cr.cloud.yandex.net/crpabc/app", missing="pass")},
        id="baseline-missing-pass",
    ),
    pytest.param(
        _with(f"baseline: {{image: 'cr.yandex/crpabc/app@sha256:{'a' * 64}', missing: fail}}\n"),
        {"baseline": BaselineSpec(image=f"cr.yandex/crpabc/app@sha256:{'a' * 64}", missing="fail")},
        id="baseline-digest",
    ),
    # reuse
    pytest.param(_with("reuse: {max_age: 90s}\n"), {"reuse_max_age": dt.timedelta(seconds=90)}, id="reuse-seconds"),
    pytest.param(_with("reuse: {max_age: 15m}\n"), {"reuse_max_age": dt.timedelta(minutes=15)}, id="reuse-minutes"),
    pytest.param(_with("reuse:\n  max_age: 24h\n"), {"reuse_max_age": dt.timedelta(hours=24)}, id="reuse-hours"),
    pytest.param(_with("reuse: {max_age: 7d}\n"), {"reuse_max_age": dt.timedelta(days=7)}, id="reuse-days"),
    pytest.param(_with("reuse: {max_age: '36h'}\n"), {"reuse_max_age": dt.timedelta(hours=36)}, id="reuse-quoted"),
    pytest.param(_with("reuse: {max_age: 0}\n"), {"reuse_max_age": None}, id="reuse-zero"),
    pytest.param(_with("reuse: {max_age: 0s}\n"), {"reuse_max_age": None}, id="reuse-zero-with-unit"),
    pytest.param(_with("reuse: {max_age: '0'}\n"), {"reuse_max_age": None}, id="reuse-zero-quoted"),
    # everything at once
    pytest.param(
        _v1("  critical: 0\n  high: {max: 0, fixable_only: true}\n")
        + "only_fixed: false\n"
        + "ignore:\n  - id: CVE-2023-4863\n    reason: not reachable\n"
        + "baseline: {image: cr.yandex/crpabc/app:prod}\n"
        + "reuse: {max_age: 24h}\n"
        + "fail_on_stale_ignores: true\n"
        + "unscannable: fail\n",
        {
            "thresholds": {"critical": 0, "high": 0},
            "fixable_only": frozenset({"high"}),
            "ignore": (IgnoreRule(id="CVE-2023-4863", reason="not reachable", line=7),),
            "baseline": BaselineSpec(image="cr.yandex/crpabc/app:prod"),
            "reuse_max_age": dt.timedelta(hours=24),
            "fail_on_stale_ignores": True,
            "unscannable": "fail",
        },
        id="every-key",
    ),
]


@pytest.mark.parametrize("text, fields", VALID_FINDING_LEVEL)
def test_valid_finding_level_policies(text: str, fields: dict[str, object]) -> None:
    policy = parse_policy(text, SOURCE)
    assert policy == _policy(**fields)
    assert isinstance(policy.thresholds, MappingProxyType)
    assert isinstance(policy.ignore, tuple)


def test_policy_without_new_keys_keeps_the_defaults() -> None:
    policy = parse_policy(_with(""), SOURCE)
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


BAD_FINDING_LEVEL = [
    # thresholds: the mapping form
    pytest.param(
        _v1("  high: {fixable_only: true}\n"),
        3,
        "thresholds.high.max",
        ["missing required key 'max'", "{max: 0, fixable_only: true}"],
        id="limit-form-no-max",
    ),
    pytest.param(_v1("  high: {}\n"), 3, "thresholds.high.max", ["missing required key 'max'"], id="limit-form-empty"),
    pytest.param(
        _v1("  high:\n    max: -1\n"),
        4,
        "thresholds.high.max",
        ["the limit must not be negative, got -1"],
        id="limit-form-negative",
    ),
    pytest.param(
        _v1("  high: {max: 1.5}\n"),
        3,
        "thresholds.high.max",
        ["got the decimal number 1.5"],
        id="limit-form-float",
    ),
    pytest.param(
        _v1("  high: {max: '0'}\n"),
        3,
        "thresholds.high.max",
        ["got the text '0'", "without quotes: 0"],
        id="limit-form-string",
    ),
    pytest.param(_v1("  high: {max: ~}\n"), 3, "thresholds.high.max", ["has no value"], id="limit-form-null"),
    pytest.param(_v1("  high: {max: 010}\n"), 3, "thresholds.high.max", ["reads '010' as 8"], id="limit-form-octal"),
    pytest.param(
        _v1("  high: {max: 0, fixabel: true}\n"),
        3,
        "thresholds.high.fixabel",
        ["unknown key 'fixabel' under 'thresholds.high'", "did you mean 'fixable_only'?", "valid keys are: max, "],
        id="limit-form-unknown-key",
    ),
    pytest.param(
        _v1("  high: {limit: 0}\n"),
        3,
        "thresholds.high.limit",
        ["did you mean 'max'?"],
        id="limit-form-limit-alias",
    ),
    pytest.param(
        _v1("  high:\n    max: 0\n    fixable_only: yes\n"),
        5,
        "thresholds.high.fixable_only",
        [
            "'fixable_only' must be true or false",
            "PyYAML reads 'yes' as true but YAML 1.2 tools read it as text",
            "write true",
        ],
        id="fixable-only-yes",
    ),
    pytest.param(
        _v1("  total: {max: 5, fixable_only: off}\n"),
        3,
        "thresholds.total.fixable_only",
        ["reads 'off' as false", "write false"],
        id="fixable-only-off",
    ),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: 'true'}\n"),
        3,
        "thresholds.high.fixable_only",
        ["got the text 'true'", "without quotes: true"],
        id="fixable-only-quoted",
    ),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: 1}\n"),
        3,
        "thresholds.high.fixable_only",
        ["must be true or false, got the number 1"],
        id="fixable-only-number",
    ),
    pytest.param(
        _v1("  high:\n    max: 0\n    fixable_only:\n"),
        5,
        "thresholds.high.fixable_only",
        ["has no value", "remove the key"],
        id="fixable-only-null",
    ),
    pytest.param(
        _v1("  high: {max: 0, fixable_only: [true]}\n"),
        3,
        "thresholds.high.fixable_only",
        ["must be true or false, got a list"],
        id="fixable-only-list",
    ),
    pytest.param(
        _v1("  critical: 0\n  high:\n    max: 0\n    fixable_only: false\nonly_fixed: true\n"),
        6,
        "thresholds.high.fixable_only",
        ["'fixable_only: false' cannot override 'only_fixed: true'", "every high finding", "remove 'only_fixed'"],
        id="fixable-only-false-contradicts-only-fixed",
    ),
    # only_fixed and the other top-level flags
    pytest.param(
        _with("only_fixed: yes\n"),
        4,
        "only_fixed",
        ["'only_fixed' must be true or false", "reads 'yes' as true", "write true"],
        id="only-fixed-yes",
    ),
    pytest.param(
        _with("only_fixed: No\n"), 4, "only_fixed", ["reads 'No' as false", "write false"], id="only-fixed-no"
    ),
    pytest.param(_with("only_fixed: ON\n"), 4, "only_fixed", ["reads 'ON' as true"], id="only-fixed-on"),
    pytest.param(
        _with("only_fixed:\n"),
        4,
        "only_fixed",
        ["must be true or false, but it has no value", "or remove the key"],
        id="only-fixed-null",
    ),
    pytest.param(
        _with('only_fixed: "false"\n'),
        4,
        "only_fixed",
        ["got the text 'false'", "without quotes: false"],
        id="only-fixed-quoted",
    ),
    pytest.param(_with("only_fixed: 0\n"), 4, "only_fixed", ["got the number 0"], id="only-fixed-number"),
    pytest.param(_with("only_fixed: {all: true}\n"), 4, "only_fixed", ["got a mapping"], id="only-fixed-mapping"),
    pytest.param(
        _with("fixable_only: true\n"),
        4,
        "fixable_only",
        ["unknown key 'fixable_only'", "did you mean 'only_fixed'?"],
        id="only-fixed-as-fixable-only",
    ),
    pytest.param(
        _with("fail_on_stale_ignores: y\n"),
        4,
        "fail_on_stale_ignores",
        ["'fail_on_stale_ignores' must be true or false, got the text 'y'"],
        id="stale-y",
    ),
    pytest.param(
        _with("fail_on_stale_ignores: off\n"),
        4,
        "fail_on_stale_ignores",
        ["reads 'off' as false", "write false"],
        id="stale-off",
    ),
    pytest.param(
        _with("fail_on_stale_ignores:\n"),
        4,
        "fail_on_stale_ignores",
        ["has no value"],
        id="stale-null",
    ),
    pytest.param(
        _with("fail_on_stale_ignore: true\n"),
        4,
        "fail_on_stale_ignore",
        ["did you mean 'fail_on_stale_ignores'?"],
        id="stale-typo",
    ),
    pytest.param(
        _with("unscannable: fial\n"),
        4,
        "unscannable",
        ["'unscannable' must be 'warn', 'fail' or 'skip', got 'fial'; did you mean 'fail'?"],
        id="unscannable-typo",
    ),
    pytest.param(
        _with("unscannable: WARN\n"),
        4,
        "unscannable",
        ["got 'WARN'; did you mean 'warn'?"],
        id="unscannable-case",
    ),
    pytest.param(
        _with("unscannable: ignore\n"),
        4,
        "unscannable",
        ["got 'ignore'; write one of 'warn', 'fail' or 'skip'"],
        id="unscannable-other",
    ),
    pytest.param(
        _with("unscannable: off\n"),
        4,
        "unscannable",
        ["got the boolean false", "write e.g. 'unscannable: warn'"],
        id="unscannable-boolean",
    ),
    pytest.param(
        _with("unscannable:\n"),
        4,
        "unscannable",
        ["has no value", "(the default), or remove the key"],
        id="unscannable-null",
    ),
    pytest.param(_with("unscannable: [warn]\n"), 4, "unscannable", ["got a list"], id="unscannable-list"),
    pytest.param(
        _with("unscanable: warn\n"),
        4,
        "unscanable",
        ["did you mean 'unscannable'?"],
        id="unscannable-key-typo",
    ),
    # ignore: the list
    pytest.param(
        _with("ignore:\n"),
        4,
        "ignore",
        ["'ignore' has no value", "write 'ignore: []' for none, or remove the key"],
        id="ignore-null",
    ),
    pytest.param(
        _with("ignore: CVE-2023-4863\n"),
        4,
        "ignore",
        ["'ignore' must be a list of rules", "got a single value"],
        id="ignore-scalar",
    ),
    pytest.param(
        _with("ignore:\n  id: CVE-2023-4863\n  reason: x\n"),
        4,
        "ignore",
        ["'ignore' must be a list of rules", "got a mapping"],
        id="ignore-mapping",
    ),
    pytest.param(
        _with("ignore:\n  - CVE-2023-4863\n"),
        5,
        "ignore[0]",
        ["each ignore rule must be a mapping", "got a single value", "write '- id: CVE-2023-4863'"],
        id="ignore-item-scalar",
    ),
    pytest.param(
        _with("ignore:\n  - {id: CVE-2023-4863, reason: x}\n  -\n"),
        6,
        "ignore[1]",
        ["each ignore rule must be a mapping", "got nothing"],
        id="ignore-item-null",
    ),
    pytest.param(
        _with("ignore:\n  - [CVE-2023-4863, x]\n"),
        5,
        "ignore[0]",
        ["got a list"],
        id="ignore-item-list",
    ),
    pytest.param(
        _with("ignore: [{}]\n"),
        4,
        "ignore[0].id",
        ["missing required key 'id'", "e.g. 'id: CVE-2023-4863'"],
        id="ignore-item-empty",
    ),
    # ignore: required keys and unknown keys
    pytest.param(
        _rule("reason: x\n"),
        5,
        "ignore[0].id",
        ["missing required key 'id'"],
        id="ignore-no-id",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    package: libwebp7\n"),
        5,
        "ignore[0].reason",
        ["missing required key 'reason'", "every ignore rule needs one"],
        id="ignore-no-reason",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n  - id: CVE-2023-4864\n"),
        7,
        "ignore[1].reason",
        ["missing required key 'reason'"],
        id="ignore-second-rule-no-reason",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reson: x\n"),
        6,
        "ignore[0].reson",
        [
            "unknown key 'reson' under 'ignore[0]'",
            "did you mean 'reason'?",
            "valid keys are: id, package, images, reason, expires",
        ],
        id="ignore-unknown-key",
    ),
    pytest.param(_rule("cve: CVE-2023-4863\n"), 5, "ignore[0].cve", ["did you mean 'id'?"], id="ignore-cve-key"),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    until: 2027-01-31\n"),
        7,
        "ignore[0].until",
        ["did you mean 'expires'?"],
        id="ignore-until-key",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    image: [a]\n"),
        7,
        "ignore[0].image",
        ["did you mean 'images'?"],
        id="ignore-image-key",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    comment: y\n"),
        7,
        "ignore[0].comment",
        ["did you mean 'reason'?"],
        id="ignore-comment-key",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    id: CVE-2023-4864\n"),
        7,
        "ignore[0].id",
        ["duplicate key 'id' (first set on line 5)"],
        id="ignore-duplicate-key",
    ),
    # ignore: id
    pytest.param(_rule("id:\n    reason: x\n"), 5, "ignore[0].id", ["the vulnerability id has no value"], id="id-null"),
    pytest.param(_rule("id: ''\n    reason: x\n"), 5, "ignore[0].id", ["the vulnerability id is empty"], id="id-empty"),
    pytest.param(
        _rule("id: CVE-2023-4863 CVE-2023-4864\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["must not contain spaces", "one id per rule"],
        id="id-two-ids",
    ),
    pytest.param(
        _rule("id: 12345\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["must be text, but YAML reads '12345' as the number 12345", "put it in quotes: '12345'"],
        id="id-number",
    ),
    pytest.param(
        _rule("id: [CVE-2023-4863]\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["the vulnerability id must be text, got a list"],
        id="id-list",
    ),
    pytest.param(
        _rule("id: CVE-2023-486\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["'CVE-2023-486' looks like a CVE id but is not of the form CVE-YYYY-NNNN", "e.g. 'CVE-2023-4863'"],
        id="id-cve-short",
    ),
    pytest.param(
        _rule("id: CVE2023-4863\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["looks like a CVE id"],
        id="id-cve-no-dash",
    ),
    pytest.param(
        _rule("id: cve_2023_4863\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["looks like a CVE id"],
        id="id-cve-underscores",
    ),
    pytest.param(
        _rule("id: CVE-23-4863\n    reason: x\n"),
        5,
        "ignore[0].id",
        ["looks like a CVE id"],
        id="id-cve-short-year",
    ),
    # ignore: reason
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason:\n"),
        6,
        "ignore[0].reason",
        ["the reason has no value", "say why the finding is acceptable"],
        id="reason-null",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: '   '\n"),
        6,
        "ignore[0].reason",
        ["the reason is empty"],
        id="reason-blank",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: yes\n"),
        6,
        "ignore[0].reason",
        ["YAML reads 'yes' as the boolean true", "put it in quotes"],
        id="reason-boolean",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: [a, b]\n"),
        6,
        "ignore[0].reason",
        ["the reason must be text, got a list"],
        id="reason-list",
    ),
    # ignore: package
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    package: ''\n"),
        7,
        "ignore[0].package",
        ["the package is empty", "remove the key to match every package"],
        id="package-empty",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    package:\n"),
        7,
        "ignore[0].package",
        ["the package has no value"],
        id="package-null",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    package: [a, b]\n"),
        7,
        "ignore[0].package",
        ["the package must be text, got a list"],
        id="package-list",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    package: 1.0\n"),
        7,
        "ignore[0].package",
        ["YAML reads '1.0' as the decimal number 1.0", "put it in quotes: '1.0'"],
        id="package-number",
    ),
    # ignore: images
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images: 'cr.yandex/*/app*'\n"),
        7,
        "ignore[0].images",
        ["'images' must be a list of image globs, got a single value", "'images: [\"cr.yandex/*/app*\"]'"],
        id="images-string",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images: []\n"),
        7,
        "ignore[0].images",
        ["'images' lists no images", "remove the key to apply the rule to every image"],
        id="images-empty",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images:\n"),
        7,
        "ignore[0].images",
        ["got no value"],
        id="images-null",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images: {app: yes}\n"),
        7,
        "ignore[0].images",
        ["got a mapping"],
        id="images-mapping",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images:\n      - cr.yandex/*\n      - ''\n"),
        9,
        "ignore[0].images[1]",
        ["an image glob is empty"],
        id="images-item-empty",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images:\n      - cr.yandex/* cr.yandex/b*\n"),
        8,
        "ignore[0].images[0]",
        ["an image glob must not contain spaces", "one glob per list item"],
        id="images-item-space",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images: [~]\n"),
        7,
        "ignore[0].images[0]",
        ["an image glob has no value"],
        id="images-item-null",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    images: [[a]]\n"),
        7,
        "ignore[0].images[0]",
        ["an image glob must be text, got a list"],
        id="images-item-list",
    ),
    # ignore: expires
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 2027-02-30\n"),
        7,
        "ignore[0].expires",
        ["'2027-02-30' is not a real date (day is out of range for month)", "YYYY-MM-DD"],
        id="expires-impossible",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: '2027-13-01'\n"),
        7,
        "ignore[0].expires",
        ["'2027-13-01' is not a real date"],
        id="expires-impossible-quoted",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 2027-01-31T10:00:00Z\n"),
        7,
        "ignore[0].expires",
        ["'expires' takes a date without a time", "'expires: 2027-01-31'"],
        id="expires-datetime",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 2027-01-31 10:00\n"),
        7,
        "ignore[0].expires",
        ["takes a date without a time"],
        id="expires-datetime-text",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 31.01.2027\n"),
        7,
        "ignore[0].expires",
        ["'expires' must be a date, got '31.01.2027'", "write the last day the rule applies as YYYY-MM-DD"],
        id="expires-other-format",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 2027-1-5\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got '2027-1-5'"],
        id="expires-short-fields",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: 20270131\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got the number 20270131"],
        id="expires-number",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: ' 2027-01-31'\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got ' 2027-01-31'"],
        id="expires-padded",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: never\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got 'never'", "or remove the key"],
        id="expires-never",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires:\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got no value"],
        id="expires-null",
    ),
    pytest.param(
        _rule("id: CVE-2023-4863\n    reason: x\n    expires: [2027-01-31]\n"),
        7,
        "ignore[0].expires",
        ["must be a date, got a list"],
        id="expires-list",
    ),
    # ignore: duplicate rules
    pytest.param(
        _with("ignore:\n  - id: CVE-2023-4863\n    reason: a\n  - id: cve-2023-4863\n    reason: b\n"),
        7,
        "ignore[1]",
        ["duplicate ignore rule: the rule on line 5 already ignores 'cve-2023-4863'", "remove one of them"],
        id="duplicate-rule",
    ),
    pytest.param(
        _with(
            "ignore:\n"
            "  - {id: CVE-2023-4863, reason: a}\n"
            "  - {id: CVE-2023-4863, package: p*, images: [a, b], reason: b}\n"
            "  - {id: CVE-2023-4863, images: [b, a], package: p*, reason: c, expires: 2027-01-31}\n"
        ),
        7,
        "ignore[2]",
        ["the rule on line 6 already ignores"],
        id="duplicate-rule-images-in-other-order",
    ),
    # baseline
    pytest.param(
        _with("baseline:\n"),
        4,
        "baseline",
        ["'baseline' must be a mapping, got no value", "'baseline: {image: cr.yandex/<registry-id>/"],
        id="baseline-null",
    ),
    pytest.param(
        _with("baseline: cr.yandex/crpabc/app:prod\n"),
        4,
        "baseline",
        ["got a single value", "write e.g. 'baseline: {image: cr.yandex/crpabc/app:prod}'"],
        id="baseline-string",
    ),
    pytest.param(_with("baseline: [a]\n"), 4, "baseline", ["got a list"], id="baseline-list"),
    pytest.param(
        _with("baseline: {}\n"),
        4,
        "baseline.image",
        ["missing required key 'image'", "e.g. 'image: cr.yandex/"],
        id="baseline-empty",
    ),
    pytest.param(
        _with("baseline:\n  missing: pass\n"),
        5,
        "baseline.image",
        ["missing required key 'image'"],
        id="baseline-no-image",
    ),
    pytest.param(
        _with("baseline:\n  image: docker.io/library/nginx:1.25\n"),
        5,
        "baseline.image",
        [
            "invalid image reference 'docker.io/library/nginx:1.25'",
            "not a Yandex Container Registry host",
            "expected cr.yandex/<registry-id>/<repository>:<tag>",
        ],
        id="baseline-foreign-image",
    ),
    pytest.param(
        _with("baseline: {image: cr.yandex/crpabc}\n"),
        4,
        "baseline.image",
        ["has no repository after the registry id"],
        id="baseline-no-repository",
    ),
    pytest.param(
        _with("baseline: {image: ''}\n"),
        4,
        "baseline.image",
        ["the baseline image is empty"],
        id="baseline-image-empty",
    ),
    pytest.param(
        _with("baseline: {image: 5}\n"),
        4,
        "baseline.image",
        ["the baseline image must be text"],
        id="baseline-image-number",
    ),
    pytest.param(
        _with("baseline:\n  image: cr.yandex/crpabc/app:prod\n  missing: Pass\n"),
        6,
        "baseline.missing",
        ["'missing' must be 'fail' or 'pass', got 'Pass'; did you mean 'pass'?"],
        id="baseline-missing-case",
    ),
    pytest.param(
        _with("baseline: {image: cr.yandex/crpabc/app:prod, missing: no}\n"),
        4,
        "baseline.missing",
        ["got the boolean false", "write e.g. 'missing: fail'"],
        id="baseline-missing-boolean",
    ),
    pytest.param(
        _with("baseline: {image: cr.yandex/crpabc/app:prod, missing: skip}\n"),
        4,
        "baseline.missing",
        ["got 'skip'; write one of 'fail' or 'pass'"],
        id="baseline-missing-other",
    ),
    pytest.param(
        _with("baseline: {image: cr.yandex/crpabc/app:prod, missing: }\n"),
        4,
        "baseline.missing",
        ["has no value"],
        id="baseline-missing-null",
    ),
    pytest.param(
        _with("baseline: {image: cr.yandex/crpabc/app:prod, on_missing: pass}\n"),
        4,
        "baseline.on_missing",
        ["unknown key 'on_missing' under 'baseline'", "did you mean 'missing'?", "valid keys are: image, missing"],
        id="baseline-unknown-key",
    ),
    # reuse
    pytest.param(
        _with("reuse:\n"),
        4,
        "reuse",
        ["'reuse' must be a mapping, got no value", "'reuse: {max_age: 24h}'"],
        id="reuse-null",
    ),
    pytest.param(_with("reuse: 24h\n"), 4, "reuse", ["got a single value"], id="reuse-scalar"),
    pytest.param(
        _with("reuse: {}\n"),
        4,
        "reuse.max_age",
        ["missing required key 'max_age'", "remove 'reuse' to always scan"],
        id="reuse-empty",
    ),
    pytest.param(
        _with("reuse:\n  maxage: 1h\n"),
        5,
        "reuse.maxage",
        ["unknown key 'maxage' under 'reuse'", "did you mean 'max_age'?"],
        id="reuse-unknown-key",
    ),
    pytest.param(
        _with("reuse:\n  max_age: 24\n"),
        5,
        "reuse.max_age",
        ["24 has no unit; write 24s, 24m, 24h or 24d"],
        id="max-age-bare-number",
    ),
    pytest.param(
        _with("reuse: {max_age: -1}\n"),
        4,
        "reuse.max_age",
        ["got -1: an age cannot be negative"],
        id="max-age-negative-number",
    ),
    pytest.param(
        _with("reuse: {max_age: -1h}\n"),
        4,
        "reuse.max_age",
        ["got '-1h': an age cannot be negative", "or 0 to always scan"],
        id="max-age-negative",
    ),
    pytest.param(
        _with("reuse: {max_age: 1.5h}\n"),
        4,
        "reuse.max_age",
        ["got '1.5h': use a whole number of a smaller unit (90m, not 1.5h)"],
        id="max-age-fraction",
    ),
    pytest.param(
        _with("reuse: {max_age: 1.5}\n"),
        4,
        "reuse.max_age",
        ["got the decimal number 1.5"],
        id="max-age-float",
    ),
    pytest.param(
        _with("reuse: {max_age: 2w}\n"),
        4,
        "reuse.max_age",
        ["got '2w': unknown unit 'w'", "90s, 15m, 24h or 7d"],
        id="max-age-weeks",
    ),
    pytest.param(
        _with("reuse: {max_age: 24H}\n"),
        4,
        "reuse.max_age",
        ["unknown unit 'H'"],
        id="max-age-uppercase-unit",
    ),
    pytest.param(_with("reuse: {max_age: 24 h}\n"), 4, "reuse.max_age", ["got '24 h'"], id="max-age-space"),
    pytest.param(_with("reuse: {max_age: PT24H}\n"), 4, "reuse.max_age", ["got 'PT24H'"], id="max-age-iso"),
    pytest.param(_with("reuse: {max_age: 1d12h}\n"), 4, "reuse.max_age", ["got '1d12h'"], id="max-age-compound"),
    pytest.param(_with("reuse: {max_age: 024h}\n"), 4, "reuse.max_age", ["got '024h'"], id="max-age-leading-zero"),
    pytest.param(_with("reuse: {max_age: 0x10}\n"), 4, "reuse.max_age", ["got the number 0x10"], id="max-age-hex"),
    pytest.param(_with("reuse: {max_age: ''}\n"), 4, "reuse.max_age", ["got ''"], id="max-age-empty"),
    pytest.param(_with("reuse: {max_age: }\n"), 4, "reuse.max_age", ["got no value"], id="max-age-null"),
    pytest.param(_with("reuse: {max_age: off}\n"), 4, "reuse.max_age", ["got the boolean false"], id="max-age-off"),
    pytest.param(_with("reuse: {max_age: [24h]}\n"), 4, "reuse.max_age", ["got a list"], id="max-age-list"),
    pytest.param(
        _with("reuse: {max_age: 99999999999d}\n"),
        4,
        "reuse.max_age",
        ["the maximum age 99999999999d is too large"],
        id="max-age-overflow",
    ),
]


@pytest.mark.parametrize("text, line, key, fragments", BAD_FINDING_LEVEL)
def test_invalid_finding_level_policies(text: str, line: int | None, key: str | None, fragments: list[str]) -> None:
    test_invalid_policies(text, line, key, fragments)


def test_every_error_says_what_to_write() -> None:
    """Each message of the finding-level table ends in a fix, not just a complaint."""
    for param in BAD_FINDING_LEVEL:
        with pytest.raises(PolicyError) as info:
            parse_policy(param.values[0], SOURCE)
        message = info.value.message
        assert re.search(r"\b(write|remove|add|put|did you mean|use|say|name|expected)\b", message), message


def test_ignore_rule_lines_point_at_each_rule() -> None:
    text = _with(
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


# --------------------------------------------------------------------------------------------------
# Files and discovery


def test_load_policy_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_v1("  critical: 0\n"), encoding="utf-8")
    assert load_policy(path).source == str(path)
    assert load_policy(str(path)).thresholds == {"critical": 0}
    path.write_text(_v1("  critical: -3\n"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.source, info.value.line, info.value.key) == (str(path), 3, "thresholds.critical")


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.source == str(path)
    assert info.value.line is None
    assert "cannot read the policy file: No such file or directory" in info.value.message
    assert str(path) in str(info.value)


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert info.value.source == str(tmp_path)
    assert "cannot read the policy file" in info.value.message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_load_policy_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(_v1("  critical: 0\n"), encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        assert "Permission denied" in info.value.message
    finally:
        path.chmod(0o600)


def test_load_policy_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\nthresholds:\n  critical: 0\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.line, info.value.key) == (2, None)
    assert "not valid UTF-8" in info.value.message
    assert "0xe9" in info.value.message


def test_discover_explicit_path_wins(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text(_v1("  low: 1\n"), encoding="utf-8")
    explicit = tmp_path / "mine.yaml"
    explicit.write_text(_v1("  medium: 2\n"), encoding="utf-8")
    policy = discover_policy(explicit, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"medium": 2}, str(explicit))


def test_discover_explicit_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text(_v1("  low: 1\n"), encoding="utf-8")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        discover_policy(tmp_path / "missing.yaml", cwd=tmp_path)


def test_discover_order(tmp_path: Path) -> None:
    assert DISCOVERY_FILES == (".crgate.yaml", "crgate.yaml")
    assert discover_policy(None, cwd=tmp_path) is DEFAULT_POLICY
    (tmp_path / "crgate.yaml").write_text(_v1("  low: 2\n"), encoding="utf-8")
    policy = discover_policy(None, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"low": 2}, str(tmp_path / "crgate.yaml"))
    (tmp_path / ".crgate.yaml").write_text(_v1("  low: 1\n"), encoding="utf-8")
    policy = discover_policy(None, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"low": 1}, str(tmp_path / ".crgate.yaml"))


def test_discover_uses_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".crgate.yaml").write_text(_v1("  low: 1\n"), encoding="utf-8")
    assert discover_policy(None).source == ".crgate.yaml"


def test_discovered_broken_file_fails_instead_of_falling_back(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "crgate.yaml").write_text(_v1("  low: 1\n"), encoding="utf-8")
    with pytest.raises(PolicyError, match="missing required key 'thresholds'"):
        discover_policy(None, cwd=tmp_path)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_discovered_dangling_symlink_fails(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        discover_policy(None, cwd=tmp_path)


# --------------------------------------------------------------------------------------------------
# The default and the summary


def test_default_policy() -> None:
    expected = Policy(version=1, thresholds={"critical": 0, "high": 0}, source="built-in default")
    assert expected == DEFAULT_POLICY
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
    assert parse_policy(_with(f"reuse: {{max_age: {text}}}\n"), SOURCE).reuse_max_age == duration


# --------------------------------------------------------------------------------------------------
# The JSON Schema and the example policies agree with the loader


class _EditorLoader(yaml.SafeLoader):
    """YAML as editors read it for the schema (YAML 1.2 core schema, e.g. yaml-language-server): no
    timestamps (an unquoted date is a string, which the schema checks with "format": "date"), and only
    true/false are booleans (yes/no/on/off are strings, so the schema rejects them as the loader does)."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_EditorLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _editor_yaml(text: str) -> object:
    return yaml.load(text, Loader=_EditorLoader)  # a SafeLoader subclass: safe


def test_editor_yaml_reads_dates_and_booleans_as_yaml_1_2_does() -> None:
    assert _editor_yaml("a: 2027-01-31\nb: yes\nc: true\nd: 0\n") == {"a": "2027-01-31", "b": "yes", "c": True, "d": 0}


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    return cast("dict[str, object]", json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def validator(schema: dict[str, object]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _object_schemas(schema: dict[str, Any]) -> dict[str, tuple[dict[str, Any], tuple[str, ...]]]:
    """Every object of the format in the schema, with the loader's keys for it."""
    defs = schema["$defs"]
    return {
        "policy": (schema, TOP_LEVEL_KEYS),
        "thresholds": (schema["properties"]["thresholds"], THRESHOLD_KEYS),
        "limit form": (defs["threshold"]["oneOf"][1], LIMIT_KEYS),
        "ignore rule": (defs["ignoreRule"], IGNORE_RULE_KEYS),
        "baseline": (schema["properties"]["baseline"], BASELINE_KEYS),
        "reuse": (schema["properties"]["reuse"], REUSE_KEYS),
    }


def test_schema_lists_exactly_the_loader_keys(schema: dict[str, Any]) -> None:
    assert tuple(schema["properties"]) == TOP_LEVEL_KEYS
    assert tuple(schema["properties"]["thresholds"]["properties"]) == THRESHOLD_KEYS
    assert schema["additionalProperties"] is False
    assert schema["properties"]["thresholds"]["additionalProperties"] is False
    assert schema["properties"]["ignore"]["items"] == {"$ref": "#/$defs/ignoreRule"}
    for what, (obj, keys) in _object_schemas(schema).items():
        assert obj["type"] == "object", what
        assert tuple(obj["properties"]) == keys, what
        assert obj["additionalProperties"] is False, what
        for name, prop in obj["properties"].items():
            assert prop.get("title") and prop.get("description"), f"{what}: {name}"


def test_schema_required_keys_match_the_loader(schema: dict[str, Any]) -> None:
    required = {what: set(obj.get("required", ())) for what, (obj, _) in _object_schemas(schema).items()}
    assert required == {
        "policy": {"version", "thresholds"},
        "thresholds": set(),
        "limit form": {"max"},
        "ignore rule": {"id", "reason"},
        "baseline": {"image"},
        "reuse": {"max_age"},
    }


def test_schema_baseline_pattern_names_every_registry_host(schema: dict[str, Any]) -> None:
    from crgate.images import REGISTRY_HOSTS

    pattern = schema["properties"]["baseline"]["properties"]["image"]["pattern"]
    for host in REGISTRY_HOSTS:
        assert re.search(pattern, f"{host}/crpabc/app:1"), host
        parse_policy(_with(f"baseline: {{image: {host}/crpabc/app:1}}\n"), SOURCE)


def test_example_policies_exist() -> None:
    assert {p.name for p in EXAMPLE_POLICIES} >= {"default.yaml", "strict.yaml", "example.yaml", "finding-level.yaml"}


@pytest.mark.parametrize("path", EXAMPLE_POLICIES, ids=lambda p: p.name)
def test_example_policies_validate_and_load(path: Path, validator: jsonschema.protocols.Validator) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schema.json\n")
    validator.validate(_editor_yaml(text))
    policy = load_policy(path)
    assert policy.version == 1 and policy.thresholds


def test_example_yaml_shows_every_key() -> None:
    policy = load_policy(POLICY_DIR / "example.yaml")
    assert tuple(policy.thresholds) == THRESHOLD_KEYS
    data = yaml.safe_load((POLICY_DIR / "example.yaml").read_text(encoding="utf-8"))
    assert tuple(data) == TOP_LEVEL_KEYS
    limit_forms = [v for v in data["thresholds"].values() if isinstance(v, dict)]
    assert {key for form in limit_forms for key in form} == set(LIMIT_KEYS)
    assert {key for rule in data["ignore"] for key in rule} == set(IGNORE_RULE_KEYS)
    assert tuple(data["baseline"]) == BASELINE_KEYS
    assert tuple(data["reuse"]) == REUSE_KEYS
    assert policy.fixable_only and policy.ignore and policy.baseline and policy.reuse_max_age
    assert policy.ignore[0].expires is not None and policy.ignore[0].images and policy.ignore[0].package


AGREEMENT_GOOD = [
    "version: 1\nthresholds: {critical: 0}\n",
    "version: 1\nthresholds: {total: 0, undefined: 3}\n",
    "version: 1\nthresholds: {critical: 0, high: 0, medium: 0, low: 0, negligible: 0, undefined: 0, total: 0}\n",
    # the mapping form of a limit and only_fixed
    "version: 1\nthresholds: {high: {max: 0}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable_only: true}, total: {max: 5, fixable_only: false}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable_only: true}}\nonly_fixed: true\n",
    "version: 1\nthresholds: {high: 0, low: {max: 1}}\nonly_fixed: true\n",
    "version: 1\nthresholds: {high: 0}\nonly_fixed: false\n",
    # ignore
    "version: 1\nthresholds: {high: 0}\nignore: []\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: not reachable}]\n",
    "version: 1\nthresholds: {high: 0}\nignore:\n  - id: GHSA-jfh8-c2jp-5v3q\n    reason: x\n"
    "  - id: cve-2023-12345\n    reason: y\n    package: 'libwebp*'\n    images: ['cr.yandex/*/app*']\n"
    "    expires: 2027-01-31\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: ' CVE-2023-4863 ', reason: x, expires: '2028-02-29'}]\n",
    # baseline, reuse, the rest
    "version: 1\nthresholds: {high: 0}\nbaseline: {image: cr.yandex/crpabc/app:production}\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: {image: cr.cloud.yandex.net/crpabc/team/app, missing: pass}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 24h}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 90s}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 0}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 0d}\n",
    "version: 1\nthresholds: {high: 0}\nfail_on_stale_ignores: true\nunscannable: skip\n",
    "version: 1\nthresholds: {high: 0}\nunscannable: fail\nfail_on_stale_ignores: FALSE\n",
]
AGREEMENT_BAD = [
    "version: 1\nthresholds: {critcal: 0}\n",
    "version: 1\nthresholds: {high: -1}\n",
    "version: 1\nthresholds: {high: 1.5}\n",
    "version: 1\nthresholds: {high: '5'}\n",
    "version: 1\nthresholds: {high: yes}\n",
    "version: 1\nthresholds: {high: null}\n",
    "version: 1\nthresholds: {high: [0]}\n",
    "version: 1\nthresholds: {}\n",
    "version: 1\nthresholds: [critical]\n",
    "version: 1\n",
    "thresholds: {high: 0}\n",
    "version: 2\nthresholds: {high: 0}\n",
    "version: '1'\nthresholds: {high: 0}\n",
    "version: true\nthresholds: {high: 0}\n",
    "version: 1\nthresholds: {high: 0}\nignores: []\n",
    "- version: 1\n",
    "just text\n",
    # the mapping form of a limit and only_fixed
    "version: 1\nthresholds: {high: {}}\n",
    "version: 1\nthresholds: {high: {fixable_only: true}}\n",
    "version: 1\nthresholds: {high: {max: -1}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable: true}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable_only: yes}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable_only: 'true'}}\n",
    "version: 1\nthresholds: {high: {max: 0, fixable_only: false}}\nonly_fixed: true\n",
    "version: 1\nthresholds: {high: 0}\nonly_fixed: yes\n",
    "version: 1\nthresholds: {high: 0}\nonly_fixed:\n",
    "version: 1\nthresholds: {high: 0}\nonly_fixed: 1\n",
    # ignore
    "version: 1\nthresholds: {high: 0}\nignore:\n",
    "version: 1\nthresholds: {high: 0}\nignore: {id: CVE-2023-4863, reason: x}\n",
    "version: 1\nthresholds: {high: 0}\nignore: [CVE-2023-4863]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{reason: x}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: '', reason: x}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863 CVE-2023-4864, reason: x}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-486, reason: x}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: 12345, reason: x}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: '  '}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, until: 2027-01-31}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, package: ''}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, images: 'cr.yandex/*'}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, images: []}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, images: ['a b']}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, expires: 2027-02-30}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, expires: 2027-01-31T10:00:00Z}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, expires: 31.01.2027}]\n",
    "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: x, expires: 20270131}]\n",
    # baseline, reuse, the rest
    "version: 1\nthresholds: {high: 0}\nbaseline:\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: cr.yandex/crpabc/app:prod\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: {}\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: {image: docker.io/library/nginx}\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: {image: cr.yandex/crpabc/app, missing: Pass}\n",
    "version: 1\nthresholds: {high: 0}\nbaseline: {image: cr.yandex/crpabc/app, missing: no}\n",
    "version: 1\nthresholds: {high: 0}\nreuse:\n",
    "version: 1\nthresholds: {high: 0}\nreuse: 24h\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 24}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: -1h}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 1.5h}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 2w}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: 24H}\n",
    "version: 1\nthresholds: {high: 0}\nreuse: {max_age: false}\n",
    "version: 1\nthresholds: {high: 0}\nfail_on_stale_ignores: 'yes'\n",
    "version: 1\nthresholds: {high: 0}\nfail_on_stale_ignores: on\n",
    "version: 1\nthresholds: {high: 0}\nunscannable: fial\n",
    "version: 1\nthresholds: {high: 0}\nunscannable: WARN\n",
    "version: 1\nthresholds: {high: 0}\nunscannable:\n",
]


@pytest.mark.parametrize("text", AGREEMENT_GOOD)
def test_schema_and_loader_accept_the_same_good_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    validator.validate(_editor_yaml(text))
    parse_policy(text, SOURCE)


@pytest.mark.parametrize("text", AGREEMENT_BAD)
def test_schema_and_loader_reject_the_same_bad_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    assert not validator.is_valid(_editor_yaml(text))
    with pytest.raises(PolicyError):
        parse_policy(text, SOURCE)


# What only the loader can tell: the schema accepts these, the loader rejects them with a reason.
LOADER_ONLY_BAD = [
    pytest.param(
        "version: 1\nthresholds: {high: 0}\nignore: [{id: CVE-2023-4863, reason: a}, {id: CVE-2023-4863, reason: b}]\n",
        "duplicate ignore rule",
        id="duplicate-rule",
    ),
    pytest.param(
        "version: 1\nthresholds: {high: 0}\nbaseline: {image: 'cr.yandex/crpabc/App:1'}\n",
        "repository 'App' is not valid",
        id="baseline-bad-repository",
    ),
]


@pytest.mark.parametrize("text, fragment", LOADER_ONLY_BAD)
def test_loader_is_stricter_than_the_schema_where_json_schema_cannot_tell(
    text: str, fragment: str, validator: jsonschema.protocols.Validator
) -> None:
    assert validator.is_valid(_editor_yaml(text))
    with pytest.raises(PolicyError, match=re.escape(fragment)):
        parse_policy(text, SOURCE)
