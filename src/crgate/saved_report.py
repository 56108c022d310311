"""Read a saved JSON report back (``crgate evaluate``): strict, with errors that name the JSON path.

Only what judging needs is read: each image's result (ids, counts, scan time), its findings, its error,
and the run's baseline pairs. Everything is checked, so a hand-edited or truncated report is an exit-2
error and never a silent pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from crgate import image_rules, inputs
from crgate.errors import ConfigError
from crgate.exitcodes import ExitCode
from crgate.findings import recount, stale_rules, stale_statements
from crgate.judge import decide, judged_outcome
from crgate.model import (
    SEVERITIES,
    BaselineInfo,
    ErrorInfo,
    ErrorKind,
    Finding,
    ImageOutcome,
    ImageSource,
    Origin,
    Policy,
    ScanResult,
    SeverityCounts,
)

# The report nests five levels ($.images[].findings[]); anything far deeper is not a crgate report.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True)
class SavedImage:
    """One image of a saved report: a READY result with its findings, or the error it ended with."""

    ref: str
    image_id: str | None
    scan_result_id: str | None
    result: ScanResult | None
    findings: tuple[Finding, ...] | None
    error: ErrorInfo | None
    origin: Origin
    source: ImageSource | None = None


@dataclass(frozen=True)
class SavedRun:
    """What a saved report says of how its run was reached (its ``provenance``), as far as a re-judgement
    must carry it: a report without one (crgate before provenance, or one edited out) proves nothing, so
    it counts as emulated."""

    recorded: bool
    emulated: bool
    loosenings: tuple[str, ...] = ()
    """Each of the saved run's loosenings, described (``kind (name): detail``) and made inert."""


@dataclass(frozen=True)
class SavedReport:
    source: str
    images: tuple[SavedImage, ...]
    baseline: BaselineInfo | None
    sha256: str = ""
    """The SHA-256 of the report file's bytes as read."""
    run: SavedRun = SavedRun(recorded=False, emulated=True)


class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(
            f"saved report {self.source}: {path}: {message}; pass a report written by "
            "'crgate check --format json' or '--output json=FILE'"
        )

    def get(self, data: dict[str, Any], key: str, path: str, kinds: tuple[type, ...]) -> Any:
        if key not in data:
            raise self.fail(f"{path}.{key}", "is missing")
        value = data[key]
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(f"{path}.{key}", f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.fail(f"{path}.{key}", f"expected {_names(kinds)}, got {type(value).__name__}")
        return value

    def count(self, data: dict[str, Any], key: str, path: str) -> int:
        value = self.get(data, key, path, (int,))
        if value < 0:
            raise self.fail(f"{path}.{key}", f"a count cannot be negative ({value})")
        return int(value)


def _names(kinds: tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", type(None): "null"}
    return " or ".join(names.get(kind, kind.__name__) for kind in kinds)


def load_saved_report(path: str | os.PathLike[str]) -> SavedReport:
    source = os.fspath(path)

    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"saved report {source}{'' if line is None else f' (line {line})'}: {message}")

    data_bytes = inputs.read_bytes(path, inputs.SAVED_REPORT, bad)
    text = inputs.decode_utf8(data_bytes, bad)
    inputs.check_json_nesting(text, MAX_JSON_DEPTH, bad)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:  # ValueError: JSONDecodeError, or an int of 5000 digits
        raise ConfigError(f"saved report {source} is not valid JSON: {error}") from None
    inputs.check_json_text(text, data, bad)
    reader = _Reader(source)
    if not isinstance(data, dict):
        raise reader.fail("$", "the report must be a JSON object")
    if data.get("schema_version") != 1:
        raise reader.fail("$.schema_version", f"expected 1, got {data.get('schema_version')!r}")
    images = tuple(
        _image(reader, item, f"$.images[{index}]")
        for index, item in enumerate(reader.get(data, "images", "$", (list,)))
    )
    run = _run(reader, data.get("provenance"))
    digest = hashlib.sha256(data_bytes).hexdigest()
    return SavedReport(source, images, _baseline(reader, data.get("baseline")), sha256=digest, run=run)


MAX_SAVED_LOOSENINGS = 200


def _run(reader: _Reader, data: Any) -> SavedRun:
    """The saved ``provenance``: ``emulated`` and the loosenings, strictly (the rest is not judged by)."""
    from crgate.textsafe import safe

    if data is None:
        return SavedRun(recorded=False, emulated=True)
    if not isinstance(data, dict):
        raise reader.fail("$.provenance", "expected an object")
    emulated = reader.get(data, "emulated", "$.provenance", (bool,))
    items = reader.get(data, "loosenings", "$.provenance", (list,))
    if len(items) > MAX_SAVED_LOOSENINGS:
        raise reader.fail("$.provenance.loosenings", f"more than {MAX_SAVED_LOOSENINGS} entries")
    described = []
    for index, item in enumerate(items):
        path = f"$.provenance.loosenings[{index}]"
        if not isinstance(item, dict):
            raise reader.fail(path, "expected an object")
        kind, name, detail = (reader.get(item, key, path, (str,)) for key in ("kind", "name", "detail"))
        described.append(safe(f"{kind} ({name}): {detail}", 1000))
    return SavedRun(recorded=True, emulated=bool(emulated), loosenings=tuple(described))


def _baseline(reader: _Reader, data: Any) -> BaselineInfo | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise reader.fail("$.baseline", "expected an object or null")
    pairs = reader.get(data, "pairs", "$.baseline", (list,))
    keys = set()
    for index, pair in enumerate(pairs):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise reader.fail(f"$.baseline.pairs[{index}]", "expected [CVE, package]")
        keys.add((pair[0].upper(), pair[1]))

    def text(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    return BaselineInfo(
        ref=reader.get(data, "ref", "$.baseline", (str,)),
        image_id=text("image_id"),
        scan_result_id=text("scan_result_id"),
        origin=text("origin"),
        pairs=tuple(sorted(keys)),
    )


def _image(reader: _Reader, item: Any, path: str) -> SavedImage:
    if not isinstance(item, dict):
        raise reader.fail(path, "expected an object")
    ref = reader.get(item, "ref", path, (str,))
    image_id = reader.get(item, "image_id", path, (str, type(None)))
    scan_result_id = reader.get(item, "scan_result_id", path, (str, type(None)))
    origin = _ORIGINS.get(str(item.get("origin", "scanned")), Origin.SCANNED)
    error_data = reader.get(item, "error", path, (dict, type(None)))
    if error_data is not None:
        exit_code = reader.count(error_data, "exit_code", f"{path}.error")
        if exit_code not in _ERROR_CODES:
            raise reader.fail(f"{path}.error.exit_code", f"an error has exit code 2, 3, 4 or 130, not {exit_code}")
        error = ErrorInfo(
            kind=_KINDS.get(str(error_data.get("kind", "scan")), ErrorKind.SCAN),
            message=str(reader.get(error_data, "message", f"{path}.error", (str,))),
            exit_code=ExitCode(exit_code),
            code=error_data.get("code") if isinstance(error_data.get("code"), str) else None,
            method=error_data.get("method") if isinstance(error_data.get("method"), str) else None,
            request_ids=tuple(r for r in error_data.get("request_ids", ()) if isinstance(r, str)),
        )
        return SavedImage(ref, image_id, scan_result_id, None, None, error, origin, _source(reader, item, path))
    if item.get("status") != "READY":
        raise reader.fail(
            f"{path}.status", f"an image without error must have status READY, got {item.get('status')!r}"
        )
    if not image_id or not scan_result_id:
        raise reader.fail(path, "a READY image needs image_id and scan_result_id")
    counts_data = reader.get(item, "counts", path, (dict,))
    counts = SeverityCounts(**{s: reader.count(counts_data, s, f"{path}.counts") for s in SEVERITIES})
    scanned_at = None
    if item.get("scanned_at") is not None:
        try:
            scanned_at = dt.datetime.fromisoformat(str(item["scanned_at"]).replace("Z", "+00:00"))
        except ValueError:
            raise reader.fail(f"{path}.scanned_at", "is not an ISO 8601 time") from None
    result = ScanResult(id=scan_result_id, image_id=image_id, status="READY", counts=counts, scanned_at=scanned_at)
    findings_data = reader.get(item, "findings", path, (list, type(None)))
    findings = None
    if findings_data is not None:
        findings = tuple(_finding(reader, f, f"{path}.findings[{i}]") for i, f in enumerate(findings_data))
    return SavedImage(ref, image_id, scan_result_id, result, findings, None, origin, _source(reader, item, path))


def _source(reader: _Reader, item: dict[str, Any], path: str) -> ImageSource | None:
    """Where the image came from in the registry (reports written before crgate read registries have none)."""
    if item.get("digest") is None:
        return None
    fields = {key: reader.get(item, key, path, (str, type(None))) for key in ("platform", "index_digest")}
    return ImageSource(
        reference=reader.get(item, "reference", path, (str,)),
        digest=reader.get(item, "digest", path, (str,)),
        pinned=reader.get(item, "pinned", path, (str,)),
        platform=fields["platform"],
        index_digest=fields["index_digest"],
    )


def _finding(reader: _Reader, item: Any, path: str) -> Finding:
    if not isinstance(item, dict):
        raise reader.fail(path, "expected an object")
    severity = reader.get(item, "severity", path, (str,))
    if severity not in SEVERITIES:
        raise reader.fail(f"{path}.severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")

    def text(key: str) -> str:
        return str(reader.get(item, key, path, (str, type(None))) or "")

    return Finding(
        cve=str(reader.get(item, "cve", path, (str,))),
        severity=severity,
        package=str(reader.get(item, "package", path, (str,))),
        version=text("version"),
        fixed_by=text("fixed_by"),
        link=text("link"),
        source=text("source"),
        origin=text("origin"),
        type=text("type"),
    )


def rejudge(policy: Policy, saved: SavedReport, *, today: dt.date) -> tuple[list[ImageOutcome], list[str], list[str]]:
    """Judge a saved report's results again under ``policy``, with no API call.

    Returns the outcomes, the stale ignore rules and the stale VEX statements. Errors of the original run
    stay errors.
    """
    baseline = None
    if policy.baseline is not None:
        if saved.baseline is None or saved.baseline.ref != policy.baseline.image:
            raise ConfigError(
                f"the policy's baseline {policy.baseline.image} is not in saved report {saved.source} "
                f"(it has {saved.baseline.ref if saved.baseline else 'none'}); run 'crgate check' with this "
                "policy instead"
            )
        baseline = saved.baseline.keys
    outcomes = []
    for image in saved.images:
        if image.result is None:
            outcomes.append(
                ImageOutcome(
                    ref=image.ref,
                    image_id=image.image_id,
                    scan_result_id=image.scan_result_id,
                    error=image.error,
                    source=image.source,
                    policy_rule=image_rules.judging(policy, image.source)[1],
                )
            )
            continue
        if image.findings is not None and recount(image.findings) != image.result.counts:
            raise ConfigError(
                f"saved report {saved.source}: the findings of {image.ref} do not add up to its counts; "
                "the report was edited or truncated"
            )
        judging, rule = image_rules.judging(policy, image.source)
        if image.findings is None and judging.uses_findings:
            raise ConfigError(
                f"saved report {saved.source} has no findings for {image.ref}, but this policy judges findings; "
                "save reports with 'crgate check --format json' (it lists findings)"
            )
        decision = decide(
            judging, image.ref, image.result, image.findings, today=today, baseline=baseline, source=image.source
        )
        outcome = judged_outcome(
            image.ref, image.result, decision, origin=image.origin, source=image.source, policy_rule=rule
        )
        outcomes.append(outcome)
    stale = stale_rules(policy, [o.findings if o.error is None else None for o in outcomes], today)
    return outcomes, stale, stale_statements(policy, outcomes)


_ORIGINS = {origin.value: origin for origin in Origin}
_KINDS = {kind.value: kind for kind in ErrorKind}
_ERROR_CODES = frozenset(code for code in ExitCode if code not in (ExitCode.PASS, ExitCode.VIOLATION))
