"""Gate many images at once: resolve, obtain a result, judge, on a bounded pool of worker threads.

Knows nothing of gRPC or HTTP: it drives any ``crgate.interface.Registry`` and ``Scanner`` and turns
every per-image failure into an ``ErrorInfo`` so that one bad image never hides the others.

Each target is first resolved: a reference is read from the registry (its verified manifest; an index
becomes one row per platform image, never the index itself nor an attestation) and each manifest is
found in ``ImageService.List`` by its digest; an ``--image-id`` is taken as it is. Every resulting row
is then gated: obtaining its result (reuse, join, scan; once per image) is ``obtain.Obtainer``'s job,
judging is the pure ``judge.decide``.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from crgate import image_rules
from crgate.errors import CrgateError, ImageNotFoundError, InterruptedRunError, ScanTimeoutError, error_info
from crgate.findings import stale_rules, stale_statements
from crgate.interface import ProgressSink, Registry, Scanner
from crgate.judge import decide, judged_outcome
from crgate.model import (
    BaselineInfo,
    ErrorKind,
    ImageOutcome,
    ImageSource,
    ImageState,
    Origin,
    Policy,
    Target,
    Verdict,
)
from crgate.obtain import Obtained, Obtainer, UnfinishedScan
from crgate.pinning import pinned_reference
from crgate.registry.index import Platform, label
from crgate.timing import Deadline

log = logging.getLogger("crgate.runner")

IDLE_WAKE = 0.05
"""Seconds an idle worker waits for work that a resolving worker may still add."""
OVERRUN_GRACE = 10.0
"""Seconds past the deadline after which ``Run.wait`` stops waiting for a worker (a backstop: calls end by
the deadline, so only a defect could keep a worker that long)."""


@dataclass(frozen=True)
class LeftRunning:
    """A scan of an interrupted run that may still be running in Yandex Cloud, and who waited on it."""

    labels: tuple[str, ...]
    scan: UnfinishedScan

    def describe(self) -> str:
        """One line for people: which images, and every id that finds the scan in Yandex Cloud."""
        scan, who = self.scan, ", ".join(self.labels)
        if not scan.confirmed:
            return (
                f"a scan may have been started for image {scan.image_id} ({who}); check with: "
                f"yc container image list-scan-results --image-id {scan.image_id}"
            )
        how = f"operation {scan.operation_id}" if scan.operation_id else "joined (started by someone else)"
        return f"{who}: image {scan.image_id}, scan result {scan.scan_result_id or '(unknown)'}, {how}"


@dataclass(frozen=True)
class Row:
    """One image the run gates, one row of every report: a target's image, or one platform of it."""

    label: str
    image_id: str | None = None
    source: ImageSource | None = None
    failure: BaseException | None = None
    """Why it cannot be gated, found while resolving (the row becomes an error without a scan)."""
    notes: tuple[str, ...] = ()
    """What resolving found contradictory about the image (they become the outcome's warnings)."""


@dataclass
class _Resolved:
    rows: tuple[Row, ...]
    outcomes: list[ImageOutcome | None] = field(default_factory=list)


class Run:
    """One gating run over several targets. ``outcomes()`` may be read while it is in flight."""

    def __init__(
        self,
        targets: Sequence[Target],
        scanner: Scanner,
        policy: Policy,
        deadline: Deadline,
        *,
        registry: Registry | None,
        concurrency: int,
        progress: ProgressSink,
        cancel: threading.Event,
        platforms: Sequence[Platform] = (),
        today: dt.date | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ):
        self.targets = tuple(targets)
        if registry is None and (any(t.ref is not None for t in self.targets) or policy.baseline):
            raise ValueError("image references are read from the registry: a Registry is needed")
        self.scanner = scanner
        self.registry = registry
        self.platforms = tuple(platforms)
        self.policy = policy
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.cancel = cancel
        self.today = today or dt.date.today()
        self.obtainer = Obtainer(
            scanner, policy, deadline, cancel=cancel, now=now, concurrency=self.concurrency, resolve=self.resolve
        )
        self._resolved: list[_Resolved | None] = [None] * len(self.targets)
        self._threads: list[threading.Thread] = []
        self._work: queue.SimpleQueue[tuple[int, int | None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._abandoned = threading.Event()
        """Set when ``wait`` gave up on images without an outcome (they become timeouts)."""
        self._stop = threading.Event()
        """Set when ``wait`` returns: workers still idle leave."""
        self._changed = threading.Event()
        """Set whenever an image gets its outcome (wakes ``wait``)."""

    @property
    def baseline(self) -> BaselineInfo | None:
        return self.obtainer.baseline

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (daemon threads: an interrupted run must not wait for them)."""
        for index, target in enumerate(self.targets):
            self._put(index, None)
            self.progress.update(target.label, ImageState.QUEUED)
        for number in range(min(self.concurrency, len(self.targets))):
            thread = threading.Thread(target=self._worker, name=f"crgate-scan-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self, poll: float = 0.2) -> list[ImageOutcome]:
        """Block until every image has its outcome; waits in short slices so signals get through.

        The run is over when every row has an outcome, not when the worker threads have exited: a worker
        that lingers (they are daemons and leave on their own) cannot hold the run. Bounded even if an
        image never gets an outcome: every call a worker makes ends by the deadline, so an image still
        without one ``OVERRUN_GRACE`` seconds after it becomes a timeout (exit 4), never a hang or a pass.
        """
        overrun_since: float | None = None
        try:
            while not self._complete() and any(thread.is_alive() for thread in self._threads):
                self._changed.wait(poll)
                self._changed.clear()  # cleared before the check above runs again: no finish is missed
                if not self.deadline.expired():
                    continue
                overrun_since = overrun_since or time.monotonic()
                if time.monotonic() - overrun_since >= OVERRUN_GRACE:
                    self._abandoned.set()
                    log.warning("workers still busy %.0fs after the deadline; their images time out", OVERRUN_GRACE)
                    break
        finally:
            self._stop.set()  # idle workers leave now
        return self.outcomes()

    def _complete(self) -> bool:
        """Every target resolved and every row of it finished."""
        return all(
            resolved is not None and all(outcome is not None for outcome in resolved.outcomes)
            for resolved in self._resolved
        )

    def outcomes(self) -> list[ImageOutcome]:
        """Outcomes so far, a row per gated image in the order of the targets; an image without one
        (still running, or never started) is 'interrupted'."""
        result = []
        for target, resolved in zip(self.targets, self._resolved, strict=True):
            if resolved is None:
                result.append(self._unfinished(Row(target.label, image_id=target.image_id)))
                continue
            for row, outcome in zip(resolved.rows, resolved.outcomes, strict=True):
                result.append(outcome or self._unfinished(row))
        return result

    def _unfinished(self, row: Row) -> ImageOutcome:
        """An image without a result: interrupted, or (after ``wait`` gave up on its worker) timed out."""
        handle = self.obtainer.scan_of(row.image_id) if row.image_id else None
        error: CrgateError = InterruptedRunError("interrupted before this image had a result")
        if self._abandoned.is_set():
            error = ScanTimeoutError(
                f"no result within the --timeout of {self.deadline.seconds:g}s "
                f"(crgate stopped waiting {OVERRUN_GRACE:g}s after it)",
                scan_result_id=handle.scan_result_id if handle else None,
            )
        return ImageOutcome(
            ref=row.label,
            image_id=row.image_id,
            scan_result_id=handle.scan_result_id if handle else None,
            error=error_info(error),
            polls=handle.polls if handle else 0,
            source=row.source,
        )

    def left_running(self) -> list[LeftRunning]:
        """Scans that may still be running (confirmed, or a Scan call in flight), for the interruption note."""
        waiting: dict[str, list[str]] = {}
        for resolved in self._resolved:
            for row, outcome in zip(resolved.rows, resolved.outcomes, strict=True) if resolved else ():
                if row.image_id is not None and (outcome is None or outcome.error is not None):
                    waiting.setdefault(row.image_id, []).append(row.label)
        return [
            LeftRunning(tuple(waiting[scan.image_id]), scan)
            for scan in self.obtainer.unfinished_scans()
            if scan.image_id in waiting
        ]

    def stale_ignore_rules(self) -> list[str]:
        """Ignore rules in force that matched no finding of any image; [] when that cannot be told."""
        outcomes = self.outcomes()
        if any(o.error is not None and o.error.kind == ErrorKind.INTERRUPTED for o in outcomes):
            return []
        return stale_rules(self.policy, [o.findings for o in outcomes], self.today)

    def stale_vex_statements(self) -> list[str]:
        """VEX statements in force that applied to no finding of any image; [] when that cannot be told."""
        return stale_statements(self.policy, self.outcomes())

    # -- the work queue -----------------------------------------------------------------------

    def _put(self, target_index: int, row_index: int | None) -> None:
        """Queue a target to resolve (``row_index`` None) or one of its rows to gate."""
        with self._lock:
            self._outstanding += 1
        self._work.put((target_index, row_index))

    def _worker(self) -> None:
        while not (self.cancel.is_set() or self._stop.is_set()):
            try:
                target_index, row_index = self._work.get(timeout=IDLE_WAKE)
            except queue.Empty:
                with self._lock:
                    if self._outstanding == 0:  # nothing queued and nobody resolving: the run is done
                        return
                continue
            try:
                if row_index is None:
                    self._resolve_target(target_index)
                else:
                    self._gate_row(target_index, row_index)
            finally:
                with self._lock:
                    self._outstanding -= 1

    # -- resolving ----------------------------------------------------------------------------

    def _resolve_target(self, index: int) -> None:
        target = self.targets[index]
        if target.ref is not None:
            self.progress.update(target.label, ImageState.RESOLVING)
        rows = self._rows_of(target)
        resolved = _Resolved(rows, [None] * len(rows))
        self._resolved[index] = resolved
        if len(rows) > 1 or rows[0].label != target.label:
            self.progress.update(target.label, ImageState.EXPANDED)
        for row_index, row in enumerate(rows):
            if row.failure is not None:
                self._finish(resolved, row_index, self._error_outcome(row, row.failure, time.monotonic()))
            else:
                self._put(index, row_index)

    def _rows_of(self, target: Target) -> tuple[Row, ...]:
        """The images a target gates; a failure to tell is one row that carries it (exit 3 before any scan)."""
        if target.ref is None:
            return (Row(target.label, image_id=target.image_id),)
        try:
            return self.resolve(target)
        except Exception as error:  # a registry or image-service failure belongs to this target alone
            if not isinstance(error, CrgateError):
                log.debug("unexpected error while resolving %s", target.label, exc_info=True)
            return (Row(target.label, failure=error),)

    def resolve(self, target: Target) -> tuple[Row, ...]:
        """Read the reference's manifest from the registry, then find each image it names by digest."""
        assert self.registry is not None
        return resolve_rows(target, self.registry, self.scanner, self.deadline, self.platforms)

    # -- one image ----------------------------------------------------------------------------

    def _finish(self, resolved: _Resolved, row_index: int, outcome: ImageOutcome) -> None:
        # Stored before it is shown: an image whose verdict was printed is in the report with it.
        resolved.outcomes[row_index] = outcome
        self._changed.set()
        self.progress.update(outcome.ref, _final_state(outcome), outcome.scan_result_id)

    def _gate_row(self, target_index: int, row_index: int) -> None:
        resolved = self._resolved[target_index]
        assert resolved is not None
        row = resolved.rows[row_index]
        started = time.monotonic()

        def on_progress(state: ImageState, scan_result_id: str | None) -> None:
            self.progress.update(row.label, state, scan_result_id)

        try:
            assert row.image_id is not None
            self.obtainer.refuse_self_baseline(row.label, row.image_id, row.source)
            self.progress.update(row.label, ImageState.STARTING)
            obtained = self.obtainer.result_for(row.image_id, on_progress)
            outcome = self._judge(row, obtained, started)
        except Exception as error:  # every failure of one image becomes that image's error outcome
            if not isinstance(error, CrgateError):
                log.debug("unexpected error while gating %s", row.label, exc_info=True)
            outcome = self._error_outcome(row, error, started)
        self._finish(resolved, row_index, outcome)

    def _error_outcome(self, row: Row, error: BaseException, started: float) -> ImageOutcome:
        handle = self.obtainer.scan_of(row.image_id) if row.image_id else None
        return ImageOutcome(
            ref=row.label,
            image_id=row.image_id,
            scan_result_id=(handle.scan_result_id if handle else None) or getattr(error, "scan_result_id", None),
            error=error_info(error),
            polls=handle.polls if handle else 0,
            elapsed=time.monotonic() - started,
            origin=Origin.JOINED if handle is not None and handle.operation_id is None else Origin.SCANNED,
            source=row.source,
            warnings=row.notes,
            policy_rule=image_rules.judging(self.policy, row.source)[1],
        )

    def _judge(self, row: Row, obtained: Obtained, started: float) -> ImageOutcome:
        """Apply the policy to a READY result; its findings are always listed and checked."""
        result = obtained.result
        warnings = [*row.notes, *obtained.notes]
        baseline = self.obtainer.baseline_keys(warnings) if self.policy.baseline else None
        self.progress.update(row.label, ImageState.FETCHING_FINDINGS, result.id)
        # Every report explains which findings made an image fail, and the listed findings are checked
        # against the scan's own statistics: one more fail-closed check for a few unbilled calls.
        result, findings = self.obtainer.findings_of(result)
        if result.statistics_missing:
            warnings.append(
                f"scan result {result.id} carried no vulnerability statistics; judged by its "
                f"{len(findings)} listed finding{'s' if len(findings) != 1 else ''}"
            )
            log.warning("%s: %s", row.label, warnings[-1])
        policy, rule = image_rules.judging(self.policy, row.source)
        decision = decide(policy, row.label, result, findings, today=self.today, baseline=baseline, source=row.source)
        return judged_outcome(
            row.label,
            result,
            decision,
            origin=obtained.origin,
            polls=obtained.polls,
            elapsed=time.monotonic() - started,
            warnings=tuple(warnings),
            source=row.source,
            policy_rule=rule,
        )


def resolve_rows(
    target: Target, registry: Registry, scanner: Scanner, deadline: Deadline, platforms: Sequence[Platform] = ()
) -> tuple[Row, ...]:
    """Read the reference's manifest from the registry, then find each image it names by digest."""
    ref = target.ref
    assert ref is not None
    resolved = registry.resolve(ref, deadline, platforms)
    digests = [child.digest for child in resolved.children]
    image_ids = scanner.find_images(ref, digests, deadline)
    pinned = pinned_reference(ref, resolved.digest)
    rows = []
    for child in resolved.children:
        name = label(target.label, child.platform) if resolved.is_index else target.label
        source = ImageSource(
            reference=ref.raw,
            digest=child.digest,
            pinned=pinned,
            platform=child.platform if resolved.is_index else None,
            index_digest=resolved.digest if resolved.is_index else None,
        )
        image_id = image_ids.get(child.digest)
        failure = None
        if image_id is None:
            what = f"its {child.platform} image {child.digest}" if resolved.is_index else f"manifest {child.digest}"
            failure = ImageNotFoundError(
                f"image {name} not found: the registry serves {what} for {ref.raw}, but ImageService.List "
                f"has no image with that digest in repository {ref.repository_name}. Is the push still in "
                f"flight? Check with: yc container image list --repository-name {ref.repository_name}",
                method="ImageService.List",
            )
        for note in child.notes:
            log.warning("%s: %s", name, note)
        rows.append(Row(name, image_id=image_id, source=source, failure=failure, notes=child.notes))
    return tuple(rows)


def _final_state(outcome: ImageOutcome) -> ImageState:
    if outcome.error is None:
        return {Verdict.PASS: ImageState.PASS, Verdict.FAIL: ImageState.FAIL}.get(outcome.verdict, ImageState.ERROR)
    if outcome.error.kind == ErrorKind.TIMEOUT:
        return ImageState.TIMEOUT
    if outcome.error.kind == ErrorKind.INTERRUPTED:
        return ImageState.INTERRUPTED
    return ImageState.ERROR
