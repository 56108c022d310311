"""Limits per image (``images:``) end to end: the CLI against the emulator judges each image by the first rule
whose glob matches its canonical reference, the top-level keys judge the rest (and every ``--image-id``
target), a rule overrides only the keys it sets, the top-level ignore/VEX/KEV still apply, every report says
which rule judged each image, ``policy explain`` tells the same without calling the cloud, and ``policy
validate`` warns about overlapping and unreachable rules."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import DIGEST_A, DIGEST_B, DIGEST_C, REPO_ROOT, check_args, finding, image, run_cli

PROD = "cr.yandex/crptest/prod/api:1.4"
DEV = "cr.yandex/crptest/dev/api:1.4"
OTHER = "cr.yandex/crptest/tools/lint:2"
CATALOG = REPO_ROOT / "tests" / "data" / "kev" / "catalog.json"
# Each image has one high finding with a fix and one medium without.
FINDINGS = [
    finding("CVE-2024-0003", "HIGH", package="curl", fixed_by="8.0"),
    finding("CVE-2024-0004", "MEDIUM", package="glibc"),
]
POLICY = """\
version: 1
thresholds: {critical: 0, high: 0}
images:
  - match: ["cr.yandex/*/prod/*"]
    thresholds: {critical: 0, high: 0, medium: 0}
  - match: ["cr.yandex/*/dev/*"]
    thresholds: {critical: 0, high: 5}
"""


def repository(name: str, image_id: str, tag: str, digest: str) -> dict[str, Any]:
    return {"name": name, "images": [image(image_id, tag, digest, FINDINGS)]}


@pytest.fixture
def emu(start_emulator):
    return start_emulator(
        {
            "registries": [
                {
                    "id": "crptest",
                    "repositories": [
                        repository("prod/api", "crpprod", "1.4", DIGEST_A),
                        repository("dev/api", "crpdev", "1.4", DIGEST_B),
                        repository("tools/lint", "crptools", "2", DIGEST_C),
                    ],
                }
            ]
        }
    )


def policy_file(tmp_path: Path, text: str = POLICY) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def json_run(emu, tmp_path: Path, *refs: str, policy: str = POLICY, args: tuple[str, ...] = ()) -> tuple[int, dict]:
    result = run_cli(check_args(emu, *refs, "--policy", policy_file(tmp_path, policy), "--format", "json", *args))
    assert result.code in (0, 1), result.output
    return result.code, json.loads(result.stdout)


def by_ref(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {image["ref"]: image for image in doc["images"]}


def test_two_images_matched_by_different_rules_are_judged_by_their_own_limits_in_one_run(emu, tmp_path):
    code, doc = json_run(emu, tmp_path, PROD, DEV, OTHER)
    assert code == 1
    images = by_ref(doc)
    # prod: high 1 > 0 and medium 1 > 0; dev: high 1 <= 5 (no medium limit); the rest: high 1 > 0.
    assert images[PROD]["policy_rule"] == 0
    assert [v["severity"] for v in images[PROD]["violations"]] == ["high", "medium"]
    assert images[DEV]["policy_rule"] == 1 and images[DEV]["verdict"] == "pass" and images[DEV]["violations"] == []
    assert images[OTHER]["policy_rule"] is None
    assert [v["severity"] for v in images[OTHER]["violations"]] == ["high"]
    rules = doc["policy"]["images"]
    assert [rule["match"] for rule in rules] == [["cr.yandex/*/prod/*"], ["cr.yandex/*/dev/*"]]
    assert rules[1]["thresholds"] == {"critical": 0, "high": 5} and rules[1]["only_fixed"] is None
    assert rules[0]["line"] == 4


def test_the_first_matching_rule_judges(emu, tmp_path):
    policy = POLICY + '  - match: ["cr.yandex/crptest/*"]\n    thresholds: {critical: 10, high: 10, medium: 10}\n'
    _, doc = json_run(emu, tmp_path, PROD, OTHER, policy=policy)
    images = by_ref(doc)
    assert images[PROD]["policy_rule"] == 0 and images[PROD]["verdict"] == "fail"  # not the looser rule 2
    assert images[OTHER]["policy_rule"] == 2 and images[OTHER]["verdict"] == "pass"


def test_a_rule_overrides_only_the_keys_it_sets(emu, tmp_path):
    policy = "version: 1\nthresholds: {high: 0, medium: 0}\nimages:\n"
    policy += "  - match: ['cr.yandex/*/dev/*']\n    only_fixed: true\n"
    _, doc = json_run(emu, tmp_path, DEV, OTHER, policy=policy)
    images = by_ref(doc)
    # dev keeps the top-level thresholds, but counts only fixable findings: the medium (no fix) is out.
    assert [v["severity"] for v in images[DEV]["violations"]] == ["high"]
    medium = next(f for f in images[DEV]["findings"] if f["severity"] == "medium")
    assert medium["decision"] == "not_fixable"
    assert [v["severity"] for v in images[OTHER]["violations"]] == ["high", "medium"]


def test_a_rules_ignore_list_comes_after_the_top_level_one_and_applies_only_to_its_images(emu, tmp_path):
    policy = (
        "version: 1\nthresholds: {high: 0}\n"
        "ignore:\n  - {id: CVE-2024-0004, reason: 'glibc iconv unused'}\n"
        "images:\n  - match: ['cr.yandex/*/dev/*']\n"
        "    ignore:\n      - {id: CVE-2024-0003, reason: 'dev images never face the internet'}\n"
    )
    code, doc = json_run(emu, tmp_path, DEV, OTHER, policy=policy)
    images = by_ref(doc)
    decisions = {f["cve"]: f["decision"] for f in images[DEV]["findings"]}
    assert decisions == {"CVE-2024-0003": "ignored", "CVE-2024-0004": "ignored"}  # its own rule and the top level
    others = {f["cve"]: f["decision"] for f in images[OTHER]["findings"]}
    assert others == {"CVE-2024-0003": "counted", "CVE-2024-0004": "ignored"}
    assert images[DEV]["verdict"] == "pass" and images[OTHER]["verdict"] == "fail" and code == 1
    assert doc["stale_ignores"] == []  # the rule's ignore matched in its own image


def test_a_rules_vex_and_the_top_level_kev_apply(emu, tmp_path):
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.invalid/vex/dev",
        "author": "tests",
        "timestamp": "2026-12-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2024-0003"},
                "products": [{"@id": "cr.yandex/crptest/dev/api"}, {"@id": "cr.yandex/crptest/tools/lint"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }
    (tmp_path / "dev.openvex.json").write_text(json.dumps(vex))
    catalog = json.loads(CATALOG.read_text())
    catalog["vulnerabilities"][0]["cveID"] = "CVE-2024-0004"  # the medium glibc finding is known exploited
    (tmp_path / "kev.json").write_text(json.dumps(catalog))
    policy = (
        "version: 1\nthresholds: {high: 0}\nkev: {catalog: kev.json, max: 0}\n"
        "images:\n  - match: ['cr.yandex/*/dev/*']\n    thresholds: {high: 0}\n    vex: [dev.openvex.json]\n"
    )
    _, doc = json_run(emu, tmp_path, DEV, OTHER, policy=policy)
    images = by_ref(doc)
    dev = {f["cve"]: f for f in images[DEV]["findings"]}
    assert dev["CVE-2024-0003"]["decision"] == "vex"  # the rule's VEX document, for the rule's image only
    other = {f["cve"]: f for f in images[OTHER]["findings"]}
    assert other["CVE-2024-0003"]["decision"] == "counted"
    for judged in (images[DEV], images[OTHER]):  # the top-level KEV limit judges every image
        assert {"severity": "kev", "count": 1, "limit": 0} in judged["violations"]
    assert doc["policy"]["images"][0]["vex"] == [str(tmp_path / "dev.openvex.json")]


def test_an_image_id_target_matches_no_rule(emu, tmp_path):
    policy = "version: 1\nthresholds: {high: 0}\nimages:\n  - match: ['*']\n    thresholds: {high: 10}\n"
    _, doc = json_run(emu, tmp_path, DEV, "--image-id", "crpdev", policy=policy)
    images = doc["images"]
    assert images[0]["policy_rule"] == 0 and images[0]["verdict"] == "pass"
    assert images[1]["ref"] == "crpdev" and images[1]["policy_rule"] is None and images[1]["verdict"] == "fail"


def test_globs_are_case_sensitive_on_the_canonical_reference_and_star_crosses_slashes(emu, tmp_path):
    policy = (
        "version: 1\nthresholds: {high: 0}\nimages:\n"
        "  - match: ['cr.yandex/crptest/DEV/*']\n    thresholds: {high: 9}\n"  # never: the repository is lowercase
        "  - match: ['cr.yandex/*:1.4']\n    thresholds: {high: 5}\n"  # * crosses crptest/dev/api
    )
    _, doc = json_run(emu, tmp_path, "CR.YANDEX/crptest/dev/api:1.4", OTHER, policy=policy)
    images = doc["images"]
    assert images[0]["policy_rule"] == 1  # the host is canonical (lowercase) before matching
    assert images[1]["policy_rule"] is None  # tag 2, not 1.4
    tagless = "version: 1\nthresholds: {high: 0}\nimages:\n  - match: ['*:latest']\n    thresholds: {high: 5}\n"
    assert by_ref(json_run(emu, tmp_path, PROD, policy=tagless)[1])[PROD]["policy_rule"] is None


def test_every_report_names_the_rule(emu, tmp_path):
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("text", "markdown", "junit")}
    args = [arg for fmt, path in out.items() for arg in ("--output", f"{fmt}={path}")]
    result = run_cli(check_args(emu, PROD, DEV, OTHER, "--policy", policy_file(tmp_path), *args))
    assert result.code == 1, result.output
    text = out["text"].read_text()
    assert "judged by policy rule images[0] (cr.yandex/*/prod/*): critical <= 0, high <= 0, medium <= 0" in text
    assert "judged by policy rule images[1] (cr.yandex/*/dev/*): critical <= 0, high <= 5" in text
    assert "judged by the top-level limits (no images: rule matches)" in text
    # The dev image's table shows its own limit (5), not the top-level 0.
    dev_block = text.split(DEV, 1)[1].split("\n\n", 1)[0]
    assert "  high             1      5  ok" in dev_block
    markdown = out["markdown"].read_text()
    assert "Judged by policy rule images\\[1\\] (cr.yandex/\\*/dev/\\*)." in markdown
    assert "| high <= 5 | 1 | ✅ ok |" in markdown
    junit = ET.parse(out["junit"]).getroot()
    suites = {s.get("name"): s for s in junit.iter("testsuite")}
    rule = {p.get("name"): p.get("value") for p in suites[DEV].iter("property")}["policy_rule"]
    assert rule == "images[1] (cr.yandex/*/dev/*)"
    assert {case.get("name") for case in suites[DEV].iter("testcase")} == {"critical <= 0", "high <= 5"}


def test_the_command_line_limits_override_every_rule(emu, tmp_path):
    _, doc = json_run(emu, tmp_path, DEV, args=("--max", "high=0"))
    assert by_ref(doc)[DEV]["violations"] == [{"severity": "high", "count": 1, "limit": 0}]


def test_evaluate_judges_each_saved_image_by_its_rule(emu, tmp_path):
    saved = tmp_path / "saved.json"
    assert run_cli(check_args(emu, PROD, DEV, "--max", "critical=5", "--output", f"json={saved}")).code == 1
    result = run_cli(["evaluate", str(saved), "--policy", policy_file(tmp_path), "--format", "json"])
    assert result.code == 1, result.output
    images = by_ref(json.loads(result.stdout))
    assert images[PROD]["policy_rule"] == 0 and images[DEV]["policy_rule"] == 1
    assert images[DEV]["verdict"] == "pass"


# -- policy explain ---------------------------------------------------------------------------------------


def test_policy_explain_prints_the_rule_and_the_effective_limits_without_the_cloud(tmp_path):
    policy = policy_file(tmp_path)
    result = run_cli(["policy", "explain", "--policy", policy, PROD, DEV, OTHER])
    assert result.code == 0, result.output
    assert f"{PROD}: judged by rule images[0] (match cr.yandex/*/prod/*, line 4)" in result.stdout
    assert "  critical <= 0, high <= 5; medium, low, negligible, undefined, total: no limit" in result.stdout
    assert f"{OTHER}: judged by the top-level keys (no images: rule matches)" in result.stdout
    doc = json.loads(run_cli(["policy", "explain", "--policy", policy, "--format", "json", DEV, OTHER]).stdout)
    dev, other = doc["references"]
    assert dev["policy_rule"] == 1 and dev["thresholds"] == {"critical": 0, "high": 5}
    assert dev["rule"]["match"] == ["cr.yandex/*/dev/*"] and dev["canonical"] == DEV
    assert other["policy_rule"] is None and other["thresholds"] == {"critical": 0, "high": 0}
    assert doc["policy"]["source"] == policy and len(doc["policy"]["sha256"]) == 64


@pytest.mark.parametrize("ref", ["crpdev", "docker.io/library/nginx:1", "cr.yandex/crptest/Dev:1"])
def test_policy_explain_refuses_what_is_no_registry_reference(tmp_path, ref):
    result = run_cli(["policy", "explain", "--policy", policy_file(tmp_path), ref])
    assert result.code == 2 and "invalid image reference" in result.stderr, result.output


def test_policy_explain_needs_a_reference(tmp_path):
    result = run_cli(["policy", "explain", "--policy", policy_file(tmp_path)])
    assert result.code == 2 and "REF" in result.stderr


# -- policy validate: bad rules are exit 2, overlapping and unreachable rules are warnings -------------------


@pytest.mark.parametrize(
    "rules, fragment",
    [
        ("images: []", "'images' must be a list of rules, got an empty list"),
        ("images: {match: ['*']}", "'images' must be a list of rules, got a mapping"),
        ("images:\n  - thresholds: {high: 0}", "missing required key 'match'"),
        ("images:\n  - match: 'cr.yandex/*'\n    only_fixed: true", "got a single value"),
        ("images:\n  - match: []\n    only_fixed: true", "'match' must list at least one glob"),
        ("images:\n  - match: ['a b']\n    only_fixed: true", "one word of printable characters"),
        ("images:\n  - match: ['*', '*']\n    only_fixed: true", "listed twice"),
        ("images:\n  - match: ['*']", "sets nothing besides 'match'"),
        ("images:\n  - match: ['*']\n    baseline: {image: cr.yandex/crp1/app:1}", "unknown key 'baseline'"),
        ("images:\n  - match: ['*']\n    thresholds: {hihg: 0}", "did you mean 'high'"),
        ("images:\n  - match: ['*']\n    unscannable: maybe", "unscannable"),
        ("images:\n  - match: ['*']\n    ignore: [{id: CVE-2024-0001}]", "reason"),
        ("images:\n  - match: ['*']\n    vex: [missing.json]", "cannot read the VEX document"),
        (
            "images:\n  - match: ['*']\n    only_fixed: true\n    thresholds: {high: {max: 0, fixable_only: false}}",
            "cannot override this rule's 'only_fixed: true'",
        ),
    ],
)
def test_bad_image_rules_are_exit_2_naming_the_line_and_key(tmp_path, rules, fragment):
    policy = policy_file(tmp_path, f"version: 1\nthresholds: {{high: 0}}\n{rules}\n")
    result = run_cli(["policy", "validate", policy])
    assert result.code == 2, result.output
    assert fragment in result.stderr and f"policy {policy}:" in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_policy_validate_warns_about_overlapping_and_unreachable_rules(tmp_path):
    policy = policy_file(
        tmp_path,
        POLICY
        + "  - match: ['cr.yandex/*/dev/api:*']\n    only_fixed: true\n"
        + "  - match: ['cr.yandex/crptest/tools/lint:*']\n    only_fixed: true\n",
    )
    result = run_cli(["policy", "validate", policy])
    assert result.code == 0, result.output
    assert f"{policy}:8: image rule images[2] (cr.yandex/*/dev/api:*) is unreachable" in result.stderr
    # * crosses /: a repository dev/prod/x is under both prod/* and dev/*, and the warning shows one.
    assert (
        f"{policy}:6: image rules images[0] (cr.yandex/*/prod/*) and images[1] (cr.yandex/*/dev/*) overlap: "
        "'cr.yandex/*/prod/*' and 'cr.yandex/*/dev/*' both match e.g. 'cr.yandex/a00/dev/prod/0:0'"
    ) in result.stderr
    assert "images[3]" not in result.stderr  # a tag holds no '/': tools/lint:* shares no image with them
    clean = policy_file(
        tmp_path,
        "version: 1\nthresholds: {high: 0}\nimages:\n  - match: ['cr.yandex/crptest/app:*']\n    only_fixed: true\n",
    )
    assert run_cli(["policy", "validate", clean]).stderr == ""


def test_a_rules_unscannable_judges_the_manifest_images_it_matches_as_written(emu, tmp_path):
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"    - {{name: a, image: '{DEV}'}}\n"
        "    - {name: b, image: 'gcr.io/distroless/static:nonroot'}\n"
        "    - {name: c, image: 'docker.io/library/nginx:1.25'}\n"
    )
    policy = (
        "version: 1\nthresholds: {high: 5}\nunscannable: fail\n"
        "images:\n  - match: ['gcr.io/distroless/*']\n    unscannable: skip\n"
    )
    result = run_cli(
        check_args(emu, "--from-manifest", str(manifest), "--policy", policy_file(tmp_path, policy), "--format", "json")
    )
    assert result.code == 1, result.output  # nginx follows the top-level 'fail'
    doc = json.loads(result.stdout)
    assert doc["images"][0]["verdict"] == "pass"
    unscannable = [w for w in doc["warnings"] if "not in Yandex Container Registry" in w]
    assert len(unscannable) == 1 and unscannable[0].startswith("docker.io/library/nginx:1.25 (")
    assert "(policy unscannable: fail)" in unscannable[0]  # distroless is skipped by its rule: not listed
    assert "FAIL: 1 image(s) outside Yandex Container Registry (unscannable: fail) (exit 1)" in result.stderr
    policy = policy.replace("unscannable: skip", "unscannable: warn").replace("unscannable: fail\n", "")
    result = run_cli(
        check_args(emu, "--from-manifest", str(manifest), "--policy", policy_file(tmp_path, policy), "--format", "json")
    )
    assert result.code == 0, result.output  # the top-level default warns, and the rule warns too
    assert len([w for w in json.loads(result.stdout)["warnings"] if "not scanned" in w]) == 2
