"""Property tests of every reader: whatever the input, a reader returns its value or raises a crgate
``ConfigError`` (exit 2) whose message names the input; never another exception, never unbounded work.

The inputs are arbitrary text and bytes, and text stitched from each format's own fragments (keys,
anchors, aliases, merge keys, flow and block syntax, tags, document markers), which reaches the deep
paths far more often than random characters do. Runs are short by default; set
``CRGATE_HYPOTHESIS_PROFILE=long`` for a nightly-style run with many more examples (see
docs/reliability.md). Time is bounded by the readers' structure limits; the long profile also fails
any single example that takes more than a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crgate.errors import ConfigError, ImageRefError, PolicyError
from crgate.images import parse_image_ref
from crgate.manifests import ManifestError, images_in_text, read_manifests
from crgate.policy import DEFAULT_POLICY, parse_policy
from crgate.saved_report import load_saved_report, rejudge
from crgate_emulator.scenario import load_scenario, scenario_from_dict

_YAML_SYNTAX = [
    "\n", "\n", "  ", "    ", "- ", ": ", ", ", "[", "]", "{", "}", "? ", "&a ", "&b ", "*a", "*b", "<<: ", "<<: *a",
    "<<: [*a, *b]", "---\n", "...\n", "!!int ", "!!str ", "!!timestamp ", "!!binary ", "!custom ", "'", '"', "#",
    "\t", "~", "null", "yes", "no", "on", "true", "0", "-1", "010", "0x1f", "1_000", "1:30", "1e999", ".nan",
    "2027-02-30", "9" * 30, "|\n", ">\n", "\\", "\x07", "\ufeff", "é",
]  # fmt: skip
_POLICY_WORDS = [
    "version: 1\n", "version: ", "thresholds:\n", "thresholds: ", "  high: 0\n", "critical", "high", "total",
    "max: ", "fixable_only: ", "only_fixed: ", "ignore:\n", "- id: CVE-2023-4863\n", "  reason: x\n", "id: ",
    "reason: ", "package: ", "images: ", "expires: ", "baseline: ", "image: cr.yandex/crpabc/app:1", "missing: ",
    "reuse: ", "max_age: ", "24h", "0s", "fail_on_stale_ignores: ", "unscannable: ", "warn", "skip",
]  # fmt: skip
_MANIFEST_WORDS = [
    "kind: ", "Pod\n", "Deployment\n", "CronJob\n", "List\n", "items:\n", "metadata: {name: w}\n", "spec:\n",
    "template:\n", "jobTemplate:\n", "containers:\n", "initContainers:\n", "- name: c\n", "image: ",
    "cr.yandex/crp1/app:1", "nginx", "'{{ .Values.image }}'", "${REG}", "services:\n", "  web:\n", "build: .\n",
    "x-base: &a {image: nginx}\n",
]  # fmt: skip
_SCENARIO_WORDS = [
    "registries:\n", "- id: crpx\n", "repositories:\n", "- name: app\n", "images:\n", "digest: ", "sha256:" + "a" * 64,
    "tags: [v1]\n", "findings:\n", "- {name: CVE-1, severity: HIGH, package: p}\n", "scan:\n", "duration: ",
    "faults: ", "{method: ScannerService.Scan, code: INTERNAL}", "max_concurrent_scans: ", "require_auth: ",
    "created_at: ", "2026-01-01T00:00:00Z", "operation_error: ", "last_result: ", "service_accounts: ",
]  # fmt: skip


def stitched(words: list[str]) -> st.SearchStrategy[str]:
    """Text made of a format's fragments and YAML syntax, with some arbitrary characters between."""
    piece = st.sampled_from(words) | st.sampled_from(_YAML_SYNTAX) | st.text(max_size=3)
    return st.lists(piece, max_size=40).map("".join)


POLICY_TEXTS = st.text() | stitched(_POLICY_WORDS)
MANIFEST_TEXTS = st.text() | stitched(_MANIFEST_WORDS)
SCENARIO_TEXTS = st.text() | stitched(_SCENARIO_WORDS)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One directory for the examples' files (hypothesis runs many examples per test call)."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@given(POLICY_TEXTS)
def test_policy_reader(text: str) -> None:
    try:
        policy = parse_policy(text, "fuzz.yaml")
    except PolicyError as err:
        assert str(err).startswith("policy fuzz.yaml"), str(err)
        assert err.source == "fuzz.yaml"
    else:
        assert policy.version == 1 and policy.thresholds  # a policy that parses always limits something


@given(MANIFEST_TEXTS)
def test_manifest_reader(text: str) -> None:
    try:
        uses = images_in_text(text, "fuzz.yaml")
    except ManifestError as err:
        assert str(err).startswith("manifest fuzz.yaml"), str(err)
    else:
        assert all(use.image.strip() and use.source == "fuzz.yaml" for use in uses)


@given(st.binary(max_size=200))
def test_manifest_reader_on_bytes_from_stdin(data: bytes) -> None:
    import io

    try:
        read_manifests(["-"], io.BytesIO(data))
    except ManifestError as err:
        assert str(err).startswith("manifest <stdin>"), str(err)


_IMAGE = {
    "ref": "cr.yandex/crpabc/app:1",
    "image_id": "crpimage",
    "scan_result_id": "crpresult",
    "status": "READY",
    "error": None,
    "counts": {"critical": 0, "high": 1, "medium": 0, "low": 0, "negligible": 0, "undefined": 0},
    "findings": [{"cve": "CVE-2024-1", "severity": "high", "package": "zlib", "version": "1"}],
}
IMAGES_LIKE = st.fixed_dictionaries({key: st.just(value) | JSON_VALUES for key, value in _IMAGE.items()})
REPORTS_LIKE = st.fixed_dictionaries(
    {"schema_version": st.just(1) | JSON_SCALARS, "images": st.lists(IMAGES_LIKE, max_size=3) | JSON_VALUES},
    optional={"baseline": JSON_VALUES | st.fixed_dictionaries({"ref": JSON_SCALARS, "pairs": JSON_VALUES})},
)
REPORT_BYTES = (
    st.binary(max_size=100)
    | st.text().map(str.encode)
    | REPORTS_LIKE.map(lambda report: json.dumps(report).encode())
    | st.tuples(REPORTS_LIKE, st.integers(0, 200)).map(lambda pair: json.dumps(pair[0]).encode()[: pair[1]])
    | st.integers(0, 2000).map(lambda depth: ("[" * depth + "]" * depth).encode())
)


@given(REPORT_BYTES)
def test_saved_report_reader(scratch: Path, data: bytes) -> None:
    path = scratch / "report.json"
    path.write_bytes(data)
    try:
        saved = load_saved_report(path)
        rejudge(DEFAULT_POLICY, saved, today=dt.date(2026, 1, 1))
    except ConfigError as err:
        assert f"saved report {path}" in str(err), str(err)


@given(SCENARIO_TEXTS)
def test_scenario_file_reader(scratch: Path, text: str) -> None:
    path = scratch / "scenario.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_scenario(path)
    except ConfigError as err:
        assert str(err).startswith(f"emulator scenario {path}"), str(err)


@given(st.dictionaries(st.sampled_from(["registries", "faults", "require_auth", "x"]), JSON_VALUES) | JSON_VALUES)
def test_scenario_dict_reader(data: Any) -> None:
    try:
        scenario_from_dict(data, source="fuzz")
    except ConfigError as err:
        assert str(err).startswith("emulator scenario fuzz"), str(err)


_REF_PARTS = ["cr.yandex/", "cr.cloud.yandex.net/", "crpabc", "/", "app", ":", "@sha256:", "a" * 64, "-", ".", "_"]


@given(st.text() | st.lists(st.sampled_from(_REF_PARTS) | st.text(max_size=2), max_size=12).map("".join))
def test_image_reference_reader(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except ImageRefError as err:
        assert str(err).startswith("invalid image reference"), str(err)
    else:
        assert ref.registry_id and ref.repository and (ref.tag or ref.digest)
