"""Obtain each image's READY result once per run, never billing a scan twice.

In order: reuse a fresh enough READY result (``reuse.max_age``), join a scan already RUNNING for the
image (scan-on-push, another pipeline), or start one. Targets that resolve to the same image share one
result; the baseline image is obtained once. Findings are checked against the result's statistics.

Knows nothing of gRPC: it drives any ``crgate.interface.Scanner``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from crgate.durations import format_age, format_duration
from crgate.errors import InterruptedRunError, MalformedResponseError, ScanError, ScanTimeoutError
from crgate.findings import BaselineKeys, finding_key, recount
from crgate.images import parse_image_ref
from crgate.interface import ScanHandle, Scanner
from crgate.model import BaselineInfo, Finding, Origin, Policy, ProgressCallback, ScanResult, SeverityCounts
from crgate.timing import Deadline

T = TypeVar("T")


@dataclass(frozen=True)
class Obtained:
    """A READY result, how it was obtained, and the notes that explain it."""

    result: ScanResult
    origin: Origin
    polls: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnfinishedScan:
    """A scan of this run that had not finished when the run stopped."""

    image_id: str
    operation_id: str | None
    scan_result_id: str | None
    confirmed: bool
    """True when the server confirmed the scan; False when the Scan call was still in flight, so a scan
    may or may not have been started."""


@dataclass
class _Shared(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None


class _OncePerKey(Generic[T]):
    """Runs work once per key; other threads wait for (and share) its value or its error."""

    def __init__(self, cancel: threading.Event):
        self._cancel = cancel
        self._lock = threading.Lock()
        self._shared: dict[str, _Shared[T]] = {}

    def get(self, key: str, work: Callable[[], T]) -> T:
        with self._lock:
            shared = self._shared.get(key)
            owner = shared is None
            if shared is None:
                shared = self._shared[key] = _Shared()
        if owner:
            try:
                shared.value = work()
            except BaseException as error:
                shared.error = error
                raise
            finally:
                shared.done.set()
        while not shared.done.wait(0.2):
            if self._cancel.is_set():
                raise InterruptedRunError("interrupted while waiting for work shared with another image")
        if shared.error is not None:
            raise shared.error
        assert shared.value is not None
        return shared.value


class Obtainer:
    """Obtains results for one run; safe to call from many worker threads."""

    def __init__(
        self,
        scanner: Scanner,
        policy: Policy,
        deadline: Deadline,
        *,
        cancel: threading.Event,
        now: Callable[[], dt.datetime],
    ):
        self._scanner = scanner
        self._policy = policy
        self._deadline = deadline
        self._now = now
        self._results: _OncePerKey[Obtained] = _OncePerKey(cancel)
        self._baselines: _OncePerKey[BaselineKeys | BaseException] = _OncePerKey(cancel)
        self._lock = threading.Lock()
        self._scans: dict[str, ScanHandle | None] = {}
        """Image id -> the handle of the scan this run started or joined; None while Scan is in flight."""
        self.baseline: BaselineInfo | None = None

    def result_for(self, image_id: str, on_progress: ProgressCallback) -> Obtained:
        """The READY result for ``image_id``, obtained once per run however many targets name it."""
        return self._results.get(f"image:{image_id}", lambda: self._obtain(image_id, on_progress))

    def scan_of(self, image_id: str) -> ScanHandle | None:
        """The scan this run started or joined for the image, if any (its ids explain an error)."""
        with self._lock:
            return self._scans.get(image_id)

    def unfinished_scans(self) -> list[UnfinishedScan]:
        """Scans started or joined by this run that have no result, and Scan calls still in flight."""
        with self._lock:
            scans = list(self._scans.items())
        unfinished = []
        for image_id, handle in scans:
            if handle is None:
                unfinished.append(UnfinishedScan(image_id, None, None, confirmed=False))
            elif not handle.done:
                unfinished.append(UnfinishedScan(image_id, handle.operation_id, handle.scan_result_id, confirmed=True))
        return unfinished

    def findings_of(self, result: ScanResult) -> tuple[Finding, ...]:
        """The findings of a READY result, checked against its statistics (fail closed on a mismatch)."""
        findings = self._scanner.list_findings(result.id, self._deadline, result.counts.total)
        listed = recount(findings)
        if listed != result.counts:
            raise MalformedResponseError(
                f"inconsistent answer for scan result {result.id}: the scan's statistics say "
                f"{_describe(result.counts)} but ListVulnerabilities listed {_describe(listed)}",
                method="ScannerService.ListVulnerabilities",
                scan_result_id=result.id,
            )
        return findings

    def baseline_keys(self, warnings: list[str]) -> BaselineKeys | None:
        """The (CVE, package) pairs of the policy's baseline image, obtained once per run.

        None (with a warning) when it cannot be obtained and the policy says ``missing: pass``.
        """
        spec = self._policy.baseline
        assert spec is not None

        def work() -> BaselineKeys | BaseException:
            try:
                return self._obtain_baseline(spec.image)
            except (ScanError, ScanTimeoutError) as error:
                if spec.missing == "pass":
                    return error
                raise ScanError(
                    f"baseline {spec.image} could not be obtained, so new findings cannot be told apart "
                    f"(set 'baseline.missing: pass' to judge without it): {error}"
                ) from None

        value = self._baselines.get("baseline", work)
        if isinstance(value, BaseException):
            warnings.append(f"baseline {spec.image} could not be obtained ({value}); judged without a baseline")
            return None
        return value

    # -- internals ----------------------------------------------------------------------------

    def _obtain(self, image_id: str, on_progress: ProgressCallback) -> Obtained:
        """Reuse a fresh READY result, join a RUNNING scan, or start one: in that order."""
        notes: list[str] = []
        max_age = self._policy.reuse_max_age
        if max_age:
            last = self._scanner.last_result(image_id, self._deadline)
            fresh, note = self._freshness(last, max_age)
            notes.append(note)
            if fresh and last is not None:
                return Obtained(last, Origin.REUSED, 0, tuple(notes))
        running = self._scanner.running_scan(image_id, self._deadline)
        if running is not None:
            notes.append(f"joined scan {running}, already running for image {image_id}: no new scan was started")
            handle = self._scanner.join(running, image_id)
            origin = Origin.JOINED
        else:
            with self._lock:
                self._scans[image_id] = None
            handle = self._scanner.start_scan(image_id, self._deadline)
            origin = Origin.SCANNED
        with self._lock:
            self._scans[image_id] = handle
        result = handle.result(self._deadline, on_progress)
        return Obtained(result, origin, handle.polls, tuple(notes))

    def _freshness(self, last: ScanResult | None, max_age: dt.timedelta) -> tuple[bool, str]:
        """Whether the last READY result may be reused, and a note saying why (not)."""
        limit = format_duration(max_age)
        if last is None:
            return False, f"no READY scan result to reuse (reuse.max_age {limit}): scanning"
        if last.scanned_at is None:
            return False, f"last scan result {last.id} has no scan time, so its age is unknown: scanning"
        age = self._now() - last.scanned_at
        if age < dt.timedelta(0):
            return False, (
                f"last scan result {last.id} is dated {format_age(-age)} in the future (clock skew?); "
                "its age cannot be trusted: scanning"
            )
        if age > max_age:
            return False, f"last scan result {last.id} is {format_age(age)} old, older than {limit}: scanning"
        return True, f"reused scan result {last.id} from {format_age(age)} ago (reuse.max_age {limit}): no new scan"

    def _obtain_baseline(self, ref_text: str) -> BaselineKeys:
        ref = parse_image_ref(ref_text)
        image_id = self._scanner.resolve_image(ref, self._deadline)
        result = self._scanner.last_result(image_id, self._deadline)
        origin = "last READY result"
        if result is None:
            obtained = self.result_for(image_id, lambda state, scan_result_id: None)
            result, origin = obtained.result, str(obtained.origin)
        findings = self.findings_of(result)
        pairs = tuple(sorted({finding_key(f) for f in findings}))
        self.baseline = BaselineInfo(ref_text, image_id, result.id, origin, pairs)
        return frozenset(pairs)


def _describe(counts: SeverityCounts) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.as_dict().items()) + f" (total {counts.total})"
