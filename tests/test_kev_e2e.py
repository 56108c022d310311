"""Known exploited vulnerabilities end to end: the policy's ``kev:`` key and ``--kev-catalog`` through the CLI
against the emulator, with the small CISA-format catalog in ``tests/data/kev``: a KEV-listed finding fails an
image whose counts are within every severity limit, only an ignore rule or a VEX statement takes it out, every
format names the entry, and every way a catalog can be wrong is exit 2 naming the file and where."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import DIGEST_A, DIGEST_B, REPO_ROOT, check_args, digest_of, finding, image, run_cli, scenario

CATALOG = REPO_ROOT / "tests" / "data" / "kev" / "catalog.json"
APP = "cr.yandex/crptest/app:kev"
PROD = "cr.yandex/crptest/app:prod"
# CVE-2024-0005 (LOW, no fix) is in the catalog (added 2026-11-02, due 2026-11-23, known ransomware use);
# CVE-2024-0003 (HIGH, fixed) is not.
KEV_FINDING = finding("CVE-2024-0005", "LOW", package="glibc")
FINDINGS = [KEV_FINDING, finding("CVE-2024-0003", "HIGH", package="curl", fixed_by="8.0")]
LOOSE = "thresholds: {critical: 10, high: 10, medium: 10, low: 10, total: 100}\n"
NOTE = "known exploited (KEV, added 2026-11-02, due 2026-11-23, known ransomware use)"
JSON_KEV = {"date_added": "2026-11-02", "due_date": "2026-11-23", "known_ransomware": "Known"}


@pytest.fixture
def emu(start_emulator):
    return start_emulator(
        scenario(
            image("crpkev", "kev", DIGEST_B, FINDINGS),
            image("crpprod", "prod", DIGEST_A, [KEV_FINDING], last_result={"status": "READY", "age_seconds": 3600}),
        )
    )


def policy_file(tmp_path: Path, body: str, catalog: Path = CATALOG) -> str:
    (tmp_path / "kev").mkdir(exist_ok=True)
    (tmp_path / "kev" / "catalog.json").write_bytes(catalog.read_bytes())
    path = tmp_path / "policy.yaml"
    path.write_text(f"version: 1\n{LOOSE}kev: {{catalog: kev/catalog.json, max: 0}}\n{body}")
    return str(path)


def json_run(emu, *args: str, refs: tuple[str, ...] = (APP,)) -> tuple[int, dict[str, Any], str]:
    result = run_cli(check_args(emu, *refs, "--format", "json", *args))
    assert result.code in (0, 1), result.output
    return result.code, json.loads(result.stdout), result.stderr


def kev_finding(doc: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in doc["images"][0]["findings"] if f["cve"] == "CVE-2024-0005")


def test_a_kev_listed_finding_fails_an_image_within_every_severity_limit(emu, tmp_path):
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, ""))
    assert code == 1
    judged = doc["images"][0]
    assert judged["verdict"] == "fail"
    assert judged["violations"] == [{"severity": "kev", "count": 1, "limit": 0}]  # the severities are within
    assert judged["counted"]["kev"] == 1
    assert kev_finding(doc)["kev"] == JSON_KEV and kev_finding(doc)["decision"] == "counted"
    curl = next(f for f in judged["findings"] if f["cve"] == "CVE-2024-0003")
    assert curl["kev"] is None
    catalog = doc["policy"]["kev"]
    assert catalog["catalog"] == str(tmp_path / "kev" / "catalog.json") and catalog["version"] == "2026.12.01"
    assert catalog["released"].startswith("2026-12-01T17:59:29") and catalog["entries"] == 3
    assert catalog["max"] == 0 and catalog["max_age_seconds"] == 30 * 86400
    assert catalog["sha256"] == hashlib.sha256(CATALOG.read_bytes()).hexdigest()


def test_kev_max_allows_that_many(emu, tmp_path):
    policy = policy_file(tmp_path, "")
    Path(policy).write_text(Path(policy).read_text().replace("max: 0", "max: 1"))
    code, doc, _ = json_run(emu, "--policy", policy)
    assert code == 0 and doc["images"][0]["violations"] == []


def test_the_kev_catalog_flag_alone_means_kev_max_0(emu, tmp_path):
    result = run_cli(check_args(emu, APP, "--max", "low=5", "--max", "high=5", "--kev-catalog", str(CATALOG)))
    assert result.code == 1, result.output
    assert "known exploited (KEV) 1 > 0" in result.stdout
    assert f"--kev-catalog {CATALOG}" in result.stdout  # the report names where the limit came from
    assert run_cli(check_args(emu, APP, "--max", "low=5", "--max", "high=5")).code == 0


def test_an_ignore_rule_with_a_reason_takes_a_kev_finding_out(emu, tmp_path):
    rule = 'ignore:\n  - {id: CVE-2024-0005, package: glibc, reason: "glibc iconv is not reachable here"}\n'
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, rule))
    assert code == 0
    assert kev_finding(doc)["decision"] == "ignored" and kev_finding(doc)["kev"] == JSON_KEV  # still shown
    assert doc["images"][0]["counted"]["kev"] == 0


def test_a_vex_statement_takes_a_kev_finding_out(emu, tmp_path):
    digest = digest_of(emu, "crpkev").replace(":", "%3A")
    vex = tmp_path / "app.openvex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "@id": "https://example.invalid/vex/kev",
                "author": "Platform security",
                "timestamp": "2026-12-01T10:00:00Z",
                "version": 1,
                "statements": [
                    {
                        "vulnerability": {"name": "CVE-2024-0005"},
                        "products": [
                            {
                                "@id": f"pkg:oci/app@{digest}?repository_url=cr.yandex/crptest/app",
                                "subcomponents": [{"@id": "pkg:deb/debian/glibc"}],
                            }
                        ],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_present",
                    }
                ],
            }
        )
    )
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, ""), "--vex", str(vex))
    assert code == 0
    assert kev_finding(doc)["decision"] == "vex" and kev_finding(doc)["kev"] == JSON_KEV


def test_fixable_only_does_not_take_a_kev_finding_out(emu, tmp_path):
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, "only_fixed: true\n"))
    assert code == 1
    assert kev_finding(doc)["decision"] == "not_fixable"  # out of the severity counts ...
    assert doc["images"][0]["violations"] == [{"severity": "kev", "count": 1, "limit": 0}]  # ... not of kev's


def test_the_baseline_does_not_take_a_kev_finding_out(emu, tmp_path):
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, f"baseline:\n  image: {PROD}\n"))
    assert code == 1
    assert kev_finding(doc)["decision"] == "in_baseline"  # production has it too: not new, still exploited
    assert doc["images"][0]["violations"] == [{"severity": "kev", "count": 1, "limit": 0}]


def _released(days_ago: int) -> dict[str, Any]:
    data = json.loads(CATALOG.read_text())
    released = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago)
    data["dateReleased"] = released.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return data


def test_a_stale_catalog_warns_and_does_not_fail(emu, tmp_path):
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(_released(45)))
    ignore_all = 'ignore:\n  - {id: CVE-2024-0005, reason: "accepted until the next release"}\n'
    code, doc, stderr = json_run(emu, "--policy", policy_file(tmp_path, ignore_all), "--kev-catalog", str(stale))
    assert code == 0  # a stale catalog is a warning: it can only miss failures, never add a pass
    warning = next(w for w in doc["warnings"] if w.startswith("KEV catalog"))
    assert f"KEV catalog {stale} (version 2026.12.01)" in warning
    assert "45 days ago, older than kev.max_age (30d): download it again" in warning
    assert warning in stderr
    # Fresh enough for its max_age: no warning.
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps(_released(2)))
    code, doc, _ = json_run(emu, "--policy", policy_file(tmp_path, ignore_all), "--kev-catalog", str(fresh))
    assert code == 0 and not any(w.startswith("KEV catalog") for w in doc["warnings"])


def test_max_age_in_the_policy(emu, tmp_path):
    catalog = tmp_path / "old.json"
    catalog.write_text(json.dumps(_released(3)))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\n{LOOSE}kev: {{catalog: old.json, max: 5, max_age: 1d}}\n")
    code, doc, _ = json_run(emu, "--policy", str(policy))
    assert code == 0
    assert any("3 days ago, older than kev.max_age (1d)" in w for w in doc["warnings"])


def test_every_format_names_the_kev_entry(emu, tmp_path):
    formats = ("text", "markdown", "sarif", "gitlab", "codequality", "junit", "json")
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in formats}
    args = [arg for fmt, path in out.items() for arg in ("--output", f"{fmt}={path}")]
    result = run_cli(check_args(emu, APP, "--policy", policy_file(tmp_path, ""), *args))
    assert result.code == 1, result.output
    text = out["text"].read_text()
    assert "known exploited (KEV) 1 > 0" in text
    assert f"glibc 1.0.0: {NOTE}" in text
    assert NOTE in out["markdown"].read_text()
    assert json.loads(out["json"].read_text())["images"][0]["findings"][0]["kev"] == JSON_KEV
    sarif = json.loads(out["sarif"].read_text())
    listed = [r for r in sarif["runs"][0]["results"] if r["ruleId"].startswith("CVE-2024-0005")]
    assert len(listed) == 1 and listed[0]["level"] == "error"  # a LOW finding, but it fails the image
    assert NOTE in listed[0]["message"]["text"]
    gitlab = json.loads(out["gitlab"].read_text())
    entry = next(v for v in gitlab["vulnerabilities"] if "CVE-2024-0005" in v["description"])
    assert NOTE[0].upper() + NOTE[1:] in entry["description"]
    quality = json.loads(out["codequality"].read_text())
    entry = next(e for e in quality if e["check_name"] == "CVE-2024-0005")
    assert entry["severity"] == "critical" and NOTE in entry["description"]
    junit = ET.parse(out["junit"]).getroot()
    failures = [f for f in junit.iter("failure") if f.get("type") == "policy_violation"]
    kev_failure = next(f for f in failures if "known exploited (KEV): 1 > 0" in (f.get("message") or ""))
    assert f"CVE-2024-0005 low glibc 1.0.0 (no fix known): {NOTE}" in (kev_failure.text or "")


def test_a_kev_finding_taken_out_by_the_baseline_is_still_shown_as_failing_in_sarif_and_codequality(emu, tmp_path):
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("sarif", "codequality")}
    args = [arg for fmt, path in out.items() for arg in ("--output", f"{fmt}={path}")]
    result = run_cli(check_args(emu, APP, "--policy", policy_file(tmp_path, f"baseline:\n  image: {PROD}\n"), *args))
    assert result.code == 1, result.output
    sarif = json.loads(out["sarif"].read_text())
    listed = [r for r in sarif["runs"][0]["results"] if r["ruleId"].startswith("CVE-2024-0005")]
    assert listed[0]["level"] == "error" and listed[0]["properties"]["decision"] == "in_baseline"
    quality = json.loads(out["codequality"].read_text())
    assert any(e["check_name"] == "CVE-2024-0005" for e in quality)


def test_evaluate_takes_the_kev_catalog_too(emu, tmp_path):
    saved = tmp_path / "saved.json"
    assert run_cli(check_args(emu, APP, "--max", "low=5", "--max", "high=5", "--output", f"json={saved}")).code == 0
    policy = tmp_path / "loose.yaml"
    policy.write_text(f"version: 1\n{LOOSE}")
    assert run_cli(["evaluate", str(saved), "--policy", str(policy)]).code == 0
    result = run_cli(["evaluate", str(saved), "--policy", str(policy), "--kev-catalog", str(CATALOG)])
    assert result.code == 1 and "known exploited (KEV) 1 > 0" in result.stdout


# -- malformed catalogs: exit 2 before any call, naming the file and where ------------------------------


def _broken(change: str) -> str:
    data = json.loads(CATALOG.read_text())
    first = data["vulnerabilities"][0]
    match change:
        case "truncated":
            return CATALOG.read_text()[:400]
        case "count":
            data["count"] = 4
        case "no cve":
            del first["cveID"]
        case "bad cve":
            first["cveID"] = "GHSA-xxxx"
        case "twice":
            data["vulnerabilities"][1]["cveID"] = first["cveID"]
        case "bad date":
            first["dateAdded"] = "11/02/2026"
        case "bad ransomware":
            first["knownRansomwareCampaignUse"] = "Maybe"
        case "bad released":
            data["dateReleased"] = "yesterday"
        case "not a list":
            data["vulnerabilities"] = {}
            data["count"] = 0
        case "duplicate key":
            return CATALOG.read_text().replace('"count": 3,', '"count": 3, "count": 3,')
        case "deep":
            return "[" * 100 + "]" * 100
    return json.dumps(data, indent=2)


MALFORMED = {
    "truncated": "not valid JSON",
    "count": "$.count: is 4 but the catalog lists 3 vulnerabilities (truncated?)",
    "no cve": "$.vulnerabilities[0].cveID: is missing",
    "bad cve": "$.vulnerabilities[0].cveID: 'GHSA-xxxx' is not a CVE id",
    "twice": "$.vulnerabilities[1].cveID: CVE-2024-0005 is listed twice",
    "bad date": "$.vulnerabilities[0].dateAdded: '11/02/2026' is not a date",
    "bad ransomware": "$.vulnerabilities[0].knownRansomwareCampaignUse: expected one of Known, Unknown",
    "bad released": "$.dateReleased: 'yesterday' is not a UTC timestamp",
    "not a list": "$.vulnerabilities: expected a list",
    "duplicate key": "appears twice in one object",
    "deep": "nests 100 levels deep",
}


@pytest.mark.parametrize("change", sorted(MALFORMED))
def test_a_malformed_catalog_is_exit_2_naming_the_file_and_where(emu, tmp_path, change):
    catalog = tmp_path / "bad.json"
    catalog.write_text(_broken(change))
    result = run_cli(check_args(emu, APP, "--kev-catalog", str(catalog)))
    assert result.code == 2, result.output
    assert f"KEV catalog {catalog}" in result.stderr and MALFORMED[change] in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert emu.stats.calls.get("ScannerService.Scan", 0) == 0


def test_a_truncated_catalog_names_the_line_and_column(tmp_path):
    catalog = tmp_path / "bad.json"
    catalog.write_text(_broken("truncated"))
    result = run_cli(["evaluate", str(tmp_path / "none.json"), "--kev-catalog", str(catalog)])
    assert result.code == 2
    assert "line " in result.stderr and "column " in result.stderr, result.stderr


def test_an_oversized_catalog_is_exit_2_before_it_is_read(emu, tmp_path):
    catalog = tmp_path / "huge.json"
    with catalog.open("wb") as out:
        out.truncate(33 * 1024 * 1024)  # sparse: no 33 MiB written to the disk
    result = run_cli(check_args(emu, APP, "--kev-catalog", str(catalog)))
    assert result.code == 2, result.output
    assert f"KEV catalog {catalog}" in result.stderr and "32 MiB" in result.stderr, result.stderr
    assert emu.stats.calls.get("ScannerService.Scan", 0) == 0


def test_a_malformed_catalog_named_by_the_policy_names_the_policy_line(emu, tmp_path):
    (tmp_path / "bad.json").write_text(_broken("count"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\n{LOOSE}kev:\n  catalog: bad.json\n")
    result = run_cli(check_args(emu, APP, "--policy", str(policy)))
    assert result.code == 2
    assert f"policy {policy}:" in result.stderr and "$.count" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("kev: kev.json", "'kev' must be a mapping"),
        ("kev: {max: 0}", "catalog"),
        ("kev: {catalog: missing.json}", "cannot read"),
        ("kev: {catalog: c.json, max: -1}", "max"),
        ("kev: {catalog: c.json, max_age: soon}", "max_age"),
        ("kev: {catalog: c.json, maximum: 0}", "maximum"),
    ],
)
def test_bad_kev_keys_in_the_policy_are_exit_2(tmp_path, body, fragment):
    (tmp_path / "c.json").write_bytes(CATALOG.read_bytes())
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nthresholds: {{critical: 0}}\n{body}\n")
    result = run_cli(["policy", "validate", str(policy)])
    assert result.code == 2 and fragment in result.stderr, result.output
