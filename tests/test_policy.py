"""The policy loader (crgate.policy), the example policies and the JSON Schema of the format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from crgate.errors import ConfigError, PolicyError
from crgate.exitcodes import ExitCode
from crgate.model import THRESHOLD_KEYS, Policy
from crgate.policy import (
    BUILTIN_DEFAULT_SOURCE,
    DEFAULT_POLICY,
    DISCOVERY_FILES,
    TOP_LEVEL_KEYS,
    describe_policy,
    discover_policy,
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
    pytest.param(_v1("  high: 0\nignore: []\n"), 4, "ignore", ["unknown key 'ignore'"], id="future-key-ignore"),
    pytest.param(
        _v1("  high: 0\nonly_fixed: true\n"),
        4,
        "only_fixed",
        ["unknown key 'only_fixed'"],
        id="future-key-only-fixed",
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
    pytest.param(_v1("  high: [0]\n"), 3, "thresholds.high", ["must be a whole number, got a list"], id="limit-list"),
    pytest.param(
        _v1("  high:\n    max: 0\n"),
        3,
        "thresholds.high",
        ["must be a whole number, got a mapping"],
        id="limit-mapping-form-not-yet",
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
        "version: 2\nthresholds:\n  high: 0\nignore: []\n",
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


# --------------------------------------------------------------------------------------------------
# The JSON Schema and the example policies agree with the loader


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_lists_exactly_the_loader_keys() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert tuple(schema["properties"]) == TOP_LEVEL_KEYS
    assert tuple(schema["properties"]["thresholds"]["properties"]) == THRESHOLD_KEYS
    assert schema["additionalProperties"] is False
    assert schema["properties"]["thresholds"]["additionalProperties"] is False
    for name, prop in [
        *schema["properties"].items(),
        *schema["properties"]["thresholds"]["properties"].items(),
    ]:
        assert prop.get("title") and prop.get("description"), name


def test_example_policies_exist() -> None:
    assert {p.name for p in EXAMPLE_POLICIES} >= {"default.yaml", "strict.yaml", "example.yaml"}


@pytest.mark.parametrize("path", EXAMPLE_POLICIES, ids=lambda p: p.name)
def test_example_policies_validate_and_load(path: Path, validator: jsonschema.protocols.Validator) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schema.json\n")
    validator.validate(yaml.safe_load(text))
    policy = load_policy(path)
    assert policy.version == 1 and policy.thresholds


def test_example_yaml_shows_every_key() -> None:
    policy = load_policy(POLICY_DIR / "example.yaml")
    assert tuple(policy.thresholds) == THRESHOLD_KEYS


AGREEMENT_GOOD = [
    "version: 1\nthresholds: {critical: 0}\n",
    "version: 1\nthresholds: {total: 0, undefined: 3}\n",
    "version: 1\nthresholds: {critical: 0, high: 0, medium: 0, low: 0, negligible: 0, undefined: 0, total: 0}\n",
]
AGREEMENT_BAD = [
    "version: 1\nthresholds: {critcal: 0}\n",
    "version: 1\nthresholds: {high: -1}\n",
    "version: 1\nthresholds: {high: 1.5}\n",
    "version: 1\nthresholds: {high: '5'}\n",
    "version: 1\nthresholds: {high: yes}\n",
    "version: 1\nthresholds: {high: null}\n",
    "version: 1\nthresholds: {high: [0]}\n",
    "version: 1\nthresholds: {high: {max: 0}}\n",
    "version: 1\nthresholds: {}\n",
    "version: 1\nthresholds: [critical]\n",
    "version: 1\n",
    "thresholds: {high: 0}\n",
    "version: 2\nthresholds: {high: 0}\n",
    "version: '1'\nthresholds: {high: 0}\n",
    "version: true\nthresholds: {high: 0}\n",
    "version: 1\nthresholds: {high: 0}\nignore: []\n",
    "- version: 1\n",
    "just text\n",
]


@pytest.mark.parametrize("text", AGREEMENT_GOOD)
def test_schema_and_loader_accept_the_same_good_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    validator.validate(yaml.safe_load(text))
    parse_policy(text, SOURCE)


@pytest.mark.parametrize("text", AGREEMENT_BAD)
def test_schema_and_loader_reject_the_same_bad_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    assert not validator.is_valid(yaml.safe_load(text))
    with pytest.raises(PolicyError):
        parse_policy(text, SOURCE)
