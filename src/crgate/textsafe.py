"""The one sanitizer for text crgate prints but did not write: image references, manifest and policy
values, saved reports, and whatever a registry or credential server answers.

On a terminal or in a CI log such text must not be able to
- drive the terminal: C0 and C1 control characters, so no ESC/CSI/OSC sequence (colours, cursor moves,
  screen clears, window titles, hyperlinks that hide text);
- start a log line of its own: newlines, carriage returns, Unicode line and paragraph separators;
- reorder or hide what a reader sees: bidi overrides, embeddings and isolates, zero-width and other
  format characters (Trojan source), lone surrogates (which would also break a UTF-8 write);
- speak to the CI runner: GitHub Actions runs ``::command::`` at the start of a line (after any
  leading whitespace) and the legacy ``##[command]`` anywhere in a line (Azure Pipelines likewise
  ``##vso[``); GitLab's log viewer acts on ``section_start:``/``section_end:`` anywhere in a line;
- flood the log: every value is bounded, and a cut one ends in ``...``.

Neutralized characters are rendered as visible escapes, never deleted: ESC becomes ``\\x1b``, a
newline ``\\n``, U+202E ``\\u202e``, the ``#`` of ``##[`` ``\\x23``, the ``_`` of ``section_``
``\\x5f`` and a value's leading ``:`` ``\\x3a``. A reader sees that something odd was there and what it
was (a ``?`` would hide which character it was and look like a URL's query). Backslashes are kept as
they are, so rendering is idempotent: ``safe(safe(x)) == safe(x)``. This is display text; GitHub
workflow-command *values* are encoded losslessly by ``github_data``/``github_property`` instead.

Text that another program shows to people (GitHub code scanning, GitLab's vulnerability report) goes
through ``visible``: the same escapes for control, format and line-separator characters (tabs and
newlines kept only in text whose lines crgate composed), no length limit and no CI-command rules (the
text is not a log line). crgate's own JSON report keeps the original.

Standard library only and cheap to import: the CLI's start-up path uses it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

DEFAULT_LIMIT = 1000  # one value (a reference, an id, a server message) inside a line
LINE_LIMIT = 10_000  # one whole line the program composed
ELLIPSIS = "..."

# Unicode categories rendered as escapes: controls, format characters (bidi, zero-width, tags),
# surrogates, line/paragraph separators, and code points this Python does not know (fail closed: a
# later Unicode version might make them format characters).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Whitespace kept as it is (category Zs) that the GitHub runner still trims before looking for "::".
_KEPT_BLANKS = " \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPECIAL = re.compile(
    rf"(?P<colon>\A[{_KEPT_BLANKS}]*:)"  # would begin "::cmd::" at a line start (also with the next value)
    r"|(?<=#)#(?=\[|(?i:vso)\[)"  # "##[cmd]" (GitHub, legacy) or "##vso[" anywhere in a line
    r"|(?<=(?i:section))_"  # GitLab "section_start:" / "section_end:" anywhere in a line
    r"|[^\x20-\x7e]"  # everything but printable ASCII: judged by its Unicode category
)


def safe(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` as one value inside a line: printable, inert, at most ``limit`` characters (3 at least).

    The result holds no control, format or line-breaking character, never begins with ``:`` (after
    blanks), holds no ``##[``, ``##vso[`` or ``section_``, and is cut with ``...`` when too long. Total
    (any ``str``), idempotent for a given ``limit``, and it reads at most ``limit + 1`` characters:
    every character renders as at least one, so nothing past them could be kept.
    """
    limit = max(limit, len(ELLIPSIS))
    head = text[: limit + 1]
    pieces: list[tuple[str, bool]] = []  # (rendered text, may be cut inside)
    position = 0
    for match in _SPECIAL.finditer(head):
        if match.start() > position:
            pieces.append((head[position : match.start()], True))
        rendered = _render(match)
        pieces.append((rendered, rendered == match.group()))
        position = match.end()
    if position < len(head):
        pieces.append((head[position:], True))
    if len(text) <= limit and sum(len(piece) for piece, _ in pieces) <= limit:
        return "".join(piece for piece, _ in pieces)
    return _cut(pieces, limit - len(ELLIPSIS)) + ELLIPSIS


def safe_lines(lines: Iterable[str], limit: int = LINE_LIMIT) -> str:
    """Lines the program composed, each made ``safe`` and joined by newlines (no trailing one).

    Each item is exactly one line: a newline inside an item is rendered ``\\n``, so no value in it can
    start a line of its own, and each line's own content is as inert as a ``safe`` value.
    """
    return "\n".join(safe(line, limit) for line in lines)


def safe_text(text: str, limit: int = LINE_LIMIT) -> str:
    """Multi-line text whose newlines are real line breaks (a traceback, a Markdown summary): each line
    made ``safe``. Only for text whose line structure crgate chose; one value goes through ``safe``."""
    return safe_lines(text.split("\n"), limit)


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_CONTROL_IN_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")
_NOT_PLAIN_IN_LINES = re.compile(r"[^\x09\x0a\x20-\x7e]")


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` for a field that GitHub, GitLab or Jenkins shows: every control character, every bidi
    control and other format, separator, surrogate or unassigned character rendered as a visible escape
    (``\\x00``, ``\\n``, ``\\u202e``), all else unchanged; ``lines`` keeps tabs and newlines (text whose
    lines crgate composed). Idempotent; no limit."""
    if text.isascii():
        control = _ASCII_CONTROL_IN_LINES if lines else _ASCII_CONTROL
        return control.sub(_render_char, text) if control.search(text) else text
    return (_NOT_PLAIN_IN_LINES if lines else _NOT_PLAIN).sub(_render_char, text)


def _render_char(match: re.Match[str]) -> str:
    found = match.group()
    if unicodedata.category(found) not in _UNSAFE_CATEGORIES:
        return found
    if found in _NAMED:
        return _NAMED[found]
    code = ord(found)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def github_data(text: str) -> str:
    """A GitHub workflow command's message (``::error::MESSAGE``), encoded losslessly: the runner decodes
    ``%25``, ``%0D`` and ``%0A`` back, and no newline can end the command and start another."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(text: str) -> str:
    """A workflow command's property value (``title=VALUE``): ``github_data`` plus ``:`` and ``,``."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def _render(match: re.Match[str]) -> str:
    found = match.group()
    if match.lastgroup == "colon":
        return found[:-1] + "\\x3a"
    if found in ("#", "_"):
        return f"\\x{ord(found):02x}"
    return _render_char(match)


def _cut(pieces: list[tuple[str, bool]], budget: int) -> str:
    """The longest prefix of ``pieces`` within ``budget``; escapes are never split."""
    kept: list[str] = []
    budget = max(budget, 0)
    for piece, cuttable in pieces:
        if len(piece) <= budget:
            kept.append(piece)
            budget -= len(piece)
            continue
        if cuttable:
            kept.append(piece[:budget])
        break
    return "".join(kept)
