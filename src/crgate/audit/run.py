"""The audit's entry point: select the images, assess each (bounded concurrency, within the deadline),
and with ``rescan_stale`` scan the stale and never-scanned ones through ``check``'s own run
(``crgate.gate.run``: quota-aware slots, joining running scans, one scan per image)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from crgate import __version__
from crgate.audit.assess import Assessor, AuditScanner, Judging, error_entry
from crgate.audit.model import DEFAULT_MAX_AGE, AuditEntry, AuditItem, AuditReport, AuditState
from crgate.audit.select import ImageLister, Selection, dedupe, listed_items, target_items
from crgate.errors import InterruptedRunError, ScanError, ScanTimeoutError
from crgate.findings import finding_key, rule_warnings
from crgate.images import parse_image_ref
from crgate.interface import ProgressSink, Registry
from crgate.model import ImageOutcome, Origin, Policy, Target, Verdict
from crgate.obtain import Obtainer
from crgate.runner import resolve_rows
from crgate.timing import Deadline

DEFAULT_AUDIT_CONCURRENCY = 16
"""Images assessed at once: reads only (GetLast, ListVulnerabilities), no scan quota involved."""


class Lister(AuditScanner, ImageLister, Protocol):
    """The scanner client as the audit uses it."""


@dataclass(frozen=True)
class AuditOptions:
    max_age: dt.timedelta = DEFAULT_MAX_AGE
    concurrency: int = DEFAULT_AUDIT_CONCURRENCY
    rescan_stale: bool = False
    max_scans: int | None = None
    """At most this many scans are started by ``rescan_stale`` (None: as many as there are candidates)."""
    scan_concurrency: int = 5
    today: dt.date | None = None


Progress = Callable[[int, int], None]
"""``(assessed, total)`` after each image."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def audit(
    selection: Selection,
    scanner: Lister,
    registry: Registry | None,
    policy: Policy,
    deadline: Deadline,
    *,
    options: AuditOptions = AuditOptions(),  # noqa: B008 - frozen
    progress: Progress | None = None,
    scan_progress: ProgressSink | None = None,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] = _utc_now,
) -> AuditReport:
    """Audit ``selection`` under ``policy``; no scan is started unless ``options.rescan_stale``."""
    cancel = cancel or threading.Event()
    started_at = now()
    today = options.today or started_at.date()
    warnings = rule_warnings(policy.ignore, today)
    if policy.unscannable != "skip":
        warnings += [
            f"{image} is not in Yandex Container Registry and was not audited (policy unscannable: "
            f"{policy.unscannable})"
            for image in selection.unscannable
        ]
    items, left_out = listed_items(scanner, selection, deadline, started_at)
    items = dedupe(items + target_items(selection.targets, registry, scanner, deadline))
    if left_out:
        why = "untagged" if not selection.since else "untagged or older than --since"
        warnings.append(
            f"{left_out} listed image(s) left out: {why} (--include-untagged audits untagged ones; the platform "
            "images of a tagged index are audited with it)"
        )
    judging = Judging(policy, options.max_age, today, started_at)
    if policy.baseline is not None:
        judging = _with_baseline(judging, scanner, registry, deadline, cancel, now, warnings)
    assessor = Assessor(scanner, registry, judging, deadline, cancel, now)
    entries = _unique(_assess_all(assessor, items, options.concurrency, cancel, progress))
    if assessor.artifacts_left_out:
        warnings.append(
            f"{assessor.artifacts_left_out} listed image(s) left out: no container image (signatures, attestations, "
            "SBOMs and other artifacts, which the scanner does not scan)"
        )
    interrupted = cancel.is_set()
    scans_started = 0
    if options.rescan_stale and not interrupted:
        # A baseline the audit could not read (``missing: pass``) is not scanned for the rescans either.
        rescan_policy = policy if judging.baseline is not None else dataclasses.replace(policy, baseline=None)
        entries, scans_started, notes = _rescan(
            entries, scanner, registry, rescan_policy, deadline, options, scan_progress, cancel, now
        )
        warnings += notes
        interrupted = cancel.is_set()
    scopes = tuple(str(scope) for scope in selection.scopes)
    if selection.targets:
        scopes += (f"{len(selection.targets)} named image(s)",)
    return AuditReport(
        policy=policy,
        entries=tuple(entries),
        max_age=options.max_age,
        started_at=started_at,
        finished_at=now(),
        tool_version=__version__,
        scans_started=scans_started,
        scopes=scopes,
        warnings=tuple(warnings),
        interrupted=interrupted,
        unscannable=selection.unscannable,
    )


def _assess_all(
    assessor: Assessor, items: Sequence[AuditItem], concurrency: int, cancel: threading.Event, progress: Progress | None
) -> list[AuditEntry]:
    """Every item's entries in item order; at most ``concurrency`` at once. Ctrl-C stops the rest (they
    become errors: interrupted)."""
    done = 0
    lock = threading.Lock()

    def one(item: AuditItem) -> list[AuditEntry]:
        nonlocal done
        if cancel.is_set():
            return [error_entry(item, InterruptedRunError("interrupted before this image was audited"))]
        entries = assessor.assess(item)
        with lock:
            done += 1
            count = done
        if progress is not None:
            progress(count, len(items))
        return entries

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="crgate-audit") as pool:
        futures: list[Future[list[AuditEntry]]] = [pool.submit(one, item) for item in items]
        try:
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.2)
        except KeyboardInterrupt:
            cancel.set()
            for future in futures:
                future.cancel()
    entries: list[AuditEntry] = []
    for item, future in zip(items, futures, strict=True):
        if future.cancelled():
            entries.append(error_entry(item, InterruptedRunError("interrupted before this image was audited")))
        else:
            entries += future.result()
    return entries


def _unique(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Each image once: a platform image of an index may also be listed on its own (--include-untagged)."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        if entry.image_id is not None and entry.state is not AuditState.ERROR:
            if entry.image_id in seen:
                continue
            seen.add(entry.image_id)
        kept.append(entry)
    return kept


def _with_baseline(
    judging: Judging,
    scanner: Lister,
    registry: Registry | None,
    deadline: Deadline,
    cancel: threading.Event,
    now: Callable[[], dt.datetime],
    warnings: list[str],
) -> Judging:
    """The baseline's (CVE, package) pairs from its last READY result (an audit never scans it). Exit 3
    when it cannot be obtained, unless the policy says ``baseline.missing: pass``."""
    spec = judging.policy.baseline
    assert spec is not None
    try:
        if registry is None:
            raise ScanError(f"baseline {spec.image} needs the registry to be read")
        rows = resolve_rows(Target(spec.image, parse_image_ref(spec.image)), registry, scanner, deadline)
        if len(rows) != 1:
            raise ScanError(f"baseline {spec.image} is a multi-platform index; name one platform image by digest")
        if rows[0].failure is not None:
            raise rows[0].failure
        image_id = rows[0].image_id
        assert image_id is not None
        last = scanner.last_scan(image_id, deadline)
        if last.result is None:
            raise ScanError(f"baseline {spec.image} has no READY scan result (an audit does not scan it)")
        obtainer = Obtainer(scanner, judging.policy, deadline, cancel=cancel, now=now, concurrency=1)
        _, findings = obtainer.findings_of(last.result)
    except (ScanError, ScanTimeoutError) as error:
        if spec.missing == "pass":
            warnings.append(f"baseline {spec.image} could not be obtained ({error}); judged without a baseline")
            return judging
        raise ScanError(
            f"baseline {spec.image} could not be obtained, so new findings cannot be told apart "
            f"(set 'baseline.missing: pass' to judge without it): {error}"
        ) from None
    keys = frozenset(finding_key(f) for f in findings)
    return dataclasses.replace(judging, baseline=keys, baseline_image_id=image_id)


RESCANNED = (AuditState.NEVER_SCANNED, AuditState.STALE)


def _rescan(
    entries: list[AuditEntry],
    scanner: Lister,
    registry: Registry | None,
    policy: Policy,
    deadline: Deadline,
    options: AuditOptions,
    progress: ProgressSink | None,
    cancel: threading.Event,
    now: Callable[[], dt.datetime],
) -> tuple[list[AuditEntry], int, list[str]]:
    """Scan the never-scanned, then the oldest stale images, at most ``max_scans``; their entries are
    replaced by the new results' (judged as ``check`` judges them)."""
    from crgate.gate import RunOptions, run

    candidates = [i for i, e in enumerate(entries) if e.state in RESCANNED and e.image_id is not None]
    candidates.sort(key=lambda i: (entries[i].state is AuditState.STALE, -(entries[i].age_seconds or 0.0)))
    chosen = candidates if options.max_scans is None else candidates[: options.max_scans]
    notes = []
    if len(chosen) < len(candidates):
        notes.append(
            f"--max-scans {options.max_scans}: {len(candidates) - len(chosen)} stale or never-scanned image(s) "
            "were not rescanned"
        )
    if not chosen:
        return entries, 0, notes
    targets = [Target(label=entries[i].ref, image_id=entries[i].image_id) for i in chosen]
    fresh_policy = dataclasses.replace(policy, reuse_max_age=None)  # never reuse: these results are too old
    result = run(
        targets,
        scanner,
        fresh_policy,
        deadline,
        registry=registry,
        options=RunOptions(concurrency=options.scan_concurrency, today=options.today),
        progress=progress,
        cancel=cancel,
        now=now,
    )
    updated = list(entries)
    started = 0
    for index, outcome in zip(chosen, result.report.images, strict=True):
        if outcome.origin is Origin.SCANNED and outcome.scan_result_id is not None:
            started += 1
        updated[index] = _rescanned(entries[index], outcome, now())
    return updated, started, notes


def _rescanned(old: AuditEntry, outcome: ImageOutcome, at: dt.datetime) -> AuditEntry:
    """The entry of an image after its new scan: failing or fresh, or an error."""
    if outcome.error is not None or outcome.result is None:
        message = outcome.error.message if outcome.error else "no result"
        return dataclasses.replace(
            old,
            state=AuditState.ERROR,
            scan_result_id=outcome.scan_result_id,
            error_exit=outcome.exit_code,
            notes=(*old.notes, f"rescan failed: {message}"),
            outcome=outcome,
            rescanned=True,
        )
    scanned_at = outcome.result.scanned_at
    age = (at - scanned_at).total_seconds() if scanned_at is not None else None
    state = AuditState.FAILING if outcome.verdict == Verdict.FAIL else AuditState.FRESH
    return dataclasses.replace(
        old,
        state=state,
        scan_result_id=outcome.scan_result_id,
        scanned_at=scanned_at,
        age_seconds=age,
        outcome=outcome,
        notes=(*old.notes, f"rescanned ({outcome.origin})"),
        rescanned=True,
    )
