"""Gate many images at once: resolve, scan and judge each one on a bounded pool of worker threads.

Knows nothing of gRPC: it drives any ``Scanner`` (the real client, or a fake in unit tests) and turns
every per-image failure into an ``ErrorInfo`` so that one bad image never hides the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from crgate.errors import (
    ConfigError,
    CrgateError,
    ImageNotFoundError,
    InterruptedRunError,
    MalformedResponseError,
    ScanError,
    ScanTimeoutError,
    exit_code_for,
)
from crgate.findings import judge, recount
from crgate.gate import evaluate
from crgate.model import (
    ErrorInfo,
    Finding,
    ImageOutcome,
    ImageRef,
    Policy,
    ScanResult,
    ScanTracker,
    SeverityCounts,
)
from crgate.scanner.policies import Deadline

log = logging.getLogger("crgate.runner")


class Scanner(Protocol):
    """What the runner needs from a scanner client."""

    def resolve_image(self, ref: ImageRef, deadline: Deadline) -> str: ...

    def scan(
        self,
        image_id: str,
        deadline: Deadline,
        *,
        tracker: ScanTracker | None = None,
        on_progress: Callable[[str, str | None], None] | None = None,
    ) -> ScanResult: ...

    def list_findings(self, scan_result_id: str, deadline: Deadline) -> tuple[Finding, ...]: ...


class ProgressSink(Protocol):
    """Receives state changes of each image (``queued``, ``resolving``, ``scanning``, a verdict)."""

    def update(self, ref: str, state: str, scan_result_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class Target:
    """One image to gate: a parsed reference, or a bare image id (``--image-id``)."""

    label: str
    ref: ImageRef | None = None
    image_id: str | None = None


@dataclass
class _SharedScan:
    """One scan of one image id, shared by every target that resolves to it (never billed twice)."""

    done: threading.Event = field(default_factory=threading.Event)
    tracker: ScanTracker = field(default_factory=ScanTracker)
    result: ScanResult | None = None
    error: BaseException | None = None


class Run:
    """One gating run over several targets; ``trackers`` stay readable while it is in flight."""

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
        fetch_findings: bool = False,
        today: dt.date | None = None,
    ):
        self.targets = tuple(targets)
        self.fetch_findings = fetch_findings or policy.uses_findings
        self.today = today or dt.date.today()
        self.scanner = scanner
        self.policy = policy
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.cancel = cancel
        self.trackers = [ScanTracker(image_id=t.image_id) for t in self.targets]
        self._outcomes: list[ImageOutcome | None] = [None] * len(self.targets)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._scans: dict[str, _SharedScan] = {}

    def start(self) -> None:
        """Start the workers (daemon threads: an interrupted run must not wait for them)."""
        work: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index, target in enumerate(self.targets):
            work.put(index)
            self.progress.update(target.label, "queued")
        for number in range(min(self.concurrency, len(self.targets))):
            thread = threading.Thread(target=self._worker, args=(work,), name=f"crgate-scan-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self, poll: float = 0.2) -> list[ImageOutcome]:
        """Block until every target has an outcome; joins in short slices so signals get through."""
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
                tracker = self.trackers[index]
                outcome = ImageOutcome(
                    ref=target.label,
                    image_id=tracker.image_id,
                    scan_result_id=tracker.scan_result_id,
                    error=_error_info(InterruptedRunError("interrupted before this image had a result")),
                    polls=tracker.polls,
                )
            result.append(outcome)
        return result

    def left_running(self) -> list[tuple[str, ScanTracker]]:
        """Targets whose scan was started but had not finished (for the interruption message)."""
        return [
            (target.label, tracker)
            for target, tracker, outcome in zip(self.targets, self.trackers, self._outcomes, strict=True)
            if tracker.operation_id and not tracker.finished and (outcome is None or outcome.error is not None)
        ]

    def _worker(self, work: queue.SimpleQueue[int]) -> None:
        while not self.cancel.is_set():
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            self._outcomes[index] = self._gate_one(self.targets[index], self.trackers[index])

    def _gate_one(self, target: Target, tracker: ScanTracker) -> ImageOutcome:
        started = time.monotonic()
        label = target.label

        def on_progress(state: str, scan_result_id: str | None) -> None:
            if state == "running":
                self.progress.update(label, "scanning", scan_result_id)

        try:
            image_id = target.image_id
            if image_id is None:
                assert target.ref is not None
                self.progress.update(label, "resolving")
                image_id = self.scanner.resolve_image(target.ref, self.deadline)
            tracker.image_id = image_id
            self.progress.update(label, "starting")
            result = self._scan_once(image_id, tracker, on_progress)
            outcome = self._judge(label, image_id, result, tracker, started)
        except Exception as error:  # every failure of one image becomes that image's error outcome
            if not isinstance(error, CrgateError):
                log.debug("unexpected error while gating %s", label, exc_info=True)
            outcome = ImageOutcome(
                ref=label,
                image_id=tracker.image_id,
                scan_result_id=tracker.scan_result_id,
                error=_error_info(error),
                polls=tracker.polls,
                elapsed=time.monotonic() - started,
            )
        self.progress.update(
            label, outcome.verdict if outcome.error is None else _error_state(outcome.error), outcome.scan_result_id
        )
        return outcome

    def _judge(
        self, label: str, image_id: str, result: ScanResult, tracker: ScanTracker, started: float
    ) -> ImageOutcome:
        """Apply the policy to a READY result, fetching and deciding findings when needed."""
        judged = None
        counted = result.counts
        counts: SeverityCounts | dict[str, int] = result.counts
        if self.fetch_findings:
            self.progress.update(label, "fetching findings", result.id)
            findings = self.scanner.list_findings(result.id, self.deadline)
            listed = recount(findings)
            if listed != result.counts:
                raise MalformedResponseError(
                    f"inconsistent answer for scan result {result.id}: the scan's statistics say "
                    f"{_describe(result.counts)} but ListVulnerabilities listed {_describe(listed)}",
                    method="ScannerService.ListVulnerabilities",
                    scan_result_id=result.id,
                )
            judged, counts = judge(self.policy, label, findings, today=self.today)
            counted = SeverityCounts(**{key: value for key, value in counts.items() if key != "total"})
        return ImageOutcome(
            ref=label,
            image_id=image_id,
            scan_result_id=result.id,
            result=result,
            violations=evaluate(self.policy, counts),
            polls=tracker.polls,
            elapsed=time.monotonic() - started,
            findings=judged,
            counted=counted,
        )

    def _scan_once(
        self, image_id: str, tracker: ScanTracker, on_progress: Callable[[str, str | None], None]
    ) -> ScanResult:
        """Scan ``image_id``, or wait for the scan another target of this run already started for it."""
        with self._lock:
            shared = self._scans.get(image_id)
            owner = shared is None
            if shared is None:
                shared = self._scans[image_id] = _SharedScan(tracker=tracker)
        if owner:
            try:
                shared.result = self.scanner.scan(image_id, self.deadline, tracker=tracker, on_progress=on_progress)
            except BaseException as error:
                shared.error = error
                raise
            finally:
                shared.done.set()
            return shared.result
        on_progress("running", shared.tracker.scan_result_id)
        while not shared.done.wait(0.2):
            if self.cancel.is_set():
                raise InterruptedRunError("interrupted while another target's scan of the same image ran")
        tracker.operation_id = shared.tracker.operation_id
        tracker.scan_result_id = shared.tracker.scan_result_id
        tracker.finished = shared.tracker.finished
        if shared.error is not None:
            raise shared.error
        assert shared.result is not None
        return shared.result


def _describe(counts: SeverityCounts) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.as_dict().items()) + f" (total {counts.total})"


def _error_state(error: ErrorInfo) -> str:
    return "timeout" if error.kind == "timeout" else "interrupted" if error.kind == "interrupted" else "error"


def _error_info(error: BaseException) -> ErrorInfo:
    kind = "scan"
    for cls, name in _KINDS:
        if isinstance(error, cls):
            kind = name
            break
    message = str(error) if isinstance(error, CrgateError) else f"internal error: {type(error).__name__}: {error}"
    scan = error if isinstance(error, ScanError) else None
    return ErrorInfo(
        kind=kind,
        message=message,
        exit_code=int(exit_code_for(error)),
        code=scan.code if scan else None,
        method=scan.method if scan else None,
        request_ids=scan.request_ids if scan else (),
    )


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ImageNotFoundError, "not_found"),
    (MalformedResponseError, "malformed"),
    (ScanTimeoutError, "timeout"),
    (InterruptedRunError, "interrupted"),
    (ConfigError, "config"),
    (ScanError, "scan"),
)
