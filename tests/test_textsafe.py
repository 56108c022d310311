"""The one sanitizer (``crgate.textsafe``): properties for any string, and the attacks it exists for."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crgate.textsafe import DEFAULT_LIMIT, github_data, github_property, safe, safe_lines, safe_text

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# .NET's Char.IsWhiteSpace, which the GitHub runner's TrimStart uses before looking for "::"
DOTNET_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
FRAGMENTS = [
    "\x1b", "\x1b[31m", "\x1b[2J", "\x1b]0;title\x07", "\x1b]8;;http://evil\x1b\\", "\x9b", "\x9d", "\x07", "\x00",
    "\n", "\r", "\r\n", "\t", "\x85", "\u2028", "\u2029", ":", "::", "::warning::", "::stop-commands::tok", "##[",
    "#", "[", "vso[", "VSO[", "##vso[task.setvariable]", "section_", "SECTION_", "section", "_", "start:", "end:",
    "section_start:1700000000:x\r\x1b[0K", " ", "\u3000", "\xa0", "\u2000", *BIDI_CONTROLS, "\u200b", "\u200d",
    "\ufeff", "\U000e0041", "\ud800", "\udfff", "%", "%0A", "\\", "\\x1b", "x", "é", "а", "⚠️", "...",
]  # fmt: skip
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(st.characters(exclude_categories=())), max_size=40).map("".join)
any_text = st.text(st.characters(exclude_categories=())) | hostile
limits = st.integers(min_value=0, max_value=300) | st.just(DEFAULT_LIMIT)


def assert_inert(out: str, limit: int) -> None:
    """What every sanitized value must be: nothing a terminal, a log viewer or a CI runner acts on."""
    for ch in out:
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp"), (ch, category, out)
    assert not any(ch in out for ch in "\x1b\x9b\n\r\x85" + BIDI_CONTROLS)
    assert not out.lstrip(DOTNET_WHITESPACE).startswith(":")  # so never "::" at a line start
    assert "##[" not in out and "##vso[" not in out.lower()
    assert "section_" not in out.lower()  # GitLab acts on section_start:/section_end: anywhere in a line
    assert len(out) <= max(limit, 3)


@settings(deadline=None, max_examples=300)
@given(any_text, limits)
@example("\x1b[2J\x1b]0;pwned\x07\n::warning::forged", DEFAULT_LIMIT)
@example("x" * 5000, 10)
@example("abcdef", 2)
def test_any_string_becomes_one_inert_bounded_value_and_stays_so(text, limit):
    out = safe(text, limit)
    assert_inert(out, limit)
    assert safe(out, limit) == out  # idempotent


@settings(deadline=None)
@given(any_text, any_text, st.integers(min_value=3, max_value=200))
def test_only_the_first_limit_characters_matter(text, more, limit):
    """Bounded work: the result depends on at most limit + 1 characters, however long the input."""
    long = (text + "x" * (limit + 1))[: limit + 1]
    assert safe(long + more, limit) == safe(long, limit)


@settings(deadline=None)
@given(st.text(st.sampled_from("abcxyz0189./-@:_#[ ")))
def test_ordinary_text_is_kept_exactly(text):
    if text.lstrip().startswith(":") or "##[" in text or "section_" in text or len(text) > DEFAULT_LIMIT:
        return
    assert safe(text) == text


@settings(deadline=None)
@given(st.lists(any_text, max_size=8), any_text)
def test_composed_lines_have_exactly_their_own_line_breaks(lines, value):
    composed = [f"{line} {safe(value)}" for line in lines]
    out = safe_lines(composed)
    assert out.count("\n") == max(len(lines) - 1, 0)
    for line in out.split("\n"):
        assert_inert(line, 10_000)
    assert safe_lines(out.split("\n")) == out


@settings(deadline=None)
@given(any_text)
def test_multi_line_text_keeps_its_lines_and_each_is_inert(text):
    out = safe_text(text)
    assert out.count("\n") == text.count("\n")
    for line in out.split("\n"):
        assert_inert(line, 10_000)
    assert safe_text(out) == out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # CSI: ESC rendered, the rest visible and inert
        ("\x9b2J", "\\x9b2J"),  # 8-bit CSI
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC window title
        ("\x1b]8;;http://evil\x1b\\click", "\\x1b]8;;http://evil\\x1b\\click"),  # OSC 8 hyperlink
        ("app:tag\n::warning::forged", "app:tag\\n::warning::forged"),  # cannot start a line
        ("app\r::error::x", "app\\r::error::x"),
        ("::stop-commands::tok", "\\x3a:stop-commands::tok"),  # cannot begin one either
        ("  ::warning::x", "  \\x3a:warning::x"),
        ("\u3000::warning::x", "\u3000\\x3a:warning::x"),
        (":", "\\x3a"),  # nor begin one together with the text printed after it
        ("see ##[warning]forged", "see #\\x23[warning]forged"),  # GitHub's legacy form, anywhere in a line
        ("##vso[task.setvariable variable=x]1", "#\\x23vso[task.setvariable variable=x]1"),
        ("section_start:1700000000:evil\r\x1b[0K", "section\\x5fstart:1700000000:evil\\r\\x1b[0K"),
        ("x SECTION_END:1:evil", "x SECTION\\x5fEND:1:evil"),
        ("admin\u202e\u2066txt.exe\u2069", "admin\\u202e\\u2066txt.exe\\u2069"),  # Trojan source
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),  # invisible tag characters
        ("lone \ud800", "lone \\ud800"),  # would make a UTF-8 write raise
        ("line\u2028sep\x85nel", "line\\u2028sep\\x85nel"),
        ("tab\there", "tab\\there"),
        ("cr.yandex/crp1/app:v1 кириллица ⚠️ é", "cr.yandex/crp1/app:v1 кириллица ⚠️ é"),  # ordinary text stays
        ("C:\\path\\x1b", "C:\\path\\x1b"),  # backslashes stay: rendering is idempotent
    ],
)
def test_attacks_are_rendered_visibly(text, shown):
    assert safe(text) == shown


def test_long_values_are_cut_with_an_ellipsis_and_escapes_are_never_split():
    assert safe("A" * 5000) == "A" * 997 + "..."
    assert safe("abcdefgh", 6) == "abc..."
    assert safe("ab\x1bcdef", 7) == "ab..."  # "\x1b" would not fit whole
    assert safe("abcdef", 0) == safe("abcdef", 2) == "..."  # limits below 3 act as 3
    assert safe("") == ""


def test_github_workflow_command_values_are_encoded_losslessly():
    assert github_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert github_property("crgate: a,b\n") == "crgate%3A a%2Cb%0A"
