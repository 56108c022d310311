"""Reports as GitHub code scanning and GitLab's vulnerability report file them: one alert (one
vulnerability) per repository, platform, package and vulnerability, whatever tag, digest reference or
rerun produced the report. The consumers' own keys are computed as their sources do (``consumers``)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers import github_alerts, gitlab_vulnerabilities, upload_sarif_line_hashes
from crgate.model import ImageOutcome, ImageSource
from crgate.report import render
from crgate.report.common import ImageIdentity, alert_key, image_identity, repository_of
from crgate.report.sarif import SECURITY_SEVERITY
from reportdata import judged, run_report, scanned
from test_ci_reports import needs_schemas, validate_gitlab, validate_sarif

REPOSITORY = "cr.yandex/crp1/app"
DOCKERFILE = {"Dockerfile": "FROM debian:12\nRUN apt-get update\n"}
PLATFORMS = ("linux/amd64", "linux/arm64/v8")


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


INDEX = _digest("index")
CHILD = {platform: _digest(platform) for platform in PLATFORMS}
SINGLE = _digest("single")


def _findings():
    return [
        judged("CVE-2023-38545", "critical", "curl", fixed_by="7.88.1-10+deb12u4"),
        judged("CVE-2023-38545", "critical", "libcurl4", fixed_by="7.88.1-10+deb12u4"),
        judged("CVE-2024-0006", "undefined", "perl"),
    ]


def _row(reference: str, platform: str | None, digest: str, image_id: str) -> ImageOutcome:
    label = f"{reference} [{platform}]" if platform else reference
    outcome = scanned(label, _findings(), image_id=image_id)
    source = ImageSource(
        reference=reference,
        digest=digest,
        pinned=f"{REPOSITORY}@{INDEX if platform else digest}",
        platform=platform,
        index_digest=INDEX if platform else None,
    )
    return replace(outcome, source=source)


def index_run(reference: str):
    """A run that gates the multi-platform index ``reference`` names: one row per platform."""
    return run_report(*(_row(reference, p, CHILD[p], f"crp{n}") for n, p in enumerate(PLATFORMS)))


def _sarif(report) -> dict:
    return json.loads(render("sarif", report))


def _gitlab(report) -> dict:
    return json.loads(render("gitlab", report))


# Every way the same images can be named: tags (a semver one, which GitLab keeps in its key by
# default), the index by digest, a rerun.
REFERENCES = (f"{REPOSITORY}:multi", f"{REPOSITORY}:1.4.2", f"{REPOSITORY}:v2", f"{REPOSITORY}@{INDEX}")


# -- the consumers' rules, checked against their own test vectors ----------------------------------


def test_the_upload_sarif_hash_matches_codeql_actions_own_vectors():
    assert upload_sarif_line_hashes("") == {1: "c129715d7a2bc9a3:1"}
    assert upload_sarif_line_hashes(" a\nb\n  \t\tc\n d") == {
        1: "271789c17abda88f:1",
        2: "54703d4cd895b18:1",
        3: "180aee12dab6264:1",
        4: "a23a3dc5e078b07b:1",
    }
    repeated = upload_sarif_line_hashes("Lorem ipsum dolor sit amet.\n" * 10)
    assert repeated[2] == "a7f2ff13bc495cf2:2" and repeated[7] == "a7f2ff1481e87703:1"


# -- SARIF ------------------------------------------------------------------------------------------


def test_without_crgates_line_hash_upload_sarif_would_merge_packages_and_platforms():
    doc = _sarif(index_run(REFERENCES[0]))
    for result in doc["runs"][0]["results"]:
        del result["partialFingerprints"]["primaryLocationLineHash"]
    # Every result points at Dockerfile line 1: one alert per CVE, curl and libcurl4 and both platforms in it.
    assert len(github_alerts(doc, DOCKERFILE)) == 2


def test_sarif_gives_one_alert_per_repository_platform_package_and_vulnerability():
    alerts = github_alerts(_sarif(index_run(REFERENCES[0])), DOCKERFILE)
    assert len(alerts) == len(PLATFORMS) * len(_findings()) == 6
    for results in alerts.values():
        assert len(results) == 1
    seen = {(r["properties"]["image"], r["properties"]["package"], r["ruleId"]) for rs in alerts.values() for r in rs}
    assert len(seen) == 6


@pytest.mark.parametrize("reference", REFERENCES[1:])
def test_sarif_alerts_are_the_same_for_a_retag_a_digest_reference_and_a_rerun(reference):
    first = set(github_alerts(_sarif(index_run(REFERENCES[0])), DOCKERFILE))
    assert set(github_alerts(_sarif(index_run(reference)), DOCKERFILE)) == first
    assert set(github_alerts(_sarif(index_run(REFERENCES[0])), DOCKERFILE)) == first  # a rerun


def test_sarif_keeps_a_single_image_apart_from_the_platforms_of_an_index():
    single = run_report(_row(f"{REPOSITORY}:single", None, SINGLE, "crpsingle"))
    alerts = set(github_alerts(_sarif(index_run(REFERENCES[0])), DOCKERFILE))
    assert not alerts & set(github_alerts(_sarif(single), DOCKERFILE))
    # ... and the single image keeps its alerts across references too.
    by_digest = run_report(_row(f"{REPOSITORY}@{SINGLE}", None, SINGLE, "crpsingle"))
    assert set(github_alerts(_sarif(single), DOCKERFILE)) == set(github_alerts(_sarif(by_digest), DOCKERFILE))


def test_sarif_line_hash_is_also_the_crgate_fingerprint_and_without_the_tag():
    for result in _sarif(index_run(REFERENCES[0]))["runs"][0]["results"]:
        fingerprints = result["partialFingerprints"]
        assert fingerprints["primaryLocationLineHash"] == fingerprints["crgateFinding/v2"]
        assert re.fullmatch(r"[0-9a-f]{32}", fingerprints["primaryLocationLineHash"])


@needs_schemas
def test_sarif_of_platform_rows_validates_against_the_official_schema():
    validate_sarif(_sarif(index_run(REFERENCES[3])))


def test_sarif_gives_undefined_a_medium_security_severity():
    rules = {r["id"]: r for r in _sarif(index_run(REFERENCES[0]))["runs"][0]["tool"]["driver"]["rules"]}
    perl = rules["CVE-2024-0006"]
    assert perl["properties"]["security-severity"] == SECURITY_SEVERITY["undefined"] == "5.5"
    assert 4.0 <= float(perl["properties"]["security-severity"]) < 7.0  # GitHub's "medium", not "none"
    assert perl["defaultConfiguration"]["level"] == "warning"


# -- GitLab -----------------------------------------------------------------------------------------


def _pipelines(doc: dict):
    """The vulnerabilities of ``doc`` on the default branch and on a merge-request branch, before and
    after the project has vulnerabilities (GitLab's default_branch_image check looks them up)."""
    images = [v["location"]["image"] for v in doc["vulnerabilities"]]
    return [
        gitlab_vulnerabilities(doc, default_branch=True),
        gitlab_vulnerabilities(doc, default_branch=False),
        gitlab_vulnerabilities(doc, default_branch=False, known_images=lambda: images),
    ]


def test_gitlab_gives_one_vulnerability_per_image_platform_package_and_vulnerability():
    for vulnerabilities in _pipelines(_gitlab(index_run(REFERENCES[0]))):
        assert len(vulnerabilities) == len(PLATFORMS) * len(_findings()) == 6
        assert all(len(found) == 1 for found in vulnerabilities.values())


@pytest.mark.parametrize("reference", REFERENCES[1:])
def test_gitlab_vulnerabilities_are_the_same_across_tags_digests_and_pipelines(reference):
    (first, *others) = _pipelines(_gitlab(index_run(REFERENCES[0])))
    for vulnerabilities in (*others, *_pipelines(_gitlab(index_run(reference)))):
        assert set(vulnerabilities) == set(first)


def test_gitlab_image_is_a_pullable_reference_pinned_to_the_platform_image():
    for vulnerability in _gitlab(index_run(REFERENCES[0]))["vulnerabilities"]:
        location = vulnerability["location"]
        platform = location["dependency"]["package"]["name"].rsplit(" [", 1)[1].rstrip("]")
        assert location["image"] == f"{REPOSITORY}@{CHILD[platform]}"
        assert "default_branch_image" not in location  # tagless, GitLab's key would lose the repository
        assert location["operating_system"] == "debian"


def test_gitlab_image_without_a_registry_read_is_the_reference_or_the_image_id():
    by_reference = scanned(f"{REPOSITORY}:1.0", _findings())
    by_id = scanned("crpimageid", _findings(), image_id="crpimageid")
    locations = [v["location"] for v in _gitlab(run_report(by_reference, by_id))["vulnerabilities"]]
    assert {location["image"] for location in locations} == {f"{REPOSITORY}:1.0", "crpimageid:image-id"}
    assert len(gitlab_vulnerabilities(_gitlab(run_report(by_reference, by_id)), default_branch=True)) == 6


def test_gitlab_operating_system_of_language_findings_falls_back_to_the_platform():
    lang = [replace(j, finding=replace(j.finding, origin="lang", type="jar")) for j in _findings()]
    row = _row(REFERENCES[0], "linux/arm64/v8", CHILD["linux/arm64/v8"], "crp1")
    doc = _gitlab(run_report(replace(row, findings=tuple(lang))))
    assert {v["location"]["operating_system"] for v in doc["vulnerabilities"]} == {"linux"}


@needs_schemas
def test_gitlab_report_of_platform_rows_validates_against_the_official_schema():
    validate_gitlab(_gitlab(index_run(REFERENCES[3])))


# -- identity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("cr.yandex/crp1/app:multi [linux/arm64/v8]", "cr.yandex/crp1/app"),
        (f"cr.yandex/crp1/app@{INDEX} [linux/amd64]", "cr.yandex/crp1/app"),
        ("localhost:5000/app:1 [linux/amd64]", "localhost:5000/app"),
    ],
)
def test_repository_of_a_platform_row(ref, repository):
    assert repository_of(ref) == repository


def test_image_identity_of_rows():
    row = _row(REFERENCES[0], "linux/arm64/v8", CHILD["linux/arm64/v8"], "crp1")
    assert image_identity(row) == ImageIdentity(REPOSITORY, "linux/arm64/v8")
    assert image_identity(scanned("crpimageid", [])) == ImageIdentity("crpimageid", "")


_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
_DIGESTS = st.binary(min_size=32, max_size=32).map(lambda raw: "sha256:" + raw.hex())


@settings(max_examples=60, deadline=None)
@given(tag=_TAGS, digest=_DIGESTS)
def test_any_retag_or_digest_reference_keeps_every_alert_and_vulnerability(tag, digest):
    reference = f"{REPOSITORY}@{digest}" if tag == "_" else f"{REPOSITORY}:{tag}"
    expected_sarif = set(github_alerts(_sarif(index_run(REFERENCES[0])), DOCKERFILE))
    assert set(github_alerts(_sarif(index_run(reference)), DOCKERFILE)) == expected_sarif
    expected_gitlab = set(gitlab_vulnerabilities(_gitlab(index_run(REFERENCES[0])), default_branch=True))
    assert set(gitlab_vulnerabilities(_gitlab(index_run(reference)), default_branch=True)) == expected_gitlab


@given(
    st.tuples(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20), st.text(max_size=20)),
    st.tuples(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20), st.text(max_size=20)),
)
def test_alert_keys_differ_when_any_part_differs(a, b):
    key_a = alert_key(ImageIdentity(a[0], a[1]), a[2], a[3])
    key_b = alert_key(ImageIdentity(b[0], b[1]), b[2], b[3])
    assert (key_a == key_b) == (a == b)


# -- Code Quality -----------------------------------------------------------------------------------


def _codequality_fingerprints(report) -> list[str]:
    return [entry["fingerprint"] for entry in json.loads(render("codequality", report))]


@pytest.mark.parametrize("reference", REFERENCES[1:])
def test_codequality_fingerprints_are_per_platform_and_survive_a_retag(reference):
    first = _codequality_fingerprints(index_run(REFERENCES[0]))
    assert len(set(first)) == len(first) == len(PLATFORMS) * len(_findings())
    assert _codequality_fingerprints(index_run(reference)) == first
