"""The policy file: reading it, finding it, and summing it up in a line.

Pure: no I/O beyond reading the policy file itself and the VEX documents and KEV catalog it names.
Every problem becomes a ``PolicyError`` that names the file, the 1-based line and the dotted key
path, and says what to write instead.

Three layers, each its own module: ``crgate.yamlstrict`` composes the YAML into nodes (with line
numbers, duplicate keys and structure bombs refused), ``crgate.policy_v1`` holds format version 1's
tables of known keys and their parsers, and this module is the public face the CLI and tests use.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from crgate import inputs
from crgate.durations import format_duration
from crgate.errors import ConfigError, PolicyError
from crgate.kev import load_kev
from crgate.model import THRESHOLD_KEYS, Policy
from crgate.policy_inputs import FilesBeside, PolicyFiles
from crgate.policy_v1 import (
    ALIASES,
    BASELINE_KEYS,
    DEFAULT_UNSCANNABLE,
    IGNORE_RULE_KEYS,
    IMAGE_RULE_KEYS,
    KEV_KEYS,
    LIMIT_KEYS,
    REUSE_KEYS,
    SUPPORTED_VERSIONS,
    TOP_LEVEL_KEYS,
    build_policy,
)
from crgate.vex import load_vex
from crgate.yamlstrict import Rules, read_document
from crgate.yamlwalk import Walker

__all__ = [
    "BASELINE_KEYS",
    "BUILTIN_DEFAULT_SOURCE",
    "BUILTIN_DEFAULT_TEXT",
    "DEFAULT_POLICY",
    "DISCOVERY_FILES",
    "IGNORE_RULE_KEYS",
    "IMAGE_RULE_KEYS",
    "KEV_KEYS",
    "LIMIT_KEYS",
    "POLICY_SHA256_ENV",
    "POLICY_RULES",
    "REUSE_KEYS",
    "SUPPORTED_VERSIONS",
    "TOP_LEVEL_KEYS",
    "check_policy_pins",
    "describe_policy",
    "discover_policy",
    "discover_policy_pinned",
    "format_duration",
    "load_policy",
    "parse_policy",
    "policy_pins",
]

BUILTIN_DEFAULT_SOURCE = "built-in default"
BUILTIN_DEFAULT_TEXT = "version: 1\nthresholds:\n  critical: 0\n  high: 0\n"
"""The built-in default as policy text (the README documents it): its SHA-256 is what
``--policy-sha256`` compares when no policy file is found."""
DEFAULT_POLICY = Policy(
    version=1,
    thresholds=MappingProxyType({"critical": 0, "high": 0}),
    source=BUILTIN_DEFAULT_SOURCE,
    sha256=hashlib.sha256(BUILTIN_DEFAULT_TEXT.encode()).hexdigest(),
)
DISCOVERY_FILES: tuple[str, ...] = (".crgate.yaml", "crgate.yaml")
# A policy is a page of YAML: these bounds are far beyond what a real one needs (50,000 nodes is about
# 4,000 ignore rules) and keep the worst case to a second or two of PyYAML's pure-Python composing.
# Aliases are allowed (``critical: *n``); merge keys are not (``<<`` is reported as an unknown key).
POLICY_RULES = Rules(name="policy", max_depth=32, max_nodes=50_000, max_expanded=200_000)


def parse_policy(text: str, source: str, files: PolicyFiles | None = None) -> Policy:
    """Parse policy text; ``source`` names the file in error messages. ``files`` reads the VEX documents and
    KEV catalog the policy names (default: paths relative to ``source``'s directory)."""

    def error(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ConfigError:
        return PolicyError(message, source=source, line=line, key=key)

    root = read_document(text, POLICY_RULES, error)
    if files is None:
        files = FilesBeside(Path(source).parent, source, load_vex, load_kev)
    return build_policy(Walker(error, ALIASES), root, source, files)


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and parse a policy file; the path, as given, is the source named in messages."""
    source = os.fspath(path)

    def error(message: str, line: int | None = None) -> PolicyError:
        return PolicyError(message, source=source, line=line)

    data = inputs.read_bytes(path, inputs.POLICY, error)
    policy = parse_policy(inputs.decode_utf8(data, error), source)
    return replace(policy, sha256=hashlib.sha256(data).hexdigest())


POLICY_SHA256_ENV = "CRGATE_POLICY_SHA256"
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def policy_pins(flag: str | None, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The policy digests a run must match, each with where it came from: ``--policy-sha256`` and the
    ``CRGATE_POLICY_SHA256`` variable (empty = unset), lowercased. ConfigError (exit 2) for a value that
    is not 64 hex digits (an optional ``sha256:`` prefix is accepted), or when the two disagree."""
    pins: list[tuple[str, str]] = []
    for origin, value in (("--policy-sha256", flag), (POLICY_SHA256_ENV, env.get(POLICY_SHA256_ENV))):
        text = (value or "").strip().lower().removeprefix("sha256:")
        if not text:
            continue
        if not _HEX_DIGEST.fullmatch(text):
            raise ConfigError(
                f"{origin}: expected the policy file's SHA-256 as 64 hex digits (sha256sum FILE prints it), "
                f"got {len(text)} characters"
            )
        pins.append((origin, text))
    if len({digest for _, digest in pins}) > 1:
        (first, a), (second, b) = pins
        raise ConfigError(f"{first} ({a}) and {second} ({b}) disagree: give one digest, the policy's")
    return pins


def check_policy_pins(policy: Policy, pins: Sequence[tuple[str, str]]) -> None:
    """ConfigError (exit 2, before any call) unless the policy in force has every pinned digest, and every VEX
    document a pinned policy names is pinned by it too (else editing the document would loosen the policy
    without changing its digest)."""
    for origin, expected in pins:
        if policy.sha256 != expected:
            actual = policy.sha256 or "none (a policy built in code)"
            raise ConfigError(
                f"the policy in force ({policy.source}) has SHA-256 {actual}, but {origin} requires {expected}: "
                "the policy is not the one its owners pinned; restore it, or have them update the pin"
            )
    if pins:
        for document in policy.all_vex:
            if document.from_policy and not document.pinned:
                raise ConfigError(
                    f"the policy in force ({policy.source}) is pinned, but its VEX document {document.path} is not: "
                    "a pinned policy pins its VEX documents too; write it as "
                    f"'- {{path: {document.path}, sha256: {document.sha256}}}' once you have reviewed it"
                )


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


def discover_policy_pinned(
    explicit: str | os.PathLike[str] | None, pin: str | None, env: Mapping[str, str], cwd: Path | None = None
) -> Policy:
    """``discover_policy``, then the pins of ``--policy-sha256`` (``pin``) and ``CRGATE_POLICY_SHA256``
    checked against it (``policy_pins``, ``check_policy_pins``): the pins are read first, so a malformed
    one is reported even when the policy file is broken too."""
    pins = policy_pins(pin, env)
    policy = discover_policy(explicit, cwd)
    check_policy_pins(policy, pins)
    return policy


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
    if policy.vex:
        statements = sum(len(document.statements) for document in policy.vex)
        count = len(policy.vex)
        parts.append(
            f"{count} VEX document{'s' if count != 1 else ''} ({statements} statement{'s' if statements != 1 else ''})"
        )
    if policy.kev is not None:
        parts.append(
            f"known exploited (KEV) <= {policy.kev.max} ({policy.kev.catalog.path} {policy.kev.catalog.version})"
        )
    if policy.images:
        count = len(policy.images)
        parts.append(f"{count} image rule{'s' if count != 1 else ''} (images:)")
    return "; ".join(parts)
