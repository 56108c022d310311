"""The provenance every format records, in the shapes the formats need, and the loosenings block.

``document`` is the JSON object (the JSON report's ``provenance``, SARIF's ``run.properties``, the
cosign predicate's ``scanner.result.provenance``); ``properties`` flattens it into name/value pairs
(JUnit properties, GitLab's ``scan.options``); ``facts`` gives human formats labelled lines whose
values are still raw (each format escapes them its own way). ``log_block`` renders the loosenings for
the top of a CI log. Pure: times and the environment are passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from crgate.model import THRESHOLD_KEYS, RunReport
from crgate.provenance import Loosening, Provenance, Setting, default_provenance
from crgate.textsafe import LINE_LIMIT, github_data, github_property, safe

EMULATED = "EMULATED"
EMULATED_NOTE = "EMULATED: the results come from crgate's built-in emulator, not from Yandex Cloud"
SECTION = "crgate_loosened"


def provenance_of(report: RunReport) -> Provenance:
    """The report's provenance, or what its policy alone tells (a report made without one)."""
    return report.provenance or default_provenance(report.policy, report.tool_version)


def is_emulated(report: RunReport) -> bool:
    return provenance_of(report).emulated


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _setting(setting: Setting) -> dict[str, Any]:
    return {"values": list(setting.values), "source": setting.source, "name": setting.name}


def _loosening(loosening: Loosening) -> dict[str, str]:
    return {"kind": loosening.kind, "source": loosening.source, "name": loosening.name, "detail": loosening.detail}


def loosenings_document(loosenings: Iterable[Loosening]) -> list[dict[str, str]]:
    """The loosenings as every JSON report lists them (``crgate audit``'s too)."""
    return [_loosening(loosening) for loosening in loosenings]


def document(report: RunReport) -> dict[str, Any]:
    """The provenance as one JSON object (its schema: ``$defs.provenance`` of ``report.schema.json``)."""
    found = provenance_of(report)
    policy = report.policy
    evaluated = found.evaluated_from
    return {
        "crgate_version": found.crgate_version,
        "policy": {"path": found.policy.path, "sha256": found.policy.sha256, "source": found.policy.source},
        "vex_files": [{"path": file.path, "sha256": file.sha256} for file in found.vex_files],
        "kev_files": [{"path": file.path, "sha256": file.sha256} for file in found.kev_files],
        "limits": {key: policy.thresholds[key] for key in THRESHOLD_KEYS if key in policy.thresholds},
        "fixable_only": sorted(policy.fixable_only) if not policy.only_fixed else list(THRESHOLD_KEYS),
        "loosenings": [_loosening(loosening) for loosening in found.loosenings],
        "api_endpoint": _setting(found.api_endpoint),
        "registry": _setting(found.registry),
        "token_endpoint": _setting(found.token_endpoint),
        "credential": {"kind": found.credential_kind, "source": found.credential_source},
        "emulated": found.emulated,
        "evaluated_from": None if evaluated is None else {"path": evaluated.path, "sha256": evaluated.sha256},
        "started_at": _time(report.started_at),
        "finished_at": _time(report.finished_at),
    }


def _flat(setting: Setting) -> str:
    where = ", ".join(setting.values) or "not used"
    origin = f"{setting.source} {setting.name}" if setting.name else str(setting.source)
    return f"{where} ({origin})"


def properties(report: RunReport) -> list[tuple[str, str | int | bool | None]]:
    """The provenance as ``crgate.provenance.*`` name/value pairs; a loosening per ``...loosening`` pair."""
    found = provenance_of(report)
    doc = document(report)
    pairs: list[tuple[str, str | int | bool | None]] = [
        ("crgate.provenance.crgate_version", found.crgate_version),
        ("crgate.provenance.emulated", found.emulated),
        ("crgate.provenance.policy.path", found.policy.path),
        ("crgate.provenance.policy.sha256", found.policy.sha256),
        ("crgate.provenance.policy.source", found.policy.source),
    ]
    pairs += [(f"crgate.provenance.limit.{key}", limit) for key, limit in doc["limits"].items()]
    pairs += [(f"crgate.provenance.vex_file.{file.sha256}", file.path) for file in found.vex_files]
    pairs += [(f"crgate.provenance.kev_file.{file.sha256}", file.path) for file in found.kev_files]
    pairs += [("crgate.provenance.loosening", loosening.describe()) for loosening in found.loosenings]
    pairs += [
        ("crgate.provenance.api_endpoint", _flat(found.api_endpoint)),
        ("crgate.provenance.registry", _flat(found.registry)),
        ("crgate.provenance.token_endpoint", _flat(found.token_endpoint)),
        ("crgate.provenance.credential_kind", found.credential_kind),
        ("crgate.provenance.started_at", doc["started_at"]),
        ("crgate.provenance.finished_at", doc["finished_at"]),
    ]
    if found.evaluated_from is not None:
        pairs.append(
            ("crgate.provenance.evaluated_from", f"{found.evaluated_from.path} ({found.evaluated_from.sha256})")
        )
    return pairs


def facts(report: RunReport) -> list[tuple[str, str]]:
    """Labelled lines for people (footers): ``(label, raw value)``; the caller escapes the value."""
    found = provenance_of(report)
    policy = found.policy
    digest = policy.sha256 or "none (a policy built in code)"
    rows = [
        ("crgate", found.crgate_version),
        ("emulated", "yes (crgate's built-in emulator, not Yandex Cloud)" if found.emulated else "no"),
        ("policy", f"{policy.path or 'built-in default'} ({policy.source}), sha256 {digest}"),
        ("loosenings", "; ".join(loosening.describe() for loosening in found.loosenings) or "none"),
        ("API", _flat(found.api_endpoint)),
        ("registry", _flat(found.registry)),
        ("token endpoint", _flat(found.token_endpoint)),
        (
            "credentials",
            f"{found.credential_kind}" + (f" ({found.credential_source})" if found.credential_source else ""),
        ),
    ]
    for label, files in (("VEX", found.vex_files), ("KEV", found.kev_files)):
        if files:
            rows.append((label, ", ".join(f"{file.path} (sha256 {file.sha256})" for file in files)))
    if found.evaluated_from is not None:
        rows.append(("re-judged from", f"{found.evaluated_from.path} (sha256 {found.evaluated_from.sha256})"))
    rows.append(("times", f"{_time(report.started_at)} to {_time(report.finished_at)}"))
    return rows


def log_block(loosenings: tuple[Loosening, ...], env: Mapping[str, str], now: float) -> list[str]:
    """The loosenings as the lines to print at the top of the log, before any call; none when there are
    none. GitHub Actions: one ``::warning::`` annotation. GitLab CI: a collapsed section whose header is
    the warning line. Elsewhere: a plain ``Loosened:`` block. Every value is inert (``crgate.textsafe``);
    only the markers around it are crgate's own."""
    if not loosenings:
        return []
    count = len(loosenings)
    what = f"{count} setting{'s make' if count != 1 else ' makes'} the gate weaker than its policy file"
    items = [safe(f"- {loosening.describe()}", LINE_LIMIT) for loosening in loosenings]
    if env.get("GITHUB_ACTIONS") == "true":
        message = github_data("\n".join(items))
        return [
            f"::warning title={github_property('crgate: the gate is loosened')}::{github_data(what + ':')}%0A{message}"
        ]
    if env.get("GITLAB_CI") == "true":
        stamp = int(now)
        yellow, reset = "\x1b[33;1m", "\x1b[0m"
        header = f"{yellow}crgate: WARNING: the gate is loosened: {what}{reset}"
        return [
            f"\x1b[0Ksection_start:{stamp}:{SECTION}[collapsed=true]\r\x1b[0K{header}",
            *items,
            f"\x1b[0Ksection_end:{stamp}:{SECTION}\r\x1b[0K",
        ]
    return [f"crgate: Loosened: {what}:", *(f"  {item}" for item in items)]
