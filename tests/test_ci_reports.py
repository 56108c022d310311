"""SARIF, GitLab, JUnit and Markdown reports: pure renderers of a RunReport, valid against the official
schemas, deterministic, bounded in size, and safe with hostile scanner text."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml

from conftest import SHARED, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate.model import SEVERITIES
from crgate.report import render
from crgate.report.common import finding_uuid, repository_of
from crgate.report.markdown import MAX_BYTES
from crgate.report.sarif import MAX_RESULTS, SECURITY_SEVERITY
from reportdata import failed, huge_report, judged, mixed_report, run_report, scanned

SCHEMAS = SHARED / "schemas"
needs_schemas = pytest.mark.skipif(
    not SCHEMAS.is_dir(), reason=f"official schemas not found at {SCHEMAS} (../shared beside the checkout)"
)


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def validate_sarif(doc: dict) -> None:
    schema = _schema("sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(doc)


def validate_gitlab(doc: dict) -> None:
    schema = _schema("gitlab-container-scanning-report-format-15.0.7.json")
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def sarif(report, **options) -> dict:
    return json.loads(render("sarif", report, **options))


def junit(report) -> JUnitXml:
    return JUnitXml.fromstring(render("junit", report).encode("utf-8"))


# -- SARIF ------------------------------------------------------------------------------------------


@needs_schemas
@pytest.mark.parametrize("build", [mixed_report, lambda: run_report(), lambda: run_report(failed("x"))])
def test_sarif_validates_against_the_official_schema(build):
    validate_sarif(sarif(build()))


def test_sarif_has_one_rule_per_cve_meeting_github_rules():
    run = sarif(mixed_report())["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids)) == 7  # CVE-2023-38545 twice (curl, libcurl4) is one rule
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert "security" in rule["properties"]["tags"] and len(rule["properties"]["tags"]) <= 10
        assert re.fullmatch(r"\d+\.\d", rule["properties"]["security-severity"])
    by_id = {rule["id"]: rule for rule in rules}
    assert by_id["CVE-2023-4863"]["properties"]["security-severity"] == SECURITY_SEVERITY["critical"]
    assert float(by_id["CVE-2023-4863"]["properties"]["security-severity"]) >= 9.0  # GitHub's "critical"
    assert 7.0 <= float(by_id["CVE-2024-0002"]["properties"]["security-severity"]) < 9.0
    assert "helpUri" not in by_id["CVE-2024-0006"]  # no link from the scanner: no invented URL


def test_sarif_results_have_message_location_and_stable_fingerprints():
    report = mixed_report()
    run = sarif(report, location="docker/app/Dockerfile")["runs"][0]
    results = run["results"]
    assert len(results) == 8
    rules = run["tool"]["driver"]["rules"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert location == {"artifactLocation": {"uri": "docker/app/Dockerfile"}, "region": {"startLine": 1}}
    levels = {(r["ruleId"], r["properties"]["package"]): r["level"] for r in results}
    assert levels[("CVE-2023-4863", "libwebp7")] == "error"  # made the image fail
    assert levels[("CVE-2024-0005", "tar")] == "warning"  # counted, within limits
    assert levels[("CVE-2024-0002", "zlib1g")] == "note"  # ignored
    ignored = next(r for r in results if r["ruleId"] == "CVE-2024-0002")
    assert ignored["suppressions"][0]["justification"] == "CVE-2024-0002 (policy line 9)"
    fingerprints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)
    # A rebuild under a new tag keeps the alert: the fingerprint is per repository + platform + CVE + package
    # (test_report_alerts.py counts the alerts as GitHub would).
    retagged = replace(report, images=tuple(replace(o, ref=o.ref.replace(":vuln", ":v2")) for o in report.images))
    assert [r["partialFingerprints"] for r in sarif(retagged)["runs"][0]["results"]] == [
        r["partialFingerprints"] for r in results
    ]


def test_sarif_reports_errors_as_failed_execution_notifications():
    invocation = sarif(mixed_report())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 3
    texts = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
    assert any("cr.yandex/crptest/app:broken: scan of image crpbroken failed" in t for t in texts)
    assert any("findings were not fetched" in t for t in texts)
    assert any("expires in 3 days" in t for t in texts)


@needs_schemas
def test_sarif_with_20000_findings_stays_within_github_limits():
    text = render("sarif", huge_report(20_000, images=2))
    doc = json.loads(text)
    assert len(doc["runs"]) == 1 and len(doc["runs"][0]["results"]) == 20_000
    assert len(gzip.compress(text.encode())) < 10 * 1024 * 1024
    # Validating 20,000 results takes minutes with jsonschema; every result is built the same way, so
    # the first and last few hundred (with their rules) stand for all of them.
    run = doc["runs"][0]
    sample = run["results"][:300] + run["results"][-300:]
    rules = run["tool"]["driver"]["rules"]
    kept = sorted({r["ruleIndex"] for r in sample})
    run["tool"]["driver"]["rules"] = [rules[i] for i in kept]
    run["results"] = [{**r, "ruleIndex": kept.index(r["ruleIndex"])} for r in sample]
    validate_sarif(doc)


def test_sarif_keeps_the_most_severe_results_past_the_results_limit():
    doc = sarif(huge_report(MAX_RESULTS + 600))
    run = doc["runs"][0]
    assert len(run["results"]) == MAX_RESULTS
    kept = {r["properties"]["severity"] for r in run["results"]}
    assert "critical" in kept
    dropped = MAX_RESULTS + 600 - MAX_RESULTS
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any(f"{dropped} less severe results were left out" in note for note in notes)
    assert sum(1 for r in run["results"] if r["properties"]["severity"] == "undefined") < (MAX_RESULTS + 600) // 6


# -- GitLab -----------------------------------------------------------------------------------------


@needs_schemas
@pytest.mark.parametrize("build", [mixed_report, lambda: run_report()])
def test_gitlab_report_validates_against_the_official_schema(build):
    validate_gitlab(json.loads(render("gitlab", build())))


@needs_schemas
def test_gitlab_report_with_20000_findings():
    doc = json.loads(render("gitlab", huge_report(20_000)))
    vulnerabilities = doc["vulnerabilities"]
    assert len(vulnerabilities) == len({v["id"] for v in vulnerabilities}) == 20_000
    doc["vulnerabilities"] = vulnerabilities[:300] + vulnerabilities[-300:]  # built alike; a sample stands for all
    validate_gitlab(doc)


def test_gitlab_report_fields():
    doc = json.loads(render("gitlab", mixed_report()))
    scan = doc["scan"]
    assert scan["type"] == "container_scanning" and scan["status"] == "failure"
    assert scan["start_time"] == "2026-01-15T09:30:00" and scan["end_time"] == "2026-01-15T09:30:12"
    assert scan["analyzer"]["id"] == "crgate" and scan["scanner"]["vendor"]["name"] == "Yandex Cloud"
    assert any(m["level"] == "fatal" and "crpbroken" in m["value"] for m in scan["messages"])
    vulns = doc["vulnerabilities"]
    assert len(vulns) == 8
    curl = next(v for v in vulns if v["location"]["dependency"]["package"]["name"] == "curl")
    assert curl["identifiers"][0] == {
        "type": "cve",
        "name": "CVE-2023-38545",
        "value": "CVE-2023-38545",
        "url": "https://nvd.nist.gov/vuln/detail/CVE-2023-38545",
    }
    assert curl["id"] == finding_uuid("cr.yandex/crptest/app:vuln", "CVE-2023-38545", "curl")
    assert curl["location"]["image"] == "cr.yandex/crptest/app:vuln"  # no registry read: the reference as given
    assert "default_branch_image" not in curl["location"]
    assert curl["location"]["operating_system"] == "debian"
    assert curl["location"]["dependency"]["version"] == "1.0.0"
    assert curl["severity"] == "Critical" and curl["solution"] == "Upgrade curl to 7.88.1-10+deb12u4"
    assert len({v["id"] for v in vulns}) == len(vulns)
    ignored = next(v for v in vulns if v["identifiers"][0]["value"] == "CVE-2024-0002")
    assert "Ignored by the crgate policy rule CVE-2024-0002 (policy line 9)" in ignored["description"]


def test_gitlab_report_of_a_clean_run_succeeds():
    scan = json.loads(render("gitlab", run_report(scanned("cr.yandex/crptest/app:clean", []))))["scan"]
    assert scan["status"] == "success"


# -- JUnit ------------------------------------------------------------------------------------------


def test_junit_has_a_case_per_image_and_limit():
    xml = junit(mixed_report())
    suites = {suite.name: suite for suite in xml}
    assert list(suites) == [
        "cr.yandex/crptest/app:clean",
        "cr.yandex/crptest/app:vuln",
        "cr.yandex/crptest/app:broken",
        "cr.yandex/crptest/app:counts",
        "crgate",
    ]
    clean = list(suites["cr.yandex/crptest/app:clean"])
    assert [case.name for case in clean] == ["critical <= 0", "high <= 0", "total <= 50"]
    assert all(case.is_passed for case in clean)
    vuln = {case.name: case for case in suites["cr.yandex/crptest/app:vuln"]}
    (failure,) = vuln["critical <= 0"].result
    assert isinstance(failure, Failure) and failure.message == "critical: 3 > 0"
    assert "CVE-2023-4863 critical libwebp7 1.0.0 (fixed in 1.2.4-0.2+deb12u1)" in failure.text
    assert vuln["high <= 0"].is_passed  # the only high finding is ignored
    broken = list(suites["cr.yandex/crptest/app:broken"])
    assert all(isinstance(case.result[0], Error) for case in broken)
    assert "scanner crashed" in broken[0].result[0].message
    (verdict,) = list(suites["crgate"])
    assert isinstance(verdict.result[0], Error) and "exit 3" in verdict.result[0].message
    assert xml.tests == 3 * 4 + 1 and xml.failures == 1 and xml.errors == 3 + 1


def test_junit_is_valid_xml_whatever_the_scanner_says():
    hostile = judged("CVE-2024-0001", "critical", "pkg\x00\x1b[31m<script>&", fixed_by="1\x07")
    xml = junit(run_report(scanned("cr.yandex/crptest/app:x", [hostile])))
    (case, *_) = list(next(iter(xml)))
    assert "<script>&" in case.result[0].text


def test_junit_of_a_passing_run_has_no_failures():
    xml = junit(run_report(scanned("cr.yandex/crptest/app:clean", [])))
    assert xml.failures == 0 and xml.errors == 0 and xml.tests == 4


# -- Markdown ---------------------------------------------------------------------------------------


def test_markdown_summary_has_verdict_tables_findings_ignored_and_warnings():
    text = render("markdown", mixed_report())
    assert text.startswith("## crgate: ⚠️ ERROR (exit 3)")
    assert "expires in 3 days" in text
    assert "| cr.yandex/crptest/app:vuln | ❌ fail | 3 | 1 | 1 | 1 | 1 | 1 | 8 |" in text
    assert "| critical <= 0 | 3 | ❌ exceeded |" in text
    assert "[CVE-2023-4863](https://nvd.nist.gov/vuln/detail/CVE-2023-4863)" in text
    assert "**Ignored by the policy** (1):" in text and "CVE-2024-0002 (policy line 9)" in text
    assert "**Could not be checked** (exit 3, scan)" in text


def test_markdown_escapes_hostile_text():
    evil = judged("CVE-2024-0001", "critical", "x](https://evil.example)<img src=x>|cell", link="javascript:alert(1)")
    text = render("markdown", run_report(scanned("cr.yandex/crptest/app:x", [evil])))
    assert "<img" not in text and "javascript:" not in text
    assert not re.search(r"(?<!\\)\]\(https://evil", text)  # the bracket is escaped: no link
    row = next(line for line in text.splitlines() if "CVE-2024-0001" in line)
    assert row.count(" | ") == 4, row  # the package name did not add table cells


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: huge_report(20_000), id="20000-findings"),
        pytest.param(lambda: huge_report(20_000, images=20_000), id="20000-images"),
        pytest.param(lambda: run_report(warnings=tuple("w" * 5_000_000 for _ in range(3))), id="huge-warnings"),
    ],
)
def test_markdown_stays_under_one_mebibyte(build):
    text = render("markdown", build())
    assert len(text.encode("utf-8")) < 1024 * 1024
    assert len(text.encode("utf-8")) <= MAX_BYTES + 200


def test_markdown_truncates_with_and_n_more():
    text = render("markdown", huge_report(20_000, images=20_000))
    assert re.search(r"^\.\.\. and \d+ more lines", text, re.M)
    text = render("markdown", huge_report(500))
    assert "... and 480 more findings" in text  # the top findings of a violated severity are capped


# -- common -----------------------------------------------------------------------------------------


def test_every_format_is_deterministic():
    for fmt in ("sarif", "gitlab", "junit", "markdown"):
        assert render(fmt, mixed_report()) == render(fmt, mixed_report()), fmt


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("cr.yandex/crp1/app:1.2", "cr.yandex/crp1/app"),
        ("cr.yandex/crp1/app@sha256:" + "a" * 64, "cr.yandex/crp1/app"),
        ("cr.yandex/crp1/team/app", "cr.yandex/crp1/team/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        ("crpimageid", "crpimageid"),
    ],
)
def test_repository_of(ref, repository):
    assert repository_of(ref) == repository


def test_uuids_are_name_based_and_distinct():
    a = finding_uuid("cr.yandex/crp1/app:1", "CVE-1", "curl")
    assert a == finding_uuid("cr.yandex/crp1/app:1", "CVE-1", "curl")
    assert a != finding_uuid("cr.yandex/crp1/app:1", "CVE-1", "libcurl")
    assert a != finding_uuid("cr.yandex/crp1/app:2", "CVE-1", "curl")


def test_severity_scores_cover_every_severity():
    assert set(SECURITY_SEVERITY) == set(SEVERITIES)
    scores = [float(SECURITY_SEVERITY[s]) for s in SEVERITIES]
    assert scores[:5] == sorted(scores[:5], reverse=True)


# -- end to end: one run writes every format; findings are fetched for them; no secret leaks ---------


@needs_schemas
def test_one_run_writes_every_format_and_never_a_secret(start_emulator, tmp_path: Path):
    emu = start_emulator(
        scenario(
            image("crpclean", "clean", "sha256:" + "a" * 64),
            image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS),
        )
    )
    paths = {fmt: tmp_path / f"report.{fmt}" for fmt in ("sarif", "gitlab", "junit", "markdown", "json")}
    outputs = [arg for fmt, path in paths.items() for arg in ("--output", f"{fmt}={path}")]
    secret = "t1.very-secret-iam-token"
    result = run_cli(
        check_args(
            emu, "cr.yandex/crptest/app:clean", "cr.yandex/crptest/app:vuln", *outputs, "--iam-token", secret, "-vv"
        )
    )
    assert result.code == 1, result.output
    assert emu.stats.calls["ScannerService.ListVulnerabilities"] == 2
    validate_sarif(json.loads(paths["sarif"].read_text()))
    validate_gitlab(json.loads(paths["gitlab"].read_text()))
    assert len(json.loads(paths["gitlab"].read_text())["vulnerabilities"]) == len(VULNERABLE_FINDINGS)
    assert JUnitXml.fromfile(str(paths["junit"])).failures == 3  # critical, high, and the run's verdict
    assert "❌ FAIL (exit 1)" in paths["markdown"].read_text()
    for path in paths.values():
        assert "very-secret" not in path.read_text()
    assert "very-secret" not in result.output


@pytest.mark.parametrize("fmt", ["sarif", "gitlab", "junit", "markdown"])
def test_format_to_stdout_fetches_findings(start_emulator, fmt):
    emu = start_emulator(scenario(image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS)))
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:vuln", "--format", fmt))
    assert result.code == 1
    assert "CVE-2024-0001" in result.stdout
    assert "FAIL: 1 of 1 image" in result.stderr  # the human table still goes to stderr


def test_sarif_location_option(start_emulator):
    emu = start_emulator(scenario(image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS)))
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:vuln", "--format", "sarif", "--sarif-location", "a/Df"))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(result.stdout)["runs"][0]["results"]
    }
    assert uris == {"a/Df"}
    assert run_cli(["check", "--emulator", "cr.yandex/crpdemo/app:clean", "--sarif-location", " "]).code == 2


def test_sarif_location_is_a_uri_reference():
    run = sarif(mixed_report(), location="my app/Dockerfile")["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "my%20app/Dockerfile"


def test_junit_bodies_have_one_finding_per_line():
    xml = junit(mixed_report())
    vuln = {case.name: case for case in next(s for s in xml if s.name == "cr.yandex/crptest/app:vuln")}
    (failure,) = vuln["critical <= 0"].result
    lines = failure.text.split("\n")
    assert len(lines) == 3 and all(line.startswith("CVE-") for line in lines), failure.text
    assert "\\n" not in failure.text  # real line breaks, not the two characters


def test_junit_line_breaks_inside_scanner_text_stay_escaped():
    hostile = judged("CVE-2024-0001", "critical", "pkg\nCVE-FAKE critical forged", fixed_by="1")
    (case, *_) = list(next(iter(junit(run_report(scanned("cr.yandex/crptest/app:x", [hostile]))))))
    assert case.result[0].text.count("\n") == 0 and "pkg\\nCVE-FAKE" in case.result[0].text
