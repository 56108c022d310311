"""The policy file: reading it, finding it, and summing it up in a line.

Pure: no I/O beyond reading the policy file itself. Every problem becomes a ``PolicyError`` that
names the file, the 1-based line and the dotted key path, and says what to write instead.

Three layers, each its own module: ``crgate.yamlstrict`` composes the YAML into nodes (with line
numbers, duplicate keys and structure bombs refused), ``crgate.policy_v1`` holds format version 1's
tables of known keys and their parsers, and this module is the public face the CLI and tests use.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

from crgate import inputs
from crgate.durations import format_duration
from crgate.errors import ConfigError, PolicyError
from crgate.model import THRESHOLD_KEYS, Policy
from crgate.policy_v1 import (
    ALIASES,
    BASELINE_KEYS,
    DEFAULT_UNSCANNABLE,
    IGNORE_RULE_KEYS,
    LIMIT_KEYS,
    REUSE_KEYS,
    SUPPORTED_VERSIONS,
    TOP_LEVEL_KEYS,
    build_policy,
)
from crgate.yamlstrict import Rules, read_document
from crgate.yamlwalk import Walker

__all__ = [
    "BASELINE_KEYS",
    "BUILTIN_DEFAULT_SOURCE",
    "DEFAULT_POLICY",
    "DISCOVERY_FILES",
    "IGNORE_RULE_KEYS",
    "LIMIT_KEYS",
    "POLICY_RULES",
    "REUSE_KEYS",
    "SUPPORTED_VERSIONS",
    "TOP_LEVEL_KEYS",
    "describe_policy",
    "discover_policy",
    "format_duration",
    "load_policy",
    "parse_policy",
]

BUILTIN_DEFAULT_SOURCE = "built-in default"
DEFAULT_POLICY = Policy(
    version=1,
    thresholds=MappingProxyType({"critical": 0, "high": 0}),
    source=BUILTIN_DEFAULT_SOURCE,
)
DISCOVERY_FILES: tuple[str, ...] = (".crgate.yaml", "crgate.yaml")
# A policy is a page of YAML: these bounds are far beyond what a real one needs (50,000 nodes is about
# 4,000 ignore rules) and keep the worst case to a second or two of PyYAML's pure-Python composing.
# Aliases are allowed (``critical: *n``); merge keys are not (``<<`` is reported as an unknown key).
POLICY_RULES = Rules(name="policy", max_depth=32, max_nodes=50_000, max_expanded=200_000)


def parse_policy(text: str, source: str) -> Policy:
    """Parse policy text; ``source`` names the file in error messages."""

    def error(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ConfigError:
        return PolicyError(message, source=source, line=line, key=key)

    root = read_document(text, POLICY_RULES, error)
    return build_policy(Walker(error, ALIASES), root, source)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse a policy file; the path, as given, is the source named in messages."""
    source = os.fspath(path)

    def error(message: str, line: int | None = None) -> PolicyError:
        return PolicyError(message, source=source, line=line)

    return parse_policy(inputs.read_text(path, inputs.POLICY, error), source)


def discover_policy(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Policy:
    """The policy to use: ``explicit`` if given (it must exist), else the first of ``DISCOVERY_FILES``
    found in ``cwd`` (default: the current directory), else ``DEFAULT_POLICY``.

    ``explicit`` is opened as given (relative to the process's working directory). A discovery file
    that exists but cannot be read or parsed is an error, never a silent fallback to the default.
    """
    if explicit is not None:
        return load_policy(explicit)
    for name in DISCOVERY_FILES:
        candidate = Path(name) if cwd is None else Path(cwd) / name
        if os.path.lexists(candidate):  # a dangling symlink is an error, not "no policy"
            return load_policy(candidate)
    return DEFAULT_POLICY


def describe_policy(policy: Policy) -> str:
    """A one-line human summary, e.g. ``critical <= 0, high <= 0; medium, ...: no limit``, followed by
    whatever else the policy sets: ``high <= 0 (fixable only)``, ``only fixable findings count``,
    ``2 ignore rules``, ``baseline <image>``, ``reuse scans up to 24h old``, ``unscannable images: fail``.
    """

    def limit(key: str) -> str:
        text = f"{key} <= {policy.thresholds[key]}"
        if key in policy.fixable_only and not policy.only_fixed:
            text += " (fixable only)"
        return text

    limited = [limit(key) for key in THRESHOLD_KEYS if key in policy.thresholds]
    unlimited = [key for key in THRESHOLD_KEYS if key not in policy.thresholds]
    parts = []
    if limited:
        parts.append(", ".join(limited))
    if unlimited:
        parts.append(", ".join(unlimited) + ": no limit")
    if policy.only_fixed:
        parts.append("only fixable findings count")
    if policy.ignore:
        count = len(policy.ignore)
        parts.append(f"{count} ignore rule{'s' if count != 1 else ''}")
    if policy.fail_on_stale_ignores:
        parts.append("stale ignore rules fail")
    if policy.baseline is not None:
        missing = " (passes when the baseline is missing)" if policy.baseline.missing == "pass" else ""
        parts.append(f"baseline {policy.baseline.image}{missing}")
    if policy.reuse_max_age:
        parts.append(f"reuse scans up to {format_duration(policy.reuse_max_age)} old")
    if policy.unscannable != DEFAULT_UNSCANNABLE:
        parts.append(f"unscannable images: {policy.unscannable}")
    return "; ".join(parts)
