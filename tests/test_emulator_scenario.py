"""The emulator's scenario loader: valid data, the demo file, and errors that name file, line and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from crgate.errors import ConfigError
from crgate_emulator.scenario import (
    ANOMALIES,
    demo_scenario,
    load_scenario,
    scenario_from_dict,
)

DIGEST = "sha256:" + "ab" * 32


def base() -> dict[str, Any]:
    return {
        "registries": [
            {
                "id": "crptest",
                "repositories": [
                    {
                        "name": "team/app",
                        "images": [
                            {
                                "id": "crpimg1",
                                "digest": DIGEST,
                                "tags": ["1.0", "latest"],
                                "findings": [{"name": "CVE-2024-1", "severity": "high", "package": "curl"}],
                                "scan": {
                                    "duration": 1,
                                    "faults": [{"method": "OperationService.Get", "code": "unavailable"}],
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_valid_dict_gives_frozen_defaults() -> None:
    scenario = scenario_from_dict(base())
    image = scenario.image("crpimg1")
    assert image is not None
    assert image.repository_name == "crptest/team/app"
    assert image.findings[0].severity == "HIGH" and image.findings[0].origin == "os"
    assert image.counts().high == 1 and image.counts().total == 1
    assert image.scan.duration == 1.0 and image.scan.status == "READY"
    assert image.scan.faults[0].code == "UNAVAILABLE" and image.scan.faults[0].count == 1
    assert scenario.max_concurrent_scans == 10 and not scenario.require_auth
    assert scenario.registries[0].repositories[0].id.startswith("crprepo")
    with pytest.raises(AttributeError):
        image.id = "x"  # type: ignore[misc]


def test_operation_error_implies_error_status() -> None:
    data = base()
    data["registries"][0]["repositories"][0]["images"][0]["scan"] = {"operation_error": {"code": "INTERNAL"}}
    scan = scenario_from_dict(data).registries[0].repositories[0].images[0].scan
    assert scan.status == "ERROR" and scan.operation_error is not None


def test_demo_scenario_is_valid() -> None:
    scenario = demo_scenario()
    assert [i.id for i in scenario.images()][:5] == [
        "crpdemoclean00000001",
        "crpdemovuln000000001",
        "crpdemoamd6400000001",
        "crpdemoarm6400000001",
        "crpdemomulti00000001",  # the multi-platform index (tag multi) ...
    ]
    assert [i.platform for i in scenario.images()][5:] == ["unknown/unknown"] * 2  # ... and its attestations
    vulnerable = scenario.image("crpdemovuln000000001")
    assert vulnerable is not None and vulnerable.scan.duration == 2.0
    names = [f.name for f in vulnerable.findings]
    assert names.count("CVE-2023-38545") == 2
    criticals = [f for f in vulnerable.findings if f.severity == "CRITICAL"]
    assert any(f.fixed_by for f in criticals) and any(not f.fixed_by for f in criticals)
    assert {f.origin for f in vulnerable.findings} == {"os", "lang"}


def _image_path(*rest: str) -> str:
    return ".".join(("registries[0].repositories[0].images[0]", *rest))


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base())
    target: Any = data["registries"][0]["repositories"][0]["images"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "key", "fragment"),
    [
        (["digest"], "sha256:abc", _image_path("digest"), "64"),
        (["id"], "Bad_Id", _image_path("id"), "not an id"),
        (["tags"], ["ok", 1.0], _image_path("tags[1]"), "quote it"),
        (["findings", 0, "severity"], "SEVERE", _image_path("findings[0].severity"), "CRITICAL"),
        (["findings", 0, "cvss"], 9.8, _image_path("findings[0].cvss"), "unknown key"),
        (["scan", "anomaly"], "weird", _image_path("scan.anomaly"), "done_without_result"),
        (["scan", "duration"], -1, _image_path("scan.duration"), ">= 0"),
        (["scan", "duration"], True, _image_path("scan.duration"), "number"),
        (
            ["scan", "faults"],
            [{"method": "ImageService.List", "code": "INTERNAL"}],
            _image_path("scan.faults[0].method"),
            "top-level",
        ),
        (
            ["scan", "faults"],
            [{"method": "ScannerService.Scan", "code": "NOPE"}],
            _image_path("scan.faults[0].code"),
            "UNAVAILABLE",
        ),
        (
            ["scan", "faults"],
            [{"method": "ScannerService.Scan", "code": "INTERNAL", "count": 0}],
            _image_path("scan.faults[0].count"),
            ">= 1",
        ),
        (["scan", "status"], "RUNNING", _image_path("scan.status"), "READY, ERROR"),
        (["scan", "last_result"], {"status": "READY", "age": 1}, _image_path("scan.last_result.age"), "unknown key"),
    ],
)
def test_bad_values_name_the_key(path: list[Any], value: Any, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(_mutated(path, value), source="s.yaml")
    message = str(info.value)
    assert message.startswith("emulator scenario s.yaml") and f"'{key}'" in message and fragment in message


def test_operation_error_with_ready_status_is_rejected() -> None:
    data = _mutated(["scan"], {"status": "READY", "operation_error": {"code": "INTERNAL"}})
    with pytest.raises(ConfigError, match="must be ERROR"):
        scenario_from_dict(data)


def test_duplicates_are_rejected() -> None:
    data = base()
    repo = data["registries"][0]["repositories"][0]
    repo["images"].append({**repo["images"][0], "tags": []})
    with pytest.raises(ConfigError, match="duplicate image id"):
        scenario_from_dict(data)
    repo["images"][1] = {"id": "crpimg2", "digest": DIGEST, "tags": ["latest"]}
    with pytest.raises(ConfigError, match="tag 'latest' already names image crpimg1"):
        scenario_from_dict(data)


def test_yaml_errors_carry_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("registries:\n  - id: crptest\n    repositories: []\n    colour: red\n")
    with pytest.raises(ConfigError, match=r"scenario\.yaml:2 \(key 'registries\[0\]\.colour'\): unknown key"):
        load_scenario(path)
    path.write_text("registries: []\nregistries: []\n")
    with pytest.raises(ConfigError, match=r"scenario\.yaml:2: invalid YAML: duplicate key 'registries'"):
        load_scenario(path)
    path.write_text("registries: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_scenario(path)
    path.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_scenario(path)
    with pytest.raises(ConfigError, match="cannot read the emulator scenario: "):
        load_scenario(tmp_path / "missing.yaml")


def test_yaml_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "max_concurrent_scans: null\n"
        "faults: [{method: ImageService.List, code: UNAVAILABLE, count: 2}]\n"
        "registries:\n"
        "  - id: crptest\n"
        "    repositories:\n"
        "      - name: app\n"
        "        images:\n"
        f"          - {{id: crpimg1, digest: '{DIGEST}', created_at: 2026-01-01T00:00:00Z,\n"
        "              scan: {anomaly: missing_stats, poll_interval: 2, last_result: {age_seconds: 60}}}\n"
    )
    scenario = load_scenario(path)
    image = scenario.image("crpimg1")
    assert image is not None and image.created_at is not None and image.created_at.year == 2026
    assert image.scan.anomaly == "missing_stats" and image.scan.poll_interval == 2.0
    assert image.scan.last_result is not None and image.scan.last_result.status == "READY"
    assert scenario.max_concurrent_scans is None and scenario.faults[0].count == 2
    assert scenario.source == str(path)


def test_every_anomaly_is_accepted() -> None:
    for anomaly in ANOMALIES:
        assert scenario_from_dict(_mutated(["scan", "anomaly"], anomaly)).image("crpimg1") is not None


def test_after_is_an_alias_of_lost_response() -> None:
    fault = {"method": "ScannerService.Scan", "code": "INTERNAL", "after": True}
    scan = scenario_from_dict(_mutated(["scan", "faults"], [fault])).image("crpimg1")
    assert scan is not None and scan.scan.faults[0].lost_response
    with pytest.raises(ConfigError, match="contradicts"):
        scenario_from_dict(_mutated(["scan", "faults"], [{**fault, "lost_response": False}]))
    with pytest.raises(ConfigError, match="not OK"):
        scenario_from_dict(_mutated(["scan", "faults"], [{**fault, "code": "OK"}]))


def test_merge_keys_share_blocks_and_explicit_keys_win(tmp_path: Path) -> None:
    """Scenarios are read by the shared strict reader: merge keys work as in manifests."""
    path = tmp_path / "s.yaml"
    text = (
        "registries:\n"
        "  - id: crptest\n"
        "    repositories:\n"
        "      - name: app\n"
        "        images:\n"
        f"          - {{id: crpimg1, digest: '{DIGEST}', scan: &slow {{duration: 3, poll_interval: 1}}}}\n"
        f"          - {{id: crpimg2, digest: '{'sha256:' + 'cd' * 32}', scan: {{<<: *slow, duration: 5}}}}\n"
    )
    path.write_text(text)
    scenario = load_scenario(path)
    first, second = scenario.image("crpimg1"), scenario.image("crpimg2")
    assert first is not None and second is not None
    assert (first.scan.duration, first.scan.poll_interval) == (3.0, 1.0)
    assert (second.scan.duration, second.scan.poll_interval) == (5.0, 1.0)


def test_scenario_scalars_that_cannot_be_read_are_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("registries: []\nmax_concurrent_scans: !!int 12x\n")
    with pytest.raises(ConfigError, match=r"s\.yaml:2: cannot read the value \(invalid literal for int"):
        load_scenario(path)
