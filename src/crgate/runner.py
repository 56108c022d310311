"""Gate many images at once: resolve, obtain a result, judge, on a bounded pool of worker threads.

Knows nothing of gRPC: it drives any ``Scanner`` (the real client, or a fake in unit tests) and turns
every per-image failure into an ``ErrorInfo`` so that one bad image never hides the others.

Obtaining a result never bills a scan twice: targets that resolve to the same image share one scan;
with ``reuse.max_age`` a fresh enough READY result is taken as is; a scan already RUNNING for the
image (e.g. scan-on-push) is joined instead of starting another.
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
from crgate.findings import BaselineKeys, finding_key, recount, stale_rules
from crgate.gate import decide
from crgate.images import parse_image_ref
from crgate.model import (
    ErrorInfo,
    Finding,
    ImageOutcome,
    ImageRef,
    Policy,
    ProgressCallback,
    ScanResult,
    ScanTracker,
    SeverityCounts,
)
from crgate.timing import Deadline

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
        on_progress: ProgressCallback | None = None,
    ) -> ScanResult: ...

    def list_findings(self, scan_result_id: str, deadline: Deadline, expected: int) -> tuple[Finding, ...]: ...

    def last_result(self, image_id: str, deadline: Deadline) -> ScanResult | None: ...

    def running_scan(self, image_id: str, deadline: Deadline) -> str | None: ...

    def join_scan(
        self,
        scan_result_id: str,
        image_id: str,
        deadline: Deadline,
        *,
        tracker: ScanTracker | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> ScanResult: ...


class ProgressSink(Protocol):
    """Receives state changes of each image (``queued``, ``resolving``, ``scanning``, a verdict)."""

    def update(self, ref: str, state: str, scan_result_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class Target:
    """One image to gate: a parsed reference, or a bare image id (``--image-id``)."""

    label: str
    ref: ImageRef | None = None
    image_id: str | None = None


@dataclass(frozen=True)
class Obtained:
    """A READY result and how it was obtained (``scanned``, ``reused``, ``joined``)."""

    result: ScanResult
    origin: str
    notes: tuple[str, ...] = ()


@dataclass
class _Shared:
    """Work done once per run and awaited by every other thread that needs it."""

    done: threading.Event = field(default_factory=threading.Event)
    tracker: ScanTracker = field(default_factory=ScanTracker)
    value: object = None
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
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ):
        self.targets = tuple(targets)
        self.scanner = scanner
        self.policy = policy
        self.deadline = deadline
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self.cancel = cancel
        self.fetch_findings = fetch_findings or policy.uses_findings
        self.today = today or dt.date.today()
        self.now = now
        self.trackers = [ScanTracker(image_id=t.image_id) for t in self.targets]
        self._outcomes: list[ImageOutcome | None] = [None] * len(self.targets)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shared: dict[str, _Shared] = {}
        self.baseline_info: dict[str, object] | None = None

    # -- running ------------------------------------------------------------------------------

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
                    error=error_info(InterruptedRunError("interrupted before this image had a result")),
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
            self._outcomes[index] = self._gate_one(self.targets[index], self.trackers[index])

    # -- one image ----------------------------------------------------------------------------

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
            obtained = self._obtain_once(image_id, tracker, on_progress)
            outcome = self._judge(label, image_id, obtained, tracker, started)
        except Exception as error:  # every failure of one image becomes that image's error outcome
            if not isinstance(error, CrgateError):
                log.debug("unexpected error while gating %s", label, exc_info=True)
            outcome = ImageOutcome(
                ref=label,
                image_id=tracker.image_id,
                scan_result_id=tracker.scan_result_id,
                error=error_info(error),
                polls=tracker.polls,
                elapsed=time.monotonic() - started,
            )
        state = outcome.verdict if outcome.error is None else _error_state(outcome.error)
        self.progress.update(label, state, outcome.scan_result_id)
        return outcome

    def _judge(
        self, label: str, image_id: str, obtained: Obtained, tracker: ScanTracker, started: float
    ) -> ImageOutcome:
        """Apply the policy to a READY result, fetching and deciding findings when needed."""
        result = obtained.result
        warnings = list(obtained.notes)
        findings = baseline = None
        if self.fetch_findings:
            baseline = self._baseline(warnings) if self.policy.baseline else None
            self.progress.update(label, "fetching findings", result.id)
            findings = self._findings_of(result)
        decision = decide(self.policy, label, result, findings, today=self.today, baseline=baseline)
        return ImageOutcome(
            ref=label,
            image_id=image_id,
            scan_result_id=result.id,
            result=result,
            violations=decision.violations,
            polls=tracker.polls,
            elapsed=time.monotonic() - started,
            findings=decision.findings,
            counted=decision.counted,
            origin=obtained.origin,
            warnings=tuple(warnings),
        )

    def _findings_of(self, result: ScanResult) -> tuple[Finding, ...]:
        """The findings of a READY result, checked against its statistics (fail closed on a mismatch)."""
        findings = self.scanner.list_findings(result.id, self.deadline, result.counts.total)
        listed = recount(findings)
        if listed != result.counts:
            raise MalformedResponseError(
                f"inconsistent answer for scan result {result.id}: the scan's statistics say "
                f"{_describe(result.counts)} but ListVulnerabilities listed {_describe(listed)}",
                method="ScannerService.ListVulnerabilities",
                scan_result_id=result.id,
            )
        return findings

    # -- obtaining results once ---------------------------------------------------------------

    def _once(self, key: str, tracker: ScanTracker, work: Callable[[], object]) -> tuple[object, ScanTracker]:
        """Run ``work`` once per run for ``key``; other threads wait for (and share) its value or error."""
        with self._lock:
            shared = self._shared.get(key)
            owner = shared is None
            if shared is None:
                shared = self._shared[key] = _Shared(tracker=tracker)
        if owner:
            try:
                shared.value = work()
            except BaseException as error:
                shared.error = error
                raise
            finally:
                shared.done.set()
            return shared.value, shared.tracker
        while not shared.done.wait(0.2):
            if self.cancel.is_set():
                raise InterruptedRunError("interrupted while waiting for work shared with another image")
        if shared.error is not None:
            raise shared.error
        return shared.value, shared.tracker

    def _obtain_once(self, image_id: str, tracker: ScanTracker, on_progress: ProgressCallback) -> Obtained:
        """The READY result for ``image_id``, obtained once per run however many targets name it."""

        def work() -> Obtained:
            return self._obtain(image_id, tracker, on_progress)

        value, owner_tracker = self._once(f"image:{image_id}", tracker, work)
        if owner_tracker is not tracker:
            tracker.operation_id = owner_tracker.operation_id
            tracker.scan_result_id = owner_tracker.scan_result_id
            tracker.finished = owner_tracker.finished
        assert isinstance(value, Obtained)
        return value

    def _obtain(self, image_id: str, tracker: ScanTracker, on_progress: ProgressCallback) -> Obtained:
        """Reuse a fresh READY result, join a RUNNING scan, or start one: in that order."""
        notes: list[str] = []
        max_age = self.policy.reuse_max_age
        if max_age:
            last = self.scanner.last_result(image_id, self.deadline)
            fresh, note = self._freshness(last, max_age)
            notes.append(note)
            if fresh and last is not None:
                tracker.scan_result_id, tracker.finished = last.id, True
                return Obtained(last, "reused", tuple(notes))
        running = self.scanner.running_scan(image_id, self.deadline)
        if running is not None:
            notes.append(f"joined scan {running}, already running for image {image_id}: no new scan was started")
            result = self.scanner.join_scan(running, image_id, self.deadline, tracker=tracker, on_progress=on_progress)
            return Obtained(result, "joined", tuple(notes))
        result = self.scanner.scan(image_id, self.deadline, tracker=tracker, on_progress=on_progress)
        return Obtained(result, "scanned", tuple(notes))

    def _freshness(self, last: ScanResult | None, max_age: dt.timedelta) -> tuple[bool, str]:
        """Whether the last READY result may be reused, and a note saying why (not)."""
        limit = _duration(max_age)
        if last is None:
            return False, f"no READY scan result to reuse (reuse.max_age {limit}): scanning"
        if last.scanned_at is None:
            return False, f"last scan result {last.id} has no scan time, so its age is unknown: scanning"
        age = self.now() - last.scanned_at
        if age < dt.timedelta(0):
            return False, (
                f"last scan result {last.id} is dated {_duration(-age)} in the future (clock skew?); "
                "its age cannot be trusted: scanning"
            )
        if age > max_age:
            return False, f"last scan result {last.id} is {_duration(age)} old, older than {limit}: scanning"
        return True, f"reused scan result {last.id} from {_duration(age)} ago (reuse.max_age {limit}): no new scan"

    def _baseline(self, warnings: list[str]) -> BaselineKeys | None:
        """The (CVE, package) pairs of the baseline image, obtained once; None when missing: pass."""
        spec = self.policy.baseline
        assert spec is not None

        def work() -> object:
            try:
                return self._obtain_baseline(spec.image)
            except (ScanError, ScanTimeoutError) as error:
                if spec.missing == "pass":
                    return error
                raise ScanError(
                    f"baseline {spec.image} could not be obtained, so new findings cannot be told apart "
                    f"(set 'baseline.missing: pass' to judge without it): {error}"
                ) from None

        value, _ = self._once("baseline", ScanTracker(), work)
        if isinstance(value, BaseException):
            warnings.append(f"baseline {spec.image} could not be obtained ({value}); judged without a baseline")
            return None
        assert isinstance(value, frozenset)
        return value

    def _obtain_baseline(self, ref_text: str) -> BaselineKeys:
        ref = parse_image_ref(ref_text)
        image_id = self.scanner.resolve_image(ref, self.deadline)
        result = self.scanner.last_result(image_id, self.deadline)
        origin = "last READY result"
        if result is None:
            obtained = self._obtain_once(image_id, ScanTracker(image_id=image_id), lambda state, sid: None)
            result, origin = obtained.result, obtained.origin
        findings = self._findings_of(result)
        self.baseline_info = {
            "ref": ref_text,
            "image_id": image_id,
            "scan_result_id": result.id,
            "origin": origin,
            "pairs": sorted({finding_key(f) for f in findings}),
        }
        return frozenset(finding_key(f) for f in findings)


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size, least in (("d", 86400, 2), ("h", 3600, 1), ("m", 60, 1)):
        if seconds >= least * size and seconds % size == 0:  # 24h stays 24h; 48h reads 2d
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


def _describe(counts: SeverityCounts) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.as_dict().items()) + f" (total {counts.total})"


def _error_state(error: ErrorInfo) -> str:
    return "timeout" if error.kind == "timeout" else "interrupted" if error.kind == "interrupted" else "error"


def error_info(error: BaseException) -> ErrorInfo:
    """The plain description of an image's error that reports carry."""
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
