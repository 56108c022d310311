"""Text the scanner (or a saved report) sends, as GitHub, GitLab and Jenkins show it: no control
character but line breaks and tabs, no bidi override (each replaced by a visible escape), and every URI
field a valid RFC 3986 URI or left out. crgate's own JSON report stays lossless."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crgate.model import ErrorInfo, ImageOutcome
from crgate.report import render
from crgate.report.common import is_web_link
from crgate.report.cosign_vuln import predicate
from crgate.textsafe import visible
from reportdata import judged, run_report, scanned

# No lone surrogate: crgate's inputs refuse them (protobuf strings are UTF-8; inputs.py for JSON).
HOSTILE = "x\x00\x07\x1b[31m\x1b]8;;https://evil\x07\u202egnp.exe\u2066\u200b\x85\x9b\r\nforged\t"
HOSTILE_LINK = "https://example.com/a?b=1&c=<2>"


def _hostile_report():
    findings = [
        judged(
            f"CVE-2024-{HOSTILE}", "critical", f"curl{HOSTILE}", version=HOSTILE, fixed_by=HOSTILE, link=HOSTILE_LINK
        ),
        judged("CVE-2024-0002", "high", "zlib", decision="ignored", rule=f"rule{HOSTILE}", type=HOSTILE),
        judged("CVE-2024-0003", "undefined", f"perl{HOSTILE}", link=f"https://ok.example/{HOSTILE}"),
    ]
    vulnerable = scanned(f"cr.yandex/crp1/app:{HOSTILE}", findings)
    vulnerable = replace(vulnerable, warnings=(f"warning {HOSTILE}",))
    broken = ImageOutcome(
        ref="cr.yandex/crp1/app:broken",
        error=ErrorInfo(kind="scan", message=f"scanner said {HOSTILE}", exit_code=3),
    )
    return run_report(vulnerable, broken, warnings=(f"run warning {HOSTILE}",))


_ALLOWED_CONTROLS = {"\n", "\t"}


def _bad_characters(text: str) -> list[str]:
    return [
        ch
        for ch in text
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")
    ]


def _strings(value, path=""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path + "{key}", key
            yield from _strings(item, path + "/" + key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


@pytest.mark.parametrize("fmt", ["sarif", "gitlab", "codequality"])
def test_no_field_of_a_shown_format_holds_a_control_or_bidi_character(fmt):
    doc = json.loads(render(fmt, _hostile_report()))
    bad = {path: _bad_characters(text) for path, text in _strings(doc) if _bad_characters(text)}
    assert bad == {}


@pytest.mark.parametrize("fmt", ["junit", "markdown", "comment", "text"])
def test_no_line_of_a_shown_text_format_holds_a_control_or_bidi_character(fmt):
    text = render(fmt, _hostile_report())
    assert _bad_characters(text) == []


def test_hostile_text_is_replaced_visibly_not_dropped():
    doc = json.loads(render("gitlab", _hostile_report()))
    names = [v["location"]["dependency"]["package"]["name"] for v in doc["vulnerabilities"]]
    assert (
        "curlx\\x00\\x07\\x1b[31m\\x1b]8;;https://evil\\x07\\u202egnp.exe\\u2066\\u200b\\x85\\x9b\\r\\nforged\\t"
        in names
    )


def test_the_json_report_stays_lossless():
    doc = json.loads(render("json", _hostile_report()))
    packages = [f["package"] for image in doc["images"] for f in image["findings"] or ()]
    assert f"curl{HOSTILE}" in packages


# -- URIs -------------------------------------------------------------------------------------------

_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")


def _valid_uri(text: str, *, relative: bool = False) -> bool:
    """RFC 3986, checked independently of crgate's check: only its characters, whole percent escapes,
    and a scheme with an authority (or, for ``relative``, a path without a scheme)."""
    if not _URI_CHARACTERS.fullmatch(text) or re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return False
    parts = urlsplit(text)
    if relative:
        return not parts.scheme and not parts.netloc and bool(parts.path)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme == "pkg")


def _uris(doc) -> list[tuple[str, str]]:
    return [
        (path, text)
        for path, text in _strings(doc)
        if re.search(r"/(\$schema|schema|uri|url|helpUri|informationUri)$", path, re.IGNORECASE)
    ]


@pytest.mark.parametrize("fmt", ["sarif", "gitlab", "cosign-vuln"])
def test_every_uri_field_holds_a_valid_uri(fmt):
    doc = json.loads(render(fmt, _hostile_report()))
    uris = _uris(doc)
    assert uris
    for path, text in uris:
        if text == "" and fmt == "cosign-vuln":
            continue  # cosign's invocation.uri: empty outside CI
        assert _valid_uri(text, relative=path.endswith("artifactLocation/uri")), (path, text)
    if fmt != "cosign-vuln":  # whose scanner.result is crgate's JSON report: lossless, link included
        assert HOSTILE_LINK not in json.dumps(doc)


def test_sarif_leaves_out_a_help_uri_that_is_not_a_uri():
    rules = json.loads(render("sarif", _hostile_report()))["runs"][0]["tool"]["driver"]["rules"]
    by_cve = {rule["id"][:13]: rule for rule in rules}
    assert "helpUri" not in by_cve["CVE-2024-x\\x0"] and "helpUri" not in by_cve["CVE-2024-0003"]
    assert by_cve["CVE-2024-0002"]["helpUri"] == "https://nvd.nist.gov/vuln/detail/CVE-2024-0002"


def test_cosign_invocation_uri_from_pipeline_variables_must_be_a_uri():
    report = _hostile_report()
    hostile = predicate(report, {}, {"uri": "https://ci.example/job/<1>", "event_id": "1", "builder.id": "x"})
    assert hostile["invocation"]["uri"] == ""
    good = predicate(report, {}, {"uri": "https://gitlab.example/g/p/-/jobs/42", "event_id": "42"})
    assert good["invocation"]["uri"] == "https://gitlab.example/g/p/-/jobs/42"


@given(st.text(max_size=80))
def test_a_link_crgate_accepts_is_a_valid_uri(text):
    link = "https://host.example/" + text
    if is_web_link(link):
        assert _valid_uri(link)


@given(st.text(max_size=80))
def test_visible_text_has_no_control_character_and_is_idempotent(text):
    shown = visible(text)
    assert not [ch for ch in shown if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp")]
    assert visible(shown) == shown
    lines = visible(text, lines=True)
    assert _bad_characters(lines) == [] and visible(lines, lines=True) == lines
