"""The JSON Schema of the policy format and the example policies agree with the loader (cases in
``data/policy/schema.yaml``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import yaml

from crgate.errors import PolicyError
from crgate.model import THRESHOLD_KEYS
from crgate.policy import (
    BASELINE_KEYS,
    IGNORE_RULE_KEYS,
    IMAGE_RULE_KEYS,
    KEV_KEYS,
    LIMIT_KEYS,
    REUSE_KEYS,
    TOP_LEVEL_KEYS,
    load_policy,
    parse_policy,
)
from policycases import SOURCE, load, with_rest

POLICY_DIR = Path(__file__).resolve().parents[1] / "policy"
SCHEMA_PATH = POLICY_DIR / "schema.json"
EXAMPLE_POLICIES = sorted(POLICY_DIR.glob("*.yaml"))
CASES = load("schema.yaml")


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
        "kev": (schema["properties"]["kev"], KEV_KEYS),
        "image rule": (defs["imageRule"], IMAGE_RULE_KEYS),
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
        "kev": {"catalog"},
        "image rule": {"match"},
    }


def test_schema_baseline_pattern_names_every_registry_host(schema: dict[str, Any]) -> None:
    from crgate.images import REGISTRY_HOSTS

    pattern = schema["properties"]["baseline"]["properties"]["image"]["pattern"]
    for host in REGISTRY_HOSTS:
        assert re.search(pattern, f"{host}/crpabc/app:1"), host
        parse_policy(with_rest(f"baseline: {{image: {host}/crpabc/app:1}}\n"), SOURCE)


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
    assert {key for rule in data["images"] for key in rule} == set(IMAGE_RULE_KEYS)
    assert policy.images and policy.images[0].thresholds is not None
    assert policy.fixable_only and policy.ignore and policy.baseline and policy.reuse_max_age
    assert policy.ignore[0].expires is not None and policy.ignore[0].images and policy.ignore[0].package


@pytest.mark.parametrize("text", CASES["both_accept"])
def test_schema_and_loader_accept_the_same_good_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    validator.validate(_editor_yaml(text))
    parse_policy(text, SOURCE)


@pytest.mark.parametrize("text", CASES["both_reject"])
def test_schema_and_loader_reject_the_same_bad_policies(text: str, validator: jsonschema.protocols.Validator) -> None:
    assert not validator.is_valid(_editor_yaml(text))
    with pytest.raises(PolicyError):
        parse_policy(text, SOURCE)


# What only the loader can tell: the schema accepts these, the loader rejects them with a reason.
@pytest.mark.parametrize(
    "text, fragment",
    [pytest.param(case["policy"], case["fragment"], id=case["id"]) for case in CASES["only_the_loader_rejects"]],
)
def test_loader_is_stricter_than_the_schema_where_json_schema_cannot_tell(
    text: str, fragment: str, validator: jsonschema.protocols.Validator
) -> None:
    assert validator.is_valid(_editor_yaml(text))
    with pytest.raises(PolicyError, match=re.escape(fragment)):
        parse_policy(text, SOURCE)
