"""The CI formats added for merge/pull requests and admission: GitLab Code Quality, the cosign
vulnerability predicate and the size-bounded comment; and GitLab's handling of language packages."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

import crgate.report
from conftest import SHARED, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate.model import SEVERITIES
from crgate.report import render
from crgate.report.codequality import SEVERITY as CODEQUALITY_SEVERITY
from crgate.report.comment import MAX_BYTES, comment_text
from crgate.report.common import Context
from crgate.report.cosign_vuln import invocation_from_env
from reportdata import STARTED, failed, huge_report, judged, mixed_report, run_report, scanned

REPORT_DIR = Path(crgate.report.__file__).parent
OFFICIAL = SHARED / "schemas"


def _schema(name: str) -> dict:
    return json.loads((REPORT_DIR / name).read_text(encoding="utf-8"))


def validate_codequality(doc: list) -> None:
    schema = _schema("schemas/codequality.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)
    fingerprints = [entry["fingerprint"] for entry in doc]
    assert len(fingerprints) == len(set(fingerprints)), "GitLab shows only the first issue of a fingerprint"


def validate_cosign(doc: dict) -> None:
    schema = _schema("schemas/cosign-vuln.schema.json")
    report_schema = _schema("report.schema.json")
    registry = Registry().with_resource(report_schema["$id"], Resource.from_contents(report_schema))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())
    validator.validate(doc)


def codequality(report, **options) -> list:
    return json.loads(render("codequality", report, **options))


def cosign(report) -> dict:
    return json.loads(render("cosign-vuln", report))


# -- GitLab Code Quality ------------------------------------------------------------------------------


@pytest.mark.parametrize("build", [mixed_report, lambda: run_report(), lambda: run_report(failed("x"))])
def test_codequality_validates_against_its_schema(build):
    validate_codequality(codequality(build()))


def test_codequality_lists_counted_findings_and_images_that_could_not_be_checked():
    doc = codequality(mixed_report(), location="docker/app/Dockerfile")
    findings = [entry for entry in doc if entry["check_name"].startswith(("CVE", "TEMP"))]
    # CVE-2024-0002 (ignored), -0003 (not fixable) and -0004 (in the baseline) do not count.
    assert [entry["check_name"] for entry in findings] == [
        "CVE-2023-38545",
        "CVE-2023-38545",
        "CVE-2023-4863",
        "CVE-2024-0005",
        "CVE-2024-0006",
    ]
    assert [entry["severity"] for entry in findings] == ["critical", "critical", "critical", "info", "minor"]
    curl = findings[0]
    assert "curl 1.0.0 (fixed in 7.88.1-10+deb12u4)" in curl["description"]
    assert "cr.yandex/crptest/app:vuln" in curl["description"]
    assert {entry["location"]["path"] for entry in doc} == {"docker/app/Dockerfile"}
    assert {entry["location"]["lines"]["begin"] for entry in doc} == {1}
    (error,) = [entry for entry in doc if entry["severity"] == "blocker"]
    assert error["check_name"] == "crgate/image-not-checked"
    assert "cr.yandex/crptest/app:broken" in error["description"] and "scanner crashed" in error["description"]


def test_codequality_severity_mapping_covers_every_severity():
    assert set(CODEQUALITY_SEVERITY) == set(SEVERITIES)
    assert set(CODEQUALITY_SEVERITY.values()) <= {"info", "minor", "major", "critical", "blocker"}
    assert CODEQUALITY_SEVERITY["undefined"] != "info"  # an unknown severity is not filed as a note


def test_codequality_fingerprints_are_unique_also_for_the_same_finding_twice():
    twice = [judged("CVE-2024-0001", "high", "openssl"), judged("CVE-2024-0001", "high", "openssl")]
    report = run_report(
        scanned("cr.yandex/crptest/app:amd64", twice, image_id="crpa"),
        scanned("cr.yandex/crptest/app:arm64", twice[:1], image_id="crpb"),
    )
    doc = codequality(report)
    assert len(doc) == 3
    validate_codequality(doc)
    assert codequality(report) == doc  # and stable from run to run


def test_codequality_with_20000_findings():
    doc = codequality(huge_report(20_000))
    assert len(doc) == 20_000
    validate_codequality(doc)  # the schema is small: every entry is checked


def test_codequality_of_a_clean_run_is_an_empty_list():
    assert codequality(run_report(scanned("cr.yandex/crptest/app:clean", []))) == []


# -- cosign vulnerability predicate -------------------------------------------------------------------


@pytest.mark.parametrize("build", [mixed_report, lambda: run_report(), lambda: huge_report(500, images=2)])
def test_cosign_predicate_validates_against_its_schema(build):
    validate_cosign(cosign(build()))


def test_cosign_predicate_of_one_image_carries_its_verdict_and_findings():
    report = run_report(scanned("cr.yandex/crptest/app@sha256:" + "a" * 64, [judged("CVE-2024-1", "critical", "x")]))
    doc = cosign(report)
    assert doc["scanner"]["uri"] == "pkg:pypi/crgate@0.1.0" and doc["scanner"]["version"] == "0.1.0"
    assert set(doc["scanner"]["db"]) == {"uri", "version"}
    result = doc["scanner"]["result"]
    assert result["verdict"] == "fail" and result["exit_code"] == 1
    (only,) = result["images"]
    assert only["ref"].endswith("@sha256:" + "a" * 64)
    assert only["violations"] == [{"severity": "critical", "count": 1, "limit": 0}]
    assert [f["cve"] for f in only["findings"]] == ["CVE-2024-1"]
    assert doc["invocation"] == {"parameters": None, "uri": "", "event_id": "", "builder.id": ""}


def test_cosign_predicate_keeps_at_most_its_cap_of_findings_the_most_important_first():
    from crgate.report.cosign_vuln import FINDINGS_MAX

    counts = {"critical": 0, "high": 0}
    findings = [judged(f"CVE-2024-{i:05d}", "low", f"p{i}") for i in range(3000)]
    findings += [judged("CVE-2024-90001", "critical", "kept-critical"), judged("CVE-2024-90002", "high", "kept-high")]
    findings += [judged("CVE-2024-90003", "critical", "ignored-one", decision="ignored")]
    report = run_report(scanned("cr.yandex/crptest/app:big", findings), huge_report(600, images=1).images[0])
    doc = cosign(report)
    validate_cosign(doc)
    big, other = doc["scanner"]["result"]["images"]
    kept = len(big["findings"]) + len(other["findings"])
    assert kept == FINDINGS_MAX
    assert big["findings_omitted"] + other["findings_omitted"] == 3003 + 600 - FINDINGS_MAX
    packages = [f["package"] for f in big["findings"]]
    assert "kept-critical" in packages and "kept-high" in packages  # counted and severe first
    assert "ignored-one" not in packages  # a counted low finding outranks an ignored critical one here
    for severity in counts:  # verdict, counts and violations stay complete
        assert big["counts"][severity] == sum(1 for f in findings if f.finding.severity == severity)
    assert big["violations"] and doc["scanner"]["result"]["verdict"] == "fail"
    assert len(render("cosign-vuln", report).encode()) < 1_500_000
    # crgate's own JSON report keeps every finding and has no such key.
    full = json.loads(render("json", report))["images"][0]
    assert len(full["findings"]) == 3003 and "findings_omitted" not in full


def test_cosign_predicate_below_the_cap_omits_nothing():
    doc = cosign(mixed_report())
    assert all(image["findings_omitted"] == 0 for image in doc["scanner"]["result"]["images"] if image["findings"])


def test_cosign_predicate_of_several_images_says_the_run_verdict():
    clean = scanned("cr.yandex/crptest/app:clean", [], image_id="crpclean")
    bad = scanned("cr.yandex/crptest/app:bad", [judged("CVE-2024-1", "high", "x")], image_id="crpbad")
    result = cosign(run_report(clean, bad))["scanner"]["result"]
    assert result["verdict"] == "fail"  # attached to the clean image too, it never says more than the run
    assert [(i["ref"], i["verdict"]) for i in result["images"]] == [
        ("cr.yandex/crptest/app:clean", "pass"),
        ("cr.yandex/crptest/app:bad", "fail"),
    ]
    assert cosign(run_report(clean))["scanner"]["result"]["verdict"] == "pass"


def test_cosign_scan_time_is_the_oldest_result_so_reuse_cannot_look_fresh():
    fresh = scanned("cr.yandex/crptest/app:a", [], image_id="crpa")
    old_result = replace(fresh.result, scanned_at=STARTED - dt.timedelta(days=3))
    reused = replace(scanned("cr.yandex/crptest/app:b", [], image_id="crpb"), result=old_result, origin="reused")
    metadata = cosign(run_report(fresh, reused))["metadata"]
    assert metadata["scanFinishedOn"] == "2026-01-12T09:30:00.123456Z"
    assert metadata["scanStartedOn"] <= metadata["scanFinishedOn"]
    only_fresh = cosign(run_report(fresh))["metadata"]
    assert only_fresh == {
        "scanStartedOn": "2026-01-15T09:30:00.123456Z",
        "scanFinishedOn": "2026-01-15T09:30:00.123456Z",
    }


def test_cosign_invocation_names_the_ci_run_and_nothing_secret():
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "1071875574",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_SERVER_URL": "https://github.com",
        "YC_IAM_TOKEN": "t1.secret",
    }
    assert invocation_from_env(github) == {
        "uri": "https://github.com/acme/app/actions/runs/1071875574",
        "event_id": "1071875574",
        "builder.id": "GitHub Actions",
    }
    gitlab = {"GITLAB_CI": "true", "CI_JOB_ID": "42", "CI_JOB_URL": "https://gitlab.com/acme/app/-/jobs/42"}
    assert invocation_from_env(gitlab) == {"uri": gitlab["CI_JOB_URL"], "event_id": "42", "builder.id": "GitLab CI"}
    assert invocation_from_env({"YC_IAM_TOKEN": "t1.secret"}) == {}
    out = io.StringIO()
    crgate.report.write("cosign-vuln", mixed_report(), out, invocation=invocation_from_env(github))
    doc = json.loads(out.getvalue())
    assert doc["invocation"]["uri"].endswith("/runs/1071875574") and "secret" not in out.getvalue()


# -- the size-bounded comment -------------------------------------------------------------------------


def _table_rows_are_whole(text: str) -> None:
    """Every table keeps the cell count of its header: nothing was cut inside a row."""
    width = None
    for line in text.splitlines():
        if not line.startswith("|"):
            width = None
            continue
        assert line.endswith("|"), line
        cells = len(re.split(r"(?<!\\)\|", line)) - 2
        width = cells if width is None else width
        assert cells == width, line


def test_comment_of_a_small_run_has_verdict_reasons_and_findings_most_severe_first():
    text = render("comment", mixed_report())
    assert text.startswith("## crgate: ⚠️ ERROR (exit 3)")
    assert "- cr.yandex/crptest/app:vuln violates the policy: critical 3 > 0" in text
    assert "- cr.yandex/crptest/app:broken could not be checked (exit 3, scan): scan of image crpbroken" in text
    table = text.split("**Findings that count against the policy**")[1]
    rows = [line for line in table.splitlines() if line.startswith("| cr.yandex/crptest/app:vuln | ")]
    assert len(rows) == 5  # the counted findings, with the image column (several images)
    severities = [row.split(" | ")[2] for row in rows]
    assert severities == sorted(severities, key=SEVERITIES.index)
    assert "Not counted: 1 ignored by the policy, 1 in the baseline, 1 not fixable." in text
    assert "... and" not in text
    _table_rows_are_whole(text)


@pytest.mark.parametrize(
    ("build", "what"),
    [
        pytest.param(lambda: huge_report(20_000), "findings", id="20000-findings"),
        pytest.param(lambda: huge_report(20_000, images=20_000), "images", id="20000-images"),
    ],
)
def test_comment_stays_under_the_bound_and_ends_in_and_n_more(build, what):
    report = build()
    text = render("comment", report)
    assert len(text.encode("utf-8")) <= MAX_BYTES < 65_536
    lines = text.rstrip("\n").splitlines()
    last = lines[-1]
    match = re.fullmatch(rf"\.\.\. and (\d+) more {what} \(cut to stay under 60,000 bytes; .*\)", last)
    assert match, last
    assert lines[-2] == ""  # after a blank line: never read as a table row
    _table_rows_are_whole(text)
    if what == "findings":
        shown = sum(1 for line in lines if line.startswith("| [CVE"))
        assert shown + int(match.group(1)) == 20_000
        severities = [line.split(" | ")[1] for line in lines if line.startswith("| [CVE")]
        assert severities == sorted(severities, key=SEVERITIES.index)  # the most severe are the ones shown


def test_comment_bound_is_configurable_and_counts_bytes():
    many = [judged(f"CVE-2024-{n:05d}", "critical", "пакет-☃-" * 10) for n in range(500)]
    context = Context(run_report(scanned("cr.yandex/crptest/app:x", many)))
    for limit in (3_000, 10_000):
        text = comment_text(context, limit=limit)
        assert len(text.encode("utf-8")) <= limit
        assert re.search(r"^\.\.\. and \d+ more findings", text, re.M)
        _table_rows_are_whole(text)


def test_comment_escapes_hostile_text():
    evil = judged("CVE-2024-0001", "critical", "x](https://evil.example)<img src=x>|cell`code", link="javascript:x")
    text = render("comment", run_report(scanned("cr.yandex/crptest/app:x", [evil]), warnings=("<b>w</b>|",)))
    assert "<img" not in text and "<b>" not in text and "javascript:" not in text
    assert not re.search(r"(?<!\\)\]\(https://evil", text)
    _table_rows_are_whole(text)


# -- GitLab container scanning: language packages -----------------------------------------------------


def _language_report():
    findings = [
        judged("CVE-2024-0001", "high", "openssl", type="debian"),
        judged("CVE-2024-0002", "high", "libc6", type="debian"),
        judged("GHSA-xxxx-yyyy-zzzz", "critical", "com.fasterxml.jackson.core:jackson-databind", type="jar"),
        judged("CVE-2024-0003", "medium", "golang.org/x/net", type="gobinary"),
    ]
    findings[2:] = [replace(j, finding=replace(j.finding, origin="lang")) for j in findings[2:]]
    return run_report(scanned("cr.yandex/crptest/app:java", findings))


def test_gitlab_language_packages_carry_the_image_distribution_not_their_type():
    vulnerabilities = json.loads(render("gitlab", _language_report()))["vulnerabilities"]
    systems = {
        v["location"]["dependency"]["package"]["name"]: v["location"]["operating_system"] for v in vulnerabilities
    }
    assert systems == {
        "openssl": "debian",
        "libc6": "debian",
        "com.fasterxml.jackson.core:jackson-databind": "debian",
        "golang.org/x/net": "debian",
    }
    jackson = next(v for v in vulnerabilities if v["identifiers"][0]["value"].startswith("GHSA"))
    assert "(jar package)" in jackson["description"] and jackson["identifiers"][0]["type"] == "ghsa"


def test_gitlab_image_of_language_packages_only_has_an_unknown_system():
    only = [replace(j, finding=replace(j.finding, origin="lang")) for j in [judged("CVE-1", "high", "x", type="jar")]]
    (vulnerability,) = json.loads(render("gitlab", run_report(scanned("cr.yandex/crptest/app:x", only))))[
        "vulnerabilities"
    ]
    assert vulnerability["location"]["operating_system"] == "unknown"


@pytest.mark.skipif(not OFFICIAL.is_dir(), reason=f"official schemas not found at {OFFICIAL}")
def test_gitlab_report_with_language_packages_validates_against_the_official_schema():
    schema = json.loads((OFFICIAL / "gitlab-container-scanning-report-format-15.0.7.json").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        json.loads(render("gitlab", _language_report()))
    )


# -- through the CLI ----------------------------------------------------------------------------------


def test_check_writes_codequality_cosign_vuln_and_comment(start_emulator, tmp_path: Path):
    emu = start_emulator(
        scenario(
            image("crpclean", "clean", "sha256:" + "a" * 64),
            image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS),
        )
    )
    paths = {fmt: tmp_path / f"report.{fmt}" for fmt in ("codequality", "cosign-vuln", "comment")}
    outputs = [arg for fmt, path in paths.items() for arg in ("--output", f"{fmt}={path}")]
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:clean", "cr.yandex/crptest/app:vuln", *outputs))
    assert result.code == 1, result.output
    entries = json.loads(paths["codequality"].read_text())
    validate_codequality(entries)
    assert len(entries) == len(VULNERABLE_FINDINGS)  # the default policy counts every finding
    predicate = json.loads(paths["cosign-vuln"].read_text())
    validate_cosign(predicate)
    assert predicate["scanner"]["result"]["verdict"] == "fail"
    comment = paths["comment"].read_text()
    assert comment.startswith("## crgate: ❌ FAIL (exit 1)") and "violates the policy" in comment
