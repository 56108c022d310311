"""One image's audit: its last READY result (never a new scan), that result's age, and its verdict.

The policy judges the result as in ``check`` (``crgate.judge``: ignore rules, fixable-only, baseline).
A listed image without any READY result may be a multi-platform index (the scanner refuses indexes): its
manifest is read and its platform images are audited in its place. One that is no container image at all
(a cosign signature, an attestation or SBOM pushed with oras, often tagged) is left out and counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from typing import Protocol

from crgate.audit.model import AuditEntry, AuditItem, AuditState
from crgate.errors import CrgateError, error_info
from crgate.findings import BaselineKeys
from crgate.images import parse_image_ref
from crgate.interface import Registry, Scanner
from crgate.judge import decide, judged_outcome
from crgate.model import LastScan, Origin, Policy, ScanResult, Target, Verdict
from crgate.obtain import Obtainer
from crgate.registry import NotAnImageError
from crgate.runner import resolve_rows
from crgate.timing import Deadline


class AuditScanner(Scanner, Protocol):
    """The scanner calls an audit makes besides ``check``'s: the last scan, without scanning."""

    def last_scan(self, image_id: str, deadline: Deadline) -> LastScan: ...


@dataclasses.dataclass(frozen=True)
class Judging:
    """How results are judged and aged: the same for every image of the audit."""

    policy: Policy
    max_age: dt.timedelta
    today: dt.date
    now: dt.datetime
    baseline: BaselineKeys | None = None
    baseline_image_id: str | None = None
    """The baseline image itself is judged without the baseline (it would hide every finding)."""


class Assessor:
    """Audits images one at a time; safe to call from many worker threads."""

    def __init__(
        self,
        scanner: AuditScanner,
        registry: Registry | None,
        judging: Judging,
        deadline: Deadline,
        cancel: threading.Event,
        now: Callable[[], dt.datetime],
    ):
        self._scanner = scanner
        self._registry = registry
        self._judging = judging
        self._deadline = deadline
        self._findings = Obtainer(scanner, judging.policy, deadline, cancel=cancel, now=now, concurrency=1)
        self._lock = threading.Lock()
        self.artifacts_left_out = 0
        """Listed images that are no container image (signatures, attestations, SBOMs): nothing to scan."""

    def assess(self, item: AuditItem) -> list[AuditEntry]:
        """The entries of one item: one, or one per platform image when it turns out to be an index."""
        if item.failure is not None:
            return [error_entry(item, item.failure)]
        try:
            assert item.image_id is not None
            last = self._scanner.last_scan(item.image_id, self._deadline)
            if last.result is None and item.listed and self._registry is not None:
                try:
                    platforms = self._platform_items(item)
                except NotAnImageError:
                    with self._lock:
                        self.artifacts_left_out += 1
                    return []
                except CrgateError as error:
                    why = error_entry(item, error)
                    note = (
                        "it has no READY scan result, and its manifest could not be read to tell whether it is "
                        f"a multi-platform index: {why.notes[0]}"
                    )
                    return [dataclasses.replace(why, notes=(note,))]
                if platforms is not None:
                    return [entry for platform in platforms for entry in self.assess(platform)]
            if last.result is None:
                return [never_scanned(item, last)]
            return [self.judged(item, last.result)]
        except Exception as error:  # every failure of one image is that image's error entry
            return [error_entry(item, error)]

    def judged(self, item: AuditItem, result: ScanResult, *, origin: Origin = Origin.REUSED) -> AuditEntry:
        """Judge a READY result and age it. Findings are listed (and checked against the scan's statistics)
        when the policy needs them or the result carries no statistics."""
        judging = self._judging
        findings = None
        if judging.policy.uses_findings or result.statistics_missing:
            result, findings = self._findings.findings_of(result)
        baseline = judging.baseline if item.image_id != judging.baseline_image_id else None
        decision = decide(judging.policy, item.ref, result, findings, today=judging.today, baseline=baseline)
        outcome = judged_outcome(item.ref, result, decision, origin=origin)
        notes: list[str] = []
        age = judging.now - result.scanned_at if result.scanned_at is not None else None
        if age is None:
            notes.append(f"scan result {result.id} has no scan time, so its age is unknown: counted as stale")
        elif age < dt.timedelta(0):
            notes.append(f"scan result {result.id} is dated in the future (clock skew?): counted as stale")
        if outcome.verdict == Verdict.FAIL:
            state = AuditState.FAILING
        elif age is None or age < dt.timedelta(0) or age > judging.max_age:
            state = AuditState.STALE
        else:
            state = AuditState.FRESH
        return AuditEntry(
            ref=item.ref,
            image_id=item.image_id,
            digest=item.digest,
            state=state,
            scan_result_id=result.id,
            scanned_at=result.scanned_at,
            age_seconds=age.total_seconds() if age is not None else None,
            outcome=outcome,
            notes=tuple(notes),
            rescanned=origin is not Origin.REUSED,
        )

    def _platform_items(self, item: AuditItem) -> list[AuditItem] | None:
        """The platform images of a tagged index, read from the registry; None when it is a single image."""
        assert self._registry is not None and item.digest is not None
        name = item.ref.rsplit(":", 1)[0] if "@" not in item.ref else item.ref.split("@", 1)[0]
        ref = parse_image_ref(f"{name}@{item.digest}")
        rows = resolve_rows(Target(label=item.ref, ref=ref), self._registry, self._scanner, self._deadline)
        if len(rows) == 1 and rows[0].image_id == item.image_id:
            return None
        return [
            AuditItem(row.label, row.image_id, row.source.digest if row.source else None, item.created_at, row.failure)
            for row in rows
        ]


def never_scanned(item: AuditItem, last: LastScan) -> AuditEntry:
    notes: tuple[str, ...] = ()
    if last.last_status is not None:
        notes = (f"its last scan ended {last.last_status} and it has no READY result",)
    return AuditEntry(item.ref, item.image_id, item.digest, AuditState.NEVER_SCANNED, notes=notes)


def error_entry(item: AuditItem, error: BaseException) -> AuditEntry:
    info = error_info(error)
    return AuditEntry(
        item.ref,
        item.image_id,
        item.digest,
        AuditState.ERROR,
        scan_result_id=getattr(error, "scan_result_id", None),
        error_exit=info.exit_code,
        notes=(info.message,),
    )
