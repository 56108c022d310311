"""Gate many images at once: resolve, obtain a result, judge, on a bounded pool of worker threads.

Knows nothing of gRPC: it drives any ``crgate.interface.Scanner`` and turns every per-image failure
into an ``ErrorInfo`` so that one bad image never hides the others. Obtaining results (reuse, join,
scan; once per image) is ``obtain.Obtainer``'s job; judging is the pure ``judge.decide``.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crgate.errors import CrgateError, InterruptedRunError, error_info
from crgate.findings import stale_rules
from crgate.interface import ProgressSink, Scanner
from crgate.judge import decide, judged_outcome
from crgate.model import BaselineInfo, ErrorKind, ImageOutcome, ImageState, Policy, Target, Verdict
from crgate.obtain import Obtained, Obtainer, UnfinishedScan
from crgate.timing import Deadline

log = logging.getLogger("crgate.runner")


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


class Run:
    """One gating run over several targets. ``outcomes()`` may be read while it is in flight."""

    def __init__(
        self,
        targets: Sequence[Target],
        scanner: Scanner,
        policy: Policy,
        deadline: Deadline,
        *,
        concurrency: int,
        progress: ProgressSink,
        cancel: threading.Event,
        today: dt.date | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ):
        self.targets = tuple(targets)
        self.scanner = scanner
        self.policy = policy
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.cancel = cancel
        self.today = today or dt.date.today()
        self.obtainer = Obtainer(scanner, policy, deadline, cancel=cancel, now=now, concurrency=self.concurrency)
        self._image_ids: list[str | None] = [t.image_id for t in self.targets]
        self._outcomes: list[ImageOutcome | None] = [None] * len(self.targets)
        self._threads: list[threading.Thread] = []

    @property
    def baseline(self) -> BaselineInfo | None:
        return self.obtainer.baseline

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (daemon threads: an interrupted run must not wait for them)."""
        work: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index, target in enumerate(self.targets):
            work.put(index)
            self.progress.update(target.label, ImageState.QUEUED)
        for number in range(min(self.concurrency, len(self.targets))):
            thread = threading.Thread(target=self._worker, args=(work,), name=f"crgate-scan-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self, poll: float = 0.2) -> list[ImageOutcome]:
        """Block until every worker is done; joins in short slices so signals get through."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(poll)
        return self.outcomes()

    def outcomes(self) -> list[ImageOutcome]:
        """Outcomes so far; a target without one (still running, or never started) is 'interrupted'."""
        result = []
        for index, target in enumerate(self.targets):
            outcome = self._outcomes[index]
            if outcome is None:
                image_id = self._image_ids[index]
                handle = self.obtainer.scan_of(image_id) if image_id else None
                outcome = ImageOutcome(
                    ref=target.label,
                    image_id=image_id,
                    scan_result_id=handle.scan_result_id if handle else None,
                    error=error_info(InterruptedRunError("interrupted before this image had a result")),
                    polls=handle.polls if handle else 0,
                )
            result.append(outcome)
        return result

    def left_running(self) -> list[LeftRunning]:
        """Scans that may still be running (confirmed, or a Scan call in flight), for the interruption note."""
        waiting: dict[str, list[str]] = {}
        for target, image_id, outcome in zip(self.targets, self._image_ids, self._outcomes, strict=True):
            if image_id is not None and (outcome is None or outcome.error is not None):
                waiting.setdefault(image_id, []).append(target.label)
        return [
            LeftRunning(tuple(waiting[scan.image_id]), scan)
            for scan in self.obtainer.unfinished_scans()
            if scan.image_id in waiting
        ]

    def stale_ignore_rules(self) -> list[str]:
        """Ignore rules in force that matched no finding of any image; [] when that cannot be told."""
        if any(outcome is None for outcome in self._outcomes):
            return []
        return stale_rules(self.policy, [o.findings for o in self._outcomes if o is not None], self.today)

    def _worker(self, work: queue.SimpleQueue[int]) -> None:
        while not self.cancel.is_set():
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            outcome = self._gate_one(index)
            # Stored before it is shown: an image whose verdict was printed is in the report with it.
            self._outcomes[index] = outcome
            state = _final_state(outcome)
            self.progress.update(outcome.ref, state, outcome.scan_result_id)

    # -- one image ----------------------------------------------------------------------------

    def _gate_one(self, index: int) -> ImageOutcome:
        target = self.targets[index]
        started = time.monotonic()
        label = target.label

        def on_progress(state: ImageState, scan_result_id: str | None) -> None:
            self.progress.update(label, state, scan_result_id)

        try:
            image_id = target.image_id
            if image_id is None:
                assert target.ref is not None
                self.progress.update(label, ImageState.RESOLVING)
                image_id = self.scanner.resolve_image(target.ref, self.deadline)
                self._image_ids[index] = image_id
            self.progress.update(label, ImageState.STARTING)
            obtained = self.obtainer.result_for(image_id, on_progress)
            return self._judge(label, obtained, started)
        except Exception as error:  # every failure of one image becomes that image's error outcome
            if not isinstance(error, CrgateError):
                log.debug("unexpected error while gating %s", label, exc_info=True)
            image_id = self._image_ids[index]
            handle = self.obtainer.scan_of(image_id) if image_id else None
            return ImageOutcome(
                ref=label,
                image_id=image_id,
                scan_result_id=(handle.scan_result_id if handle else None) or getattr(error, "scan_result_id", None),
                error=error_info(error),
                polls=handle.polls if handle else 0,
                elapsed=time.monotonic() - started,
            )

    def _judge(self, label: str, obtained: Obtained, started: float) -> ImageOutcome:
        """Apply the policy to a READY result; its findings are always listed and checked."""
        result = obtained.result
        warnings = list(obtained.notes)
        baseline = self.obtainer.baseline_keys(warnings) if self.policy.baseline else None
        self.progress.update(label, ImageState.FETCHING_FINDINGS, result.id)
        # Every report explains which findings made an image fail, and the listed findings are checked
        # against the scan's own statistics: one more fail-closed check for a few unbilled calls.
        result, findings = self.obtainer.findings_of(result)
        if result.statistics_missing:
            warnings.append(
                f"scan result {result.id} carried no vulnerability statistics; judged by its "
                f"{len(findings)} listed finding{'s' if len(findings) != 1 else ''}"
            )
            log.warning("%s: %s", label, warnings[-1])
        decision = decide(self.policy, label, result, findings, today=self.today, baseline=baseline)
        return judged_outcome(
            label,
            result,
            decision,
            origin=obtained.origin,
            polls=obtained.polls,
            elapsed=time.monotonic() - started,
            warnings=tuple(warnings),
        )


def _final_state(outcome: ImageOutcome) -> ImageState:
    if outcome.error is None:
        return {Verdict.PASS: ImageState.PASS, Verdict.FAIL: ImageState.FAIL}.get(outcome.verdict, ImageState.ERROR)
    if outcome.error.kind == ErrorKind.TIMEOUT:
        return ImageState.TIMEOUT
    if outcome.error.kind == ErrorKind.INTERRUPTED:
        return ImageState.INTERRUPTED
    return ImageState.ERROR
