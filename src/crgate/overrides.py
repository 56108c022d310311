"""Limits from the command line (``--max SEVERITY=N``, ``--only-fixed``) laid over the policy in force,
and the VEX documents (``--vex FILE``) and KEV catalog (``--kev-catalog FILE``) added to it.

They override the same keys of the policy file (or of the built-in default, so ``--max high=5`` alone
still keeps ``critical: 0``), with the file's strictness: an unknown key gets a "did you mean", a
count must be a plain whole number, and the same key twice is an error, never "the last one wins".
The policy's ``source`` names every override (``./.crgate.yaml + --max high=5``), so every report says
which limits were in force and where they came from.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from crgate.errors import ConfigError
from crgate.model import THRESHOLD_KEYS, KevPolicy, Policy
from crgate.policy_v1 import ALIASES
from crgate.yamlwalk import closest

_PLAIN_COUNT = re.compile(r"0|[1-9][0-9]{0,17}")
_FORM = "SEVERITY=N, e.g. --max high=5"


def parse_limit(text: str) -> tuple[str, int]:
    """``high=5`` -> ``("high", 5)``; ConfigError naming the flag and what to write instead."""
    key, sep, count = text.partition("=")
    key = key.strip().lower()
    if not sep:
        raise ConfigError(f"--max '{text}': expected {_FORM}")
    if key not in THRESHOLD_KEYS:
        close = closest(key, THRESHOLD_KEYS, ALIASES)
        hint = f"; did you mean '{close}'?" if close else ";"
        raise ConfigError(f"--max '{text}': unknown key '{key}'{hint} valid keys are: {', '.join(THRESHOLD_KEYS)}")
    if not _PLAIN_COUNT.fullmatch(count.strip()):
        raise ConfigError(f"--max '{text}': '{count}' is not a count; write a plain whole number >= 0 ({_FORM})")
    return key, int(count)


def apply_overrides(policy: Policy, limits: Sequence[str], *, only_fixed: bool = False) -> Policy:
    """``policy`` with the command line's limits in place of its own for the same keys."""
    if not limits and not only_fixed:
        return policy
    parsed: dict[str, int] = {}
    for text in limits:
        key, count = parse_limit(text)
        if key in parsed:
            raise ConfigError(f"--max {key} is given twice ({key}={parsed[key]} and {key}={count}); give it once")
        parsed[key] = count
    named = [f"--max {key}={count}" for key, count in parsed.items()] + (["--only-fixed"] if only_fixed else [])
    # The command line is the last word for every image: it overrides the images: rules' keys too.
    rules = tuple(
        dataclasses.replace(
            rule,
            thresholds=None if rule.thresholds is None else _merged(rule.thresholds, parsed),
            only_fixed=True if only_fixed else rule.only_fixed,
        )
        for rule in policy.images
    )
    return dataclasses.replace(
        policy,
        thresholds=_merged(policy.thresholds, parsed),
        only_fixed=policy.only_fixed or only_fixed,
        images=rules,
        source=f"{policy.source} + {' '.join(named)}",
    )


def _merged(thresholds: Mapping[str, int], parsed: Mapping[str, int]) -> Mapping[str, int]:
    merged = {**thresholds, **parsed}
    return MappingProxyType({key: merged[key] for key in THRESHOLD_KEYS if key in merged})


def apply_inputs(policy: Policy, vex_files: Sequence[str], kev_catalog: str | None) -> Policy:
    """``policy`` with the ``--vex`` documents after its own ``vex:`` list and the ``--kev-catalog`` in place
    of its ``kev.catalog`` (with ``kev.max`` 0 and the default ``max_age`` when the policy has no ``kev``).
    Paths are as given (relative to the working directory); a bad file is a ConfigError (exit 2) naming it."""
    from crgate.kev import load_kev
    from crgate.policy_inputs import DEFAULT_KEV_MAX_AGE
    from crgate.vex import load_vex

    if not vex_files and kev_catalog is None:
        return policy
    known = {document.path for document in policy.vex}
    documents = list(policy.vex)
    for path in vex_files:
        if path in known:
            raise ConfigError(f"--vex {path}: the document is already in force (given twice, or in the policy's vex)")
        known.add(path)
        documents.append(load_vex(path))
    kev = policy.kev
    if kev_catalog is not None:
        catalog = load_kev(kev_catalog)
        kev = KevPolicy(catalog, 0, DEFAULT_KEV_MAX_AGE) if kev is None else dataclasses.replace(kev, catalog=catalog)
    named = [f"--vex {path}" for path in vex_files] + ([f"--kev-catalog {kev_catalog}"] if kev_catalog else [])
    return dataclasses.replace(policy, vex=tuple(documents), kev=kev, source=f"{policy.source} + {' '.join(named)}")
