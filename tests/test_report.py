"""Reports: the JSON document follows its published schema for every kind of outcome."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import crgate.report
from conftest import DIGEST_A, DIGEST_B, DIGEST_C, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate_emulator import Emulator, scenario_from_dict

SCHEMA = json.loads((Path(crgate.report.__file__).parent / "report.schema.json").read_text())


def validate(doc: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)


@pytest.fixture(scope="module")
def mixed_report() -> dict:
    """One run with a pass, a violation, a timeout and two not-found images (shared: it takes 2 s)."""
    data = scenario(
        image("crpclean", "clean", DIGEST_A),
        image("crpvuln", "vuln", DIGEST_B, VULNERABLE_FINDINGS),
        image("crpslow", "slow", DIGEST_C, duration=60),
    )
    with Emulator(scenario_from_dict(data)) as emu:
        refs = [f"cr.yandex/crptest/app:{tag}" for tag in ("clean", "vuln", "slow", "absent")]
        result = run_cli(check_args(emu, *refs, "--image-id", "crpnone", "--timeout", "2", "--format", "json"))
    assert result.code == 4, result.output
    return json.loads(result.stdout)


def test_json_report_validates_against_its_schema(mixed_report):
    validate(mixed_report)
    assert [image["verdict"] for image in mixed_report["images"]] == ["pass", "fail", "error", "error", "error"]
    assert [image["error"]["kind"] for image in mixed_report["images"][2:]] == ["timeout", "not_found", "not_found"]


def test_json_counts_have_every_severity_as_integers(mixed_report):
    clean, vuln = mixed_report["images"][:2]
    assert clean["counts"] == {s: 0 for s in mixed_report["severities"]}
    assert vuln["counts"] == {"critical": 1, "high": 2, "medium": 1, "low": 1, "negligible": 1, "undefined": 1}
    assert vuln["total"] == 7
    assert vuln["violations"] == [
        {"severity": "critical", "count": 1, "limit": 0},
        {"severity": "high", "count": 2, "limit": 0},
    ]
    assert vuln["scanned_at"].endswith("Z") and vuln["status"] == "READY"
    assert mixed_report["policy"] == {
        "vex": [],
        "kev": None,
        "images": [],
        "source": "built-in default",
        "version": 1,
        "thresholds": {"critical": 0, "high": 0},
    }


def test_schema_rejects_a_document_that_drifts(mixed_report):
    drifted = json.loads(json.dumps(mixed_report))
    drifted["images"][0]["counts"]["critical"] = "0"  # Yandex's own JSON quotes int64s; ours never does
    with pytest.raises(jsonschema.ValidationError):
        validate(drifted)
