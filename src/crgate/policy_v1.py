"""Format version 1 of the policy file: its tables of known keys and a parser for each key.

Adding a key to the format is a table change here: a new entry in ``_TOP_LEVEL_KEYS`` (or one of the
nested tables: ``_THRESHOLD_KEYS``, ``_LIMIT_KEYS``, ``_IGNORE_RULE_KEYS``, ``_BASELINE_KEYS``,
``_REUSE_KEYS``, ``_KEV_KEYS``, ``_IMAGE_RULE_KEYS``) with a parser, plus the field on
``crgate.model.Policy``. Reading the YAML and the typed value helpers the parsers use are
``crgate.yamlstrict`` and ``crgate.yamlwalk``; files, discovery and the summary are ``crgate.policy``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crgate.durations import UNITS
from crgate.errors import ImageRefError
from crgate.images import parse_image_ref
from crgate.model import THRESHOLD_KEYS, BaselineSpec, IgnoreRule, KevPolicy, Policy, VexDocument
from crgate.policy_images import RuleSpec, build_rules, parse_images, parse_match
from crgate.policy_inputs import PolicyFiles, load_files, parse_catalog, parse_kev, parse_vex
from crgate.yamlstrict import STR_TAG, is_null, kind_of, line_of
from crgate.yamlwalk import PLAIN_DECIMAL, Key, Parser, Walker, describe

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
DEFAULT_UNSCANNABLE = "warn"

_THRESHOLDS_EXAMPLE = "'thresholds: {critical: 0, high: 0}'"
_LIMIT_FORM_EXAMPLE = "{max: 0, fixable_only: true}"
_IGNORE_EXAMPLE = "'- {id: CVE-2023-4863, reason: \"not reachable in this service\"}'"
_BASELINE_EXAMPLE = "'baseline: {image: cr.yandex/<registry-id>/<repository>:<tag>}'"
_CVE_ID = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}", re.IGNORECASE)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION = re.compile(r"(0|[1-9][0-9]*)([smhd])")
_DURATION_EXAMPLES = "90s, 15m, 24h or 7d"
REUSE_MAX_AGE_CAP = dt.timedelta(days=30)
"""The oldest scan result ``reuse.max_age`` may accept. A reused result misses every vulnerability
published after it was made (scanner databases change daily); a month bounds how stale a verdict can
be, and still lets results of scheduled rescans and scan-on-push be reused (README, "Reuse and joining")."""
# Names users reach for that difflib cannot guess; used for the "did you mean" hint (only when the
# target is a valid key where the name was written).
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "other": "undefined",
        "unknown": "undefined",
        "all": "total",
        "sum": "total",
        "limit": "max",
        "count": "max",
        "fixable": "fixable_only",
        "fixable_only": "only_fixed",
        "cve": "id",
        "vulnerability": "id",
        "comment": "reason",
        "justification": "reason",
        "note": "reason",
        "why": "reason",
        "pkg": "package",
        "until": "expires",
        "expiry": "expires",
        "expiration": "expires",
        "allowlist": "ignore",
        "whitelist": "ignore",
        "exceptions": "ignore",
        "suppress": "ignore",
        "suppressions": "ignore",
        "ttl": "max_age",
        "on_missing": "missing",
        "openvex": "vex",
        "vex_files": "vex",
        "known_exploited": "kev",
        "cisa_kev": "kev",
    }
)


def build_policy(walker: Walker, root: Node | None, source: str, files: PolicyFiles | None = None) -> Policy:
    """Validate a composed (and checked) policy document and build the ``Policy``; ``files`` reads the VEX
    documents and KEV catalog it names (a policy that names some needs it)."""
    if root is None or is_null(root):
        raise walker.error(
            f"the policy file is empty (or only comments); write at least 'version: 1' and {_THRESHOLDS_EXAMPLE}"
        )
    if not isinstance(root, MappingNode):
        raise walker.error(
            f"the policy must be a YAML mapping with the keys 'version' and 'thresholds', got {kind_of(root)}",
            line=line_of(root),
        )
    values = walker.mapping(root, "", _TOP_LEVEL_KEYS, first="version")
    thresholds = cast(_Thresholds, values["thresholds"])
    only_fixed = cast(bool, values.get("only_fixed", False))
    if only_fixed and thresholds.counts_all:
        key_path, line = thresholds.counts_all[0]
        severity = key_path.split(".")[1]
        raise walker.error(
            f"'fixable_only: false' cannot override 'only_fixed: true', which counts only fixable "
            f"findings for every limit; to count every {severity} finding, remove 'only_fixed' and set "
            "'fixable_only: true' on the other limits instead",
            line=line,
            key=key_path,
        )
    vex: tuple[VexDocument, ...] = ()
    kev: KevPolicy | None = None
    if "vex" in values or "kev" in values:
        if files is None:
            raise walker.error("this policy names VEX or KEV files, which only a policy read from a file can")
        vex, kev = load_files(values, files)

    def rule_error(message: str, line: int | None, key: str | None) -> Exception:
        return walker.error(message, line=line, key=key)

    specs = cast("tuple[RuleSpec, ...]", values.get("images", ()))
    images = build_rules(specs, files, rule_error, top_only_fixed=only_fixed)
    return Policy(
        version=cast(int, values["version"]),
        thresholds=thresholds.limits,
        source=source,
        fixable_only=thresholds.fixable_only,
        only_fixed=only_fixed,
        ignore=cast("tuple[IgnoreRule, ...]", values.get("ignore", ())),
        baseline=cast("BaselineSpec | None", values.get("baseline")),
        reuse_max_age=cast("dt.timedelta | None", values.get("reuse")),
        fail_on_stale_ignores=cast(bool, values.get("fail_on_stale_ignores", False)),
        unscannable=cast(str, values.get("unscannable", DEFAULT_UNSCANNABLE)),
        vex=vex,
        kev=kev,
        images=images,
    )


def _parse_version(walker: Walker, key_path: str, line: int, node: Node) -> int:
    """``version``: must be a supported format version (only 1 today)."""
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    version = walker.whole_number(node, key_path, line, "'version'", "write 'version: 1'", example=1)
    if version not in SUPPORTED_VERSIONS:
        raise walker.error(
            f"unsupported policy version {version}; this crgate reads version {supported}: write "
            "'version: 1', or upgrade crgate for a newer format",
            line=line,
            key=key_path,
        )
    return version


@dataclass(frozen=True)
class _Limit:
    """One parsed threshold: ``high: 0`` or ``high: {max: 0, fixable_only: true}``."""

    max: int
    fixable_only: bool = False
    counts_all_line: int | None = None
    """Line of an explicit ``fixable_only: false`` (which ``only_fixed: true`` would contradict)."""


@dataclass(frozen=True)
class _Thresholds:
    limits: Mapping[str, int]
    fixable_only: frozenset[str]
    counts_all: tuple[tuple[str, int], ...]
    """(key path, line) of every explicit ``fixable_only: false``."""


def _parse_count(walker: Walker, key_path: str, line: int, node: Node) -> int:
    """A maximum count, ``>= 0``."""
    limit = walker.whole_number(
        node,
        key_path,
        line,
        "the limit",
        "write a number (0 allows none), or remove the key for no limit",
    )
    if limit < 0:
        raise walker.error(
            f"the limit must not be negative, got {limit}; write 0 to allow none, or remove the key for no limit",
            line=line,
            key=key_path,
        )
    return limit


def _parse_limit(walker: Walker, key_path: str, line: int, node: Node) -> _Limit:
    """One threshold: a maximum count, or the mapping form ``{max: N, fixable_only: true}``."""
    if isinstance(node, MappingNode):
        values = walker.mapping(node, key_path, _LIMIT_KEYS)
        fixable = values.get("fixable_only")
        counts_all_line = None
        if fixable is False:
            counts_all_line = next(line_of(k) for k, _ in node.value if k.value == "fixable_only")
        return _Limit(cast(int, values["max"]), fixable is True, counts_all_line)
    if isinstance(node, SequenceNode):
        severity = key_path.rsplit(".", 1)[-1]
        raise walker.error(
            f"the limit must be a whole number or a mapping, got a list; write e.g. '{severity}: 0' or "
            f"'{severity}: {_LIMIT_FORM_EXAMPLE}'",
            line=line,
            key=key_path,
        )
    return _Limit(_parse_count(walker, key_path, line, node))


def _parse_fixable_only(walker: Walker, key_path: str, line: int, node: Node) -> bool:
    return walker.boolean(
        node,
        key_path,
        line,
        "'fixable_only'",
        "write true to count only findings with a known fix, or remove the key to count all",
    )


def _parse_thresholds(walker: Walker, key_path: str, line: int, node: Node) -> _Thresholds:
    """``thresholds``: a non-empty mapping of threshold key -> limit."""
    no_limits = f"without limits every image would pass; set at least one, e.g. {_THRESHOLDS_EXAMPLE}"
    if is_null(node):
        raise walker.error(f"'thresholds' is empty; {no_limits}", line=line, key=key_path)
    if not isinstance(node, MappingNode):
        raise walker.error(
            f"'thresholds' must be a mapping of severity to maximum count, e.g. {_THRESHOLDS_EXAMPLE}, "
            f"got {kind_of(node)}",
            line=line,
            key=key_path,
        )
    if not node.value:
        raise walker.error(f"'thresholds' sets no limits; {no_limits}", line=line, key=key_path)
    values = walker.mapping(node, key_path, _THRESHOLD_KEYS)
    limits = {key: cast(_Limit, values[key]) for key in THRESHOLD_KEYS if key in values}
    return _Thresholds(
        limits=MappingProxyType({key: limit.max for key, limit in limits.items()}),
        fixable_only=frozenset(key for key, limit in limits.items() if limit.fixable_only),
        counts_all=tuple(
            (f"{key_path}.{key}.fixable_only", limit.counts_all_line)
            for key, limit in limits.items()
            if limit.counts_all_line is not None
        ),
    )


def _flag(what: str) -> Parser:
    """A parser for a top-level boolean that defaults to false."""

    def parse(walker: Walker, key_path: str, line: int, node: Node) -> bool:
        return walker.boolean(node, key_path, line, f"'{key_path}'", f"write true or false ({what}), or remove the key")

    return parse


def _choice(*choices: str) -> Parser:
    """A parser for a key whose value is one of ``choices`` (the first is the default)."""

    def parse(walker: Walker, key_path: str, line: int, node: Node) -> str:
        return walker.choice(node, key_path, line, f"'{key_path.rsplit('.', 1)[-1]}'", choices)

    return parse


# -- ignore


def _parse_ignore(walker: Walker, key_path: str, line: int, node: Node) -> tuple[IgnoreRule, ...]:
    """``ignore``: a list of rules; no two rules may have the same id, package and images."""
    if is_null(node):
        raise walker.error(
            f"'ignore' has no value; list rules under it, e.g. {_IGNORE_EXAMPLE}, write 'ignore: []' "
            "for none, or remove the key",
            line=line,
            key=key_path,
        )
    if not isinstance(node, SequenceNode):
        raise walker.error(
            f"'ignore' must be a list of rules, each with an 'id' and a 'reason', got {kind_of(node)}; write "
            f"each rule as a list item starting with '-', e.g. {_IGNORE_EXAMPLE}",
            line=line,
            key=key_path,
        )
    rules: list[IgnoreRule] = []
    first_lines: dict[tuple[str, str | None, frozenset[str]], int] = {}
    for index, item in enumerate(node.value):
        item_path = f"{key_path}[{index}]"
        item_line = line_of(item)
        if not isinstance(item, MappingNode):
            if isinstance(item, ScalarNode) and not is_null(item):
                fix = f"write '- id: {item.value}' and give it a 'reason: ...' on the next line"
            elif is_null(item):
                fix = f"write the rule after the '-', e.g. {_IGNORE_EXAMPLE}, or remove the empty item"
            else:
                fix = f"write e.g. {_IGNORE_EXAMPLE}"
            what = "nothing" if is_null(item) else kind_of(item)
            raise walker.error(
                f"each ignore rule must be a mapping with an 'id' and a 'reason', got {what}; {fix}",
                line=item_line,
                key=item_path,
            )
        values = walker.mapping(item, item_path, _IGNORE_RULE_KEYS)
        rule = IgnoreRule(
            id=cast(str, values["id"]),
            reason=cast(str, values["reason"]),
            package=cast("str | None", values.get("package")),
            images=cast("tuple[str, ...]", values.get("images", ())),
            expires=cast("dt.date | None", values.get("expires")),
            line=item_line,
        )
        identity = (rule.id.upper(), rule.package, frozenset(rule.images))
        if identity in first_lines:
            raise walker.error(
                f"duplicate ignore rule: the rule on line {first_lines[identity]} already ignores '{rule.id}' "
                "with the same package and images; remove one of them (keep the reason and expiry that "
                "still hold)",
                line=item_line,
                key=item_path,
            )
        first_lines[identity] = item_line
        rules.append(rule)
    return tuple(rules)


def _parse_rule_id(walker: Walker, key_path: str, line: int, node: Node) -> str:
    """A vulnerability id as the scanner reports it: CVE-YYYY-NNNN, GHSA-..., and so on."""
    hint = "write the vulnerability id the scanner reports, e.g. 'id: CVE-2023-4863'"
    value = walker.text(node, key_path, line, "the vulnerability id", hint)
    if any(ch.isspace() for ch in value):
        raise walker.error(
            f"the vulnerability id must not contain spaces, got {value!r}; write one id per rule, "
            "e.g. 'id: CVE-2023-4863'",
            line=line,
            key=key_path,
        )
    if value.upper().startswith("CVE") and not _CVE_ID.fullmatch(value):
        raise walker.error(
            f"{value!r} looks like a CVE id but is not of the form CVE-YYYY-NNNN (a 4-digit year and at "
            "least 4 digits, joined by '-'); write it as the scanner reports it, e.g. 'CVE-2023-4863'",
            line=line,
            key=key_path,
        )
    return value


def _parse_rule_reason(walker: Walker, key_path: str, line: int, node: Node) -> str:
    hint = "say why the finding is acceptable, e.g. 'reason: \"not reachable in this service\"'"
    return walker.text(node, key_path, line, "the reason", hint)


def _parse_rule_package(walker: Walker, key_path: str, line: int, node: Node) -> str:
    hint = "write a package name or glob, e.g. 'package: \"libwebp*\"', or remove the key to match every package"
    return walker.text(node, key_path, line, "the package", hint)


def _parse_rule_images(walker: Walker, key_path: str, line: int, node: Node) -> tuple[str, ...]:
    """A non-empty list of image globs (a single string is rejected: a list says 'any of these')."""
    example = "'images: [\"cr.yandex/*/app*\"]'"
    remove = "or remove the key to apply the rule to every image"
    if isinstance(node, ScalarNode) and not is_null(node):
        value = walker.scalar(node, key_path, line, fix=f"write a list of globs, e.g. {example}")
        fix = f"write it as a list: 'images: [\"{value}\"]'" if isinstance(value, str) else f"e.g. {example}"
        raise walker.error(
            f"'images' must be a list of image globs, got a single value; {fix}", line=line, key=key_path
        )
    if not isinstance(node, SequenceNode):
        what = "no value" if is_null(node) else kind_of(node)
        raise walker.error(
            f"'images' must be a list of image globs, got {what}; write e.g. {example}, {remove}",
            line=line,
            key=key_path,
        )
    if not node.value:
        raise walker.error(f"'images' lists no images; write e.g. {example}, {remove}", line=line, key=key_path)
    globs = []
    for index, item in enumerate(node.value):
        item_path = f"{key_path}[{index}]"
        glob = walker.text(item, item_path, line_of(item), "an image glob", f"write e.g. {example}")
        if any(ch.isspace() for ch in glob):
            raise walker.error(
                f"an image glob must not contain spaces, got {glob!r}; write one glob per list item, e.g. {example}",
                line=line_of(item),
                key=item_path,
            )
        globs.append(glob)
    return tuple(globs)


def _parse_rule_expires(walker: Walker, key_path: str, line: int, node: Node) -> dt.date:
    """A calendar date, ``YYYY-MM-DD`` (a YAML date or a quoted string); the rule applies through it."""
    fix = "write the last day the rule applies as YYYY-MM-DD, e.g. 'expires: 2027-01-31', or remove the key"
    if not isinstance(node, ScalarNode) or is_null(node):
        what = "no value" if is_null(node) else kind_of(node)
        raise walker.error(f"'expires' must be a date, got {what}; {fix}", line=line, key=key_path)
    candidate = node.value  # a YAML date or a string: read the text, not PyYAML's reading of it
    if node.tag not in ("tag:yaml.org,2002:timestamp", STR_TAG):
        value = walker.scalar(node, key_path, line, fix=fix)
        raise walker.error(
            f"'expires' must be a date, got {describe(value, candidate)}; {fix}", line=line, key=key_path
        )
    if not _DATE.fullmatch(candidate):
        if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]", candidate):
            raise walker.error(
                f"'expires' takes a date without a time, got {candidate!r}; write just the date: "
                f"'expires: {candidate[:10]}'",
                line=line,
                key=key_path,
            )
        raise walker.error(f"'expires' must be a date, got {candidate!r}; {fix}", line=line, key=key_path)
    try:
        return dt.date.fromisoformat(candidate)
    except ValueError as exc:
        raise walker.error(f"{candidate!r} is not a real date ({exc}); {fix}", line=line, key=key_path) from None


# -- baseline and reuse


def _section(walker: Walker, key_path: str, line: int, node: Node, example: str) -> MappingNode:
    """The value of a section key (``baseline``, ``reuse``): a mapping."""
    if isinstance(node, MappingNode):
        return node
    what = "no value" if is_null(node) else kind_of(node)
    raise walker.error(
        f"'{key_path}' must be a mapping, got {what}; write e.g. {example}, or remove the key",
        line=line,
        key=key_path,
    )


def _parse_baseline(walker: Walker, key_path: str, line: int, node: Node) -> BaselineSpec:
    example = _BASELINE_EXAMPLE
    if isinstance(node, ScalarNode) and node.tag == STR_TAG and node.value.strip():
        example = f"'baseline: {{image: {node.value.strip()}}}'"
    values = walker.mapping(_section(walker, key_path, line, node, example), key_path, _BASELINE_KEYS)
    return BaselineSpec(image=cast(str, values["image"]), missing=cast(str, values.get("missing", "fail")))


def _parse_baseline_image(walker: Walker, key_path: str, line: int, node: Node) -> str:
    hint = "name the image whose findings are accepted, e.g. 'image: cr.yandex/<registry-id>/app:production'"
    value = walker.text(node, key_path, line, "the baseline image", hint)
    try:
        parse_image_ref(value)
    except ImageRefError as exc:
        raise walker.error(str(exc), line=line, key=key_path) from None
    return value


def _parse_reuse(walker: Walker, key_path: str, line: int, node: Node) -> dt.timedelta | None:
    values = walker.mapping(_section(walker, key_path, line, node, "'reuse: {max_age: 24h}'"), key_path, _REUSE_KEYS)
    return cast("dt.timedelta | None", values["max_age"])


def _parse_duration(walker: Walker, key_path: str, line: int, node: Node) -> dt.timedelta | None:
    """A whole number and a unit (``90s``, ``15m``, ``24h``, ``7d``), or ``0``: always scan (None)."""
    must = "the maximum age must be a whole number followed by s, m, h or d"
    fix = f"write e.g. {_DURATION_EXAMPLES}, or 0 to always scan"
    if not isinstance(node, ScalarNode) or is_null(node):
        what = "no value" if is_null(node) else kind_of(node)
        raise walker.error(f"{must}, got {what}; {fix}", line=line, key=key_path)
    value = walker.scalar(node, key_path, line, fix=fix)
    text = node.value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, str))
        or (isinstance(value, int) and not PLAIN_DECIMAL.fullmatch(text))
    ):
        raise walker.error(f"{must}, got {describe(value, text)}; {fix}", line=line, key=key_path)
    if isinstance(value, int):
        if value == 0:
            return None
        if value < 0:
            raise walker.error(f"{must}, got {text}: an age cannot be negative; {fix}", line=line, key=key_path)
        raise walker.error(
            f"{must}: {text} has no unit; write {value}s, {value}m, {value}h or {value}d",
            line=line,
            key=key_path,
        )
    if value == "0":
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        raise walker.error(f"{must}, got {value!r}{_duration_problem(value)}; {fix}", line=line, key=key_path)
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        return None
    cap = f"crgate accepts at most 30d ({REUSE_MAX_AGE_CAP.days * 24}h): a result that old already misses a month "
    cap += "of newly published vulnerabilities; write e.g. 24h or 7d, or 0 to always scan"
    try:
        age = dt.timedelta(**{UNITS[unit]: amount})
    except OverflowError:
        raise walker.error(f"the maximum age {value} is too large; {cap}", line=line, key=key_path) from None
    if age > REUSE_MAX_AGE_CAP:
        raise walker.error(f"the maximum age {value} is too long; {cap}", line=line, key=key_path)
    return age


def _duration_problem(text: str) -> str:
    """What is wrong with a duration that does not match ``_DURATION``, if it can be told."""
    shape = re.fullmatch(r"\s*([-+]?)\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", text)
    if shape is None:
        return ""
    sign, number, unit = shape.groups()
    if sign == "-":
        return ": an age cannot be negative"
    if "." in number:
        return ": use a whole number of a smaller unit (90m, not 1.5h)"
    if unit and unit not in UNITS:
        return f": unknown unit '{unit}'"
    return ""


# -- the tables

# Top-level keys of format version 1, in the order they are documented. Add new keys here.
_TOP_LEVEL_KEYS: dict[str, Key] = {
    "version": Key(_parse_version, required=True, missing_hint="add 'version: 1' as the first line"),
    "thresholds": Key(
        _parse_thresholds,
        required=True,
        missing_hint=f"without limits every image would pass; add e.g. {_THRESHOLDS_EXAMPLE}",
    ),
    "only_fixed": Key(_flag("true counts only findings with a known fix, for every limit")),
    "ignore": Key(_parse_ignore),
    "baseline": Key(_parse_baseline),
    "reuse": Key(_parse_reuse),
    "fail_on_stale_ignores": Key(
        _flag("true fails the run when an ignore rule in force matched no finding of any image")
    ),
    "unscannable": Key(_choice("warn", "fail", "skip")),
    "vex": Key(parse_vex),
    "kev": Key(lambda walker, key_path, line, node: parse_kev(walker, key_path, line, node, _KEV_KEYS)),  # noqa: E731
    "images": Key(lambda walker, key_path, line, node: parse_images(walker, key_path, line, node, _IMAGE_RULE_KEYS)),  # noqa: E731
}
_THRESHOLD_KEYS: dict[str, Key] = {key: Key(_parse_limit) for key in THRESHOLD_KEYS}
# The mapping form of one threshold: ``high: {max: 0, fixable_only: true}``.
_LIMIT_KEYS: dict[str, Key] = {
    "max": Key(
        _parse_count,
        required=True,
        missing_hint=f"write the maximum count, e.g. {_LIMIT_FORM_EXAMPLE}",
    ),
    "fixable_only": Key(_parse_fixable_only),
}
_IGNORE_RULE_KEYS: dict[str, Key] = {
    "id": Key(
        _parse_rule_id,
        required=True,
        missing_hint="write the vulnerability id the scanner reports, e.g. 'id: CVE-2023-4863'",
    ),
    "package": Key(_parse_rule_package),
    "images": Key(_parse_rule_images),
    "reason": Key(
        _parse_rule_reason,
        required=True,
        missing_hint="every ignore rule needs one: say why the finding is acceptable, e.g. "
        "'reason: \"not reachable in this service\"'",
    ),
    "expires": Key(_parse_rule_expires),
}
_BASELINE_KEYS: dict[str, Key] = {
    "image": Key(
        _parse_baseline_image,
        required=True,
        missing_hint="name the image whose findings are accepted, e.g. 'image: cr.yandex/<registry-id>/app:production'",
    ),
    "missing": Key(_choice("fail", "pass")),
}
_REUSE_KEYS: dict[str, Key] = {
    "max_age": Key(
        _parse_duration,
        required=True,
        missing_hint="write e.g. 'max_age: 24h', or remove 'reuse' to always scan",
    ),
}

_KEV_KEYS: dict[str, Key] = {
    "catalog": Key(
        parse_catalog,
        required=True,
        missing_hint="name the catalog in CISA's KEV JSON format, e.g. "
        "'catalog: kev/known_exploited_vulnerabilities.json'",
    ),
    "max": Key(_parse_count),
    "max_age": Key(_parse_duration),
}

# One rule of ``images:`` (crgate.policy_images): the keys it may set, each read like the top-level one.
_IMAGE_RULE_KEYS: dict[str, Key] = {
    "match": Key(
        parse_match, required=True, missing_hint="write the images it judges, e.g. 'match: [\"cr.yandex/*/prod/*\"]'"
    ),
    **{key: _TOP_LEVEL_KEYS[key] for key in ("thresholds", "only_fixed", "unscannable", "ignore", "vex")},
}
_IMAGE_RULE_KEYS["thresholds"] = Key(_parse_thresholds)  # optional in a rule: the top-level ones apply

# The names the loader accepts, for tests and tools that must stay in sync (e.g. the JSON Schema).
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(_TOP_LEVEL_KEYS)
LIMIT_KEYS: tuple[str, ...] = tuple(_LIMIT_KEYS)
IGNORE_RULE_KEYS: tuple[str, ...] = tuple(_IGNORE_RULE_KEYS)
BASELINE_KEYS: tuple[str, ...] = tuple(_BASELINE_KEYS)
REUSE_KEYS: tuple[str, ...] = tuple(_REUSE_KEYS)
KEV_KEYS: tuple[str, ...] = tuple(_KEV_KEYS)
IMAGE_RULE_KEYS: tuple[str, ...] = tuple(_IMAGE_RULE_KEYS)
