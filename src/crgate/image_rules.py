"""Which ``images:`` rule judges an image (pure): the first whose glob matches its canonical reference.

A glob is a shell glob (``fnmatch``: ``*``, ``?``, ``[...]``) matched case-sensitively on the whole
canonical reference, ``<host>/<registry-id>/<repository>:<tag>`` (``@sha256:...`` appended when the
reference names a digest; ``:latest`` when it names neither), and ``*`` crosses ``/``:
``cr.yandex/*/prod/*`` matches ``cr.yandex/crp1/prod/api/v2:1.4``. An image known only by its id
(``--image-id``) has no reference and matches no rule: the top-level keys judge it.

``overlap_warnings`` is what ``policy validate`` says about rules a reader may misjudge: a rule whose every
pattern an earlier rule's pattern already covers (it can never judge anything) and two rules whose
patterns can match the same reference (the earlier wins).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from crgate.errors import ImageRefError
from crgate.images import REGISTRY_HOSTS, parse_image_ref
from crgate.model import ImageRule, ImageSource, Policy


def canonical_reference(reference: str) -> str | None:
    """``cr.yandex/crp1/app:latest`` for ``CR.yandex/crp1/app``; None when it is not a registry reference."""
    try:
        ref = parse_image_ref(reference)
    except ImageRefError:
        return None
    text = f"{ref.host}/{ref.registry_id}/{ref.repository}"
    if ref.tag is not None:
        text += f":{ref.tag}"
    if ref.digest is not None:
        text += f"@{ref.digest}"
    return text


def rule_for(rules: Sequence[ImageRule], reference: str | None) -> ImageRule | None:
    """The first rule with a glob matching ``reference`` (canonicalised); None for no reference or no match."""
    if not rules or reference is None:
        return None
    canonical = canonical_reference(reference)
    if canonical is None:
        return None
    return next((rule for rule in rules if any(fnmatchcase(canonical, glob) for glob in rule.match)), None)


def judging(policy: Policy, source: ImageSource | None) -> tuple[Policy, int | None]:
    """The policy that judges the image of ``source`` and the index of its rule (None: the top level)."""
    rule = rule_for(policy.images, source.reference if source is not None else None)
    index = rule.index if rule is not None else None
    return policy.judging(index), index


def unscannable_mode(policy: Policy, image: str) -> str:
    """What the policy says about an image outside Yandex Container Registry (``image (where)``, from a
    manifest): the first rule matching its reference as written that sets ``unscannable``, else the top level.
    Such a reference has no canonical form in the registry, so the globs see it as the manifest wrote it."""
    reference = image.split(" (", 1)[0]
    for rule in policy.images:
        if any(fnmatchcase(reference, glob) for glob in rule.match):
            return rule.unscannable if rule.unscannable is not None else policy.unscannable
    return policy.unscannable


# -- policy validate: overlapping and unreachable patterns --------------------------------------------
# Decided exactly on the globs, as finite automata over the characters a reference can hold (printable
# ASCII): each glob is read as a set of positions (a subset-construction DFA built on the fly), and two
# globs overlap when some string drives both to their end; a rule is unreachable when no string its
# globs match escapes every earlier rule's globs. Each answer comes with an example reference.

_ALPHABET: tuple[str, ...] = tuple(chr(code) for code in range(33, 127))
_STAR = None
_MAX_STATES = 20_000
"""Searches that visit more states give no answer (no warning): globs that complex are beyond a hint."""
Token = frozenset[str] | None


def _tokens(glob: str) -> tuple[Token, ...]:
    """``glob`` as fnmatch reads it: ``*`` (None), or the set of characters one position matches."""
    tokens: list[Token] = []
    i, n = 0, len(glob)
    while i < n:
        ch = glob[i]
        i += 1
        if ch == "*":
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
        elif ch == "?":
            tokens.append(frozenset(_ALPHABET))
        elif ch == "[":
            j = i
            if j < n and glob[j] == "!":
                j += 1
            if j < n and glob[j] == "]":
                j += 1
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                tokens.append(frozenset("["))
            else:
                klass = glob[i - 1 : j + 1]
                tokens.append(frozenset(c for c in _ALPHABET if fnmatchcase(c, klass)))
                i = j + 1
        else:
            tokens.append(frozenset(ch))
    return tuple(tokens)


class _Glob:
    """One glob as an automaton: a state is the set of token positions reached (``len(tokens)``: the end)."""

    def __init__(self, glob: str):
        self.tokens = _tokens(glob)
        self.end = len(self.tokens)
        self.start = self.closure({0})

    def closure(self, positions: set[int]) -> frozenset[int]:
        found = set(positions)
        for position in sorted(positions):
            while position < self.end and self.tokens[position] is _STAR:
                position += 1
                found.add(position)
        return frozenset(found)

    def accepting(self, state: frozenset[int]) -> bool:
        return self.end in state

    def step(self, state: frozenset[int], ch: str) -> frozenset[int]:
        moved = set()
        for position in state:
            if position == self.end:
                continue
            token = self.tokens[position]
            if token is _STAR:
                moved.add(position)
            elif ch in token:
                moved.add(position + 1)
        return self.closure(moved) if moved else frozenset()


_LOWER_DIGIT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = _LOWER_DIGIT | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_HEX = frozenset("0123456789abcdef")
_DIGEST = 20
"""States 20..26 of ``_Shape`` read ``sha256:``, 27..90 the hex digits; 91 accepts."""


_HOST_PREFIXES: tuple[str, ...] = tuple(sorted({host[:n] for host in REGISTRY_HOSTS for n in range(len(host) + 1)}))
_HOST_STATE = 100
"""States 100.. of ``_Shape``: the registry host read so far (``_HOST_PREFIXES``; 100 + 0 is the empty one)."""


class _Shape:
    """The shape of a canonical reference, ``host/registry/repo[/repo...]:tag[@sha256:<64 hex>]`` (or with
    only the digest) on one of Yandex's registry hosts, so that every example reference is one crgate could
    be given."""

    start = frozenset({_HOST_STATE + _HOST_PREFIXES.index("")})

    def accepting(self, state: frozenset[int]) -> bool:
        return bool(state & {9, _DIGEST + 7 + 64})

    def step(self, state: frozenset[int], ch: str) -> frozenset[int]:
        following = {n for n in (_shape_next(current, ch) for current in state) if n is not None}
        return frozenset(following)


def _shape_next(current: int, ch: str) -> int | None:
    """100.. host, 2-5 registry id (a letter and at least 2 more), 6-7 repository parts, 8-9 tag, 20.. digest."""
    if current >= _HOST_STATE:
        read = _HOST_PREFIXES[current - _HOST_STATE]
        if ch == "/":
            return 2 if read in REGISTRY_HOSTS else None
        following = read + ch
        return _HOST_STATE + _HOST_PREFIXES.index(following) if following in _HOST_PREFIXES else None
    if current == 2:
        return 3 if ch in _LOWER_DIGIT and not ch.isdigit() else None
    if current in (3, 4, 5):
        return min(current + 1, 5) if ch in _LOWER_DIGIT else 6 if ch == "/" and current == 5 else None
    if current == 6:
        return 7 if ch in _LOWER_DIGIT else None
    if current == 7:
        if ch in _LOWER_DIGIT:
            return 7
        return 6 if ch in "._-/" else 8 if ch == ":" else _DIGEST if ch == "@" else None
    if current == 8:
        return 9 if ch in _TAG_CHARS else None
    if current == 9:
        return 9 if ch in _TAG_CHARS or ch in ".-" else _DIGEST if ch == "@" else None
    if _DIGEST <= current < _DIGEST + 7:
        return current + 1 if ch == "sha256:"[current - _DIGEST] else None
    if _DIGEST + 7 <= current < _DIGEST + 7 + 64:
        return current + 1 if ch in _HEX else None
    return None


Automaton = _Glob | _Shape


def _search(
    first: Sequence[Automaton], others: Sequence[Automaton], goal: Callable[[tuple[frozenset[int], ...]], bool]
) -> str | None:
    """The shortest string that every glob of ``first`` matches (their states all alive) and whose states
    satisfy ``goal`` (states of ``first`` then ``others``); None when there is none, or the search is too big."""
    globs: list[Automaton] = [*first, *others]
    start = tuple(glob.start for glob in globs)
    parents: dict[tuple[frozenset[int], ...], tuple[tuple[frozenset[int], ...], str] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if goal(state):
            text = []
            while (parent := parents[state]) is not None:
                state, ch = parent
                text.append(ch)
            return "".join(reversed(text))
        for ch in _ALPHABET:
            following = tuple(glob.step(part, ch) for glob, part in zip(globs, state, strict=True))
            if any(not part for part in following[: len(first)]) or following in parents:
                continue
            if len(parents) >= _MAX_STATES:
                return None
            parents[following] = (state, ch)
            queue.append(following)
    return None


def shared_reference(first: str, second: str) -> str | None:
    """A reference both globs match (the shortest), or None when none exists."""
    a, b, shape = _Glob(first), _Glob(second), _Shape()
    return _search(
        [a, b, shape], [], lambda state: a.end in state[0] and b.end in state[1] and shape.accepting(state[2])
    )


def escaping_reference(glob: str, earlier: Sequence[str]) -> str | None:
    """A reference ``glob`` matches and none of ``earlier`` does, or None when ``earlier`` covers ``glob``."""
    target, shape, covers = _Glob(glob), _Shape(), [_Glob(g) for g in earlier]

    def escapes(state: tuple[frozenset[int], ...]) -> bool:
        mine = target.end in state[0] and shape.accepting(state[1])
        return mine and all(g.end not in part for g, part in zip(covers, state[2:], strict=True))

    return _search([target, shape], covers, escapes)


def overlap_warnings(rules: Sequence[ImageRule], source: str) -> list[str]:
    """Warnings naming the rules (and lines) that an earlier rule makes unreachable or shares images with."""
    warnings = []
    for position, later in enumerate(rules):
        where = f"{source}:{later.line}" if later.line else source
        earlier_rules = rules[:position]
        earlier_globs = [glob for rule in earlier_rules for glob in rule.match]
        if earlier_globs and all(
            len(glob) <= 200 and escaping_reference(glob, earlier_globs) is None for glob in later.match
        ):
            warnings.append(
                f"{where}: image rule {later.label} is unreachable: the rules before it match every image it "
                "matches, and the first match judges; remove it or move it above them"
            )
            continue
        for earlier in earlier_rules:
            shared = next(
                (
                    (g, p, ref)
                    for g in earlier.match
                    for p in later.match
                    if (ref := shared_reference(g, p)) is not None
                ),
                None,
            )
            if shared is not None:
                glob, pattern, reference = shared
                warnings.append(
                    f"{where}: image rules {earlier.label} and {later.label} overlap: '{glob}' and '{pattern}' both "
                    f"match e.g. {reference!r}, which rule {earlier.index} judges as it comes first (* crosses /)"
                )
    return warnings
