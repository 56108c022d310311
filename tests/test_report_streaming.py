"""Report writing at scale: every format streams to its destination, ``write_all`` shares one preparation,
and the hand-encoded JSON lines are exactly what ``json.dumps`` of the same data would say."""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest

import crgate.report
from crgate.errors import ConfigError
from crgate.model import SEVERITIES, JudgedFinding
from crgate.report import FORMATS, render, write, write_all
from crgate.report.common import Context, clip, finding_order, sorted_findings
from crgate.report.json_report import finding_document, finding_line
from crgate.report.jsonout import Splice
from crgate.report.sarif import MAX_RESULTS
from crgate.textsafe import visible
from reportdata import huge_report, judged, mixed_report, run_report, scanned

JSON_FORMATS = ("json", "sarif", "gitlab", "codequality", "cosign-vuln")


class CountingSink:
    """A text stream that keeps only how much was written (so memory measures the writer alone)."""

    def __init__(self) -> None:
        self.size = 0
        self.writes = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        self.writes += 1
        return len(text)


def hostile_texts(seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    alphabet = 'aZ9 -_.:/"\\\x00\x01\x1b\x7f\u2028\u2029\ufeff\ud7ffé☃𝄞<>&|[]()`*'
    return ["", "plain"] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(200)]


def hostile_findings() -> list[JudgedFinding]:
    texts = hostile_texts()
    found = []
    for number, text in enumerate(texts):
        decision = ("counted", "ignored", "not_fixable", "in_baseline")[number % 4]
        extra = {"rule": text or "rule"} if decision == "ignored" else {}
        found.append(
            judged(
                f"CVE-{number}{text}",
                SEVERITIES[number % len(SEVERITIES)],
                f"pkg{text}",
                decision=decision,
                version=text,
                fixed_by=texts[(number + 1) % len(texts)],
                link=f"https://example.com/{text}",
                type=text,
                **extra,
            )
        )
    return found


def test_splice_writes_nested_arrays_in_place_at_their_depth():
    for indent in (None, 1, 2):
        splice = Splice()
        skeleton = {
            "b": splice.array(json.dumps({"n": n}) for n in range(3)),
            "a": [{"x": splice.array(iter(())), "y": splice.array(['"s"'])}],
        }
        out = io.StringIO()
        splice.write(out, skeleton, indent=indent, ensure_ascii=True)
        assert json.loads(out.getvalue()) == {"b": [{"n": 0}, {"n": 1}, {"n": 2}], "a": [{"x": [], "y": ["s"]}]}
        assert out.getvalue().endswith("\n")


def test_a_json_finding_line_is_its_document_whatever_the_text():
    for item in hostile_findings():
        line = finding_line(item)
        assert "\n" not in line
        assert json.loads(line) == finding_document(item)
        assert line.isascii()  # the JSON report escapes as json.dumps does by default


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_json_formats_stay_valid_and_carry_hostile_text_exactly(fmt):
    findings = hostile_findings()
    doc = json.loads(render(fmt, run_report(scanned("cr.yandex/crptest/app:x", findings))))
    # Shown formats carry the text exactly but visibly (textsafe.visible: controls and bidi escaped).
    packages = {visible(clip(item.finding.package, 200)) for item in findings}
    counted = {visible(clip(item.finding.cve, 200)) for item in findings if item.decision == "counted"}
    if fmt == "json":
        assert doc["images"][0]["findings"] == [finding_document(item) for item in findings]
    elif fmt == "cosign-vuln":
        assert doc["scanner"]["result"]["images"][0]["findings"] == [finding_document(item) for item in findings]
    elif fmt == "sarif":
        assert {r["properties"]["package"] for r in doc["runs"][0]["results"]} == packages
    elif fmt == "gitlab":
        assert {v["location"]["dependency"]["package"]["name"] for v in doc["vulnerabilities"]} == packages
    else:
        assert {entry["check_name"] for entry in doc} == counted


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_writes_what_render_returns_and_ends_in_a_newline(fmt, tmp_path: Path):
    report = mixed_report()
    path = tmp_path / f"report.{fmt}"
    write_all(report, [(fmt, path)])
    stream = io.StringIO()
    write(fmt, report, stream)
    assert path.read_text(encoding="utf-8") == stream.getvalue() == render(fmt, report)
    assert stream.getvalue().endswith("\n")


def test_write_all_writes_streams_and_paths_in_one_call(tmp_path: Path):
    report = mixed_report()
    stream = io.StringIO()
    destinations = [("json", stream), ("sarif", str(tmp_path / "a.sarif")), ("gitlab", tmp_path / "g.json")]
    write_all(report, destinations, location="docker/Dockerfile")
    assert json.loads(stream.getvalue())["verdict"] == "error"
    sarif = json.loads((tmp_path / "a.sarif").read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert uris == {"docker/Dockerfile"}
    assert json.loads((tmp_path / "g.json").read_text())["scan"]["type"] == "container_scanning"


def test_json_and_cosign_vuln_agree_below_the_predicates_cap(tmp_path: Path):
    report = huge_report(300, images=2)
    write_all(report, [("json", tmp_path / "r.json"), ("cosign-vuln", tmp_path / "v.json")])
    result = json.loads((tmp_path / "v.json").read_text())["scanner"]["result"]
    assert [image.pop("findings_omitted") for image in result["images"]] == [0, 0]
    assert result == json.loads((tmp_path / "r.json").read_text())


def test_write_all_names_the_format_and_path_it_cannot_write(tmp_path: Path):
    missing = tmp_path / "no-such-dir" / "report.json"
    with pytest.raises(ConfigError, match=r"could not write the json report to .*no-such-dir/report\.json"):
        write_all(mixed_report(), [("json", missing)])
    with pytest.raises(ConfigError, match="unknown report format 'yaml'"):
        write_all(mixed_report(), [("yaml", io.StringIO())])


def test_every_format_is_deterministic_for_a_large_run():
    report = huge_report(3000, images=3)
    for fmt in FORMATS:
        assert render(fmt, report) == render(fmt, report), fmt


def test_one_context_sorts_each_image_once():
    report = huge_report(1000, images=2)
    context = Context(report)
    first = context.sorted_findings(report.images[0])
    assert context.sorted_findings(report.images[0]) is first
    assert [j.finding.severity for j in first[:2]] == ["critical", "critical"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_streams_instead_of_holding_its_document(fmt):
    """Writing 20,000 findings needs far less memory than the text written (the report itself aside)."""
    report = huge_report(20_000)
    context = Context(report)
    context.grouped(report.images[0])  # sorted and grouped once for all formats of a run; not this format's cost
    sink = CountingSink()
    tracemalloc.start()
    try:
        crgate.report._write(fmt, context, sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12_000_000, f"{fmt}: {peak / 1e6:.1f} MB"
    if sink.size > 4_000_000:  # the big formats: at most a third of what they wrote is ever held
        assert peak < sink.size / 3, f"{fmt}: {peak / 1e6:.1f} MB held for {sink.size / 1e6:.1f} MB written"
        assert sink.writes > 10


def test_sarif_keeps_the_most_severe_results_across_images():
    low = [judged(f"CVE-2024-{n:05d}", "low", f"p{n}") for n in range(MAX_RESULTS)]
    critical = [judged(f"CVE-2025-{n:05d}", "critical", f"q{n}") for n in range(600)]
    report = run_report(
        scanned("cr.yandex/crptest/app:low", low, image_id="crplow"),
        scanned("cr.yandex/crptest/app:crit", critical, image_id="crpcrit"),
    )
    run = json.loads(render("sarif", report))["runs"][0]
    images = [r["properties"]["image"] for r in run["results"]]
    assert len(images) == MAX_RESULTS
    assert images.count("cr.yandex/crptest/app:crit") == 600  # every critical of the second image is kept
    assert images.index("cr.yandex/crptest/app:crit") == MAX_RESULTS - 600  # results stay grouped by image
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert any("600 less severe results were left out" in note for note in notes)


def test_a_retagged_image_keeps_its_fingerprints_in_sarif_and_codequality():
    report = mixed_report()
    retagged = replace(report, images=tuple(replace(o, ref=o.ref.replace(":vuln", ":v2")) for o in report.images))
    for fmt, pick in (
        ("sarif", lambda doc: [r["partialFingerprints"] for r in doc["runs"][0]["results"]]),
        ("codequality", lambda doc: [entry["fingerprint"] for entry in doc]),
    ):
        assert pick(json.loads(render(fmt, report))) == pick(json.loads(render(fmt, retagged)))


def test_splice_makes_every_item_inert_whatever_its_batch():
    hostile = ['{"a": "##[command]x"}', '{"b": "SeCtIoN_start:1"}', '{"c": "a\u202eb"}', '{"d": "fine"}']
    clean = [f'{{"n": {n}}}' for n in range(1500)]
    for items in (hostile, clean[:700] + hostile + clean[700:]):
        splice = Splice()
        out = io.StringIO()
        splice.write(out, {"items": splice.array(items)}, indent=None, ensure_ascii=False)
        text = out.getvalue()
        assert "##[" not in text and "section_" not in text.lower() and "\u202e" not in text
        assert json.loads(text)["items"] == [json.loads(item) for item in items]


def test_the_two_pass_sort_is_the_order_of_finding_order_ties_included():
    rng = random.Random(7)
    findings = [
        judged(
            f"CVE-{rng.randrange(5)}", rng.choice(SEVERITIES), f"p{rng.randrange(3)}", fixed_by=rng.choice(["", "2"])
        )
        for _ in range(2000)
    ]
    assert sorted_findings(findings) == sorted(findings, key=finding_order)
    assert [id(j) for j in sorted_findings(findings)] == [id(j) for j in sorted(findings, key=finding_order)]
