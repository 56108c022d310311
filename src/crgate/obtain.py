"""Obtain each image's READY result once per run, never billing a scan twice.

In order: reuse a fresh enough READY result (``reuse.max_age``), join a scan already RUNNING for the
image (scan-on-push, another pipeline), or start one. Targets that resolve to the same image share one
result; the baseline image is obtained once. Findings are checked against the result's statistics.

Knows nothing of gRPC: it drives any ``crgate.interface.Scanner``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from crgate.durations import format_age, format_duration
from crgate.errors import (
    ConfigError,
    InterruptedRunError,
    MalformedResponseError,
    ScanError,
    ScanQuotaError,
    ScanTimeoutError,
    UnsupportedCallError,
)
from crgate.findings import BaselineKeys, finding_key, recount
from crgate.images import parse_image_ref
from crgate.interface import ScanHandle, Scanner
from crgate.model import (
    BaselineInfo,
    Finding,
    ImageSource,
    ImageState,
    Origin,
    Policy,
    ProgressCallback,
    ScanResult,
    SeverityCounts,
    Target,
)
from crgate.slots import ScanSlots
from crgate.timing import SLOT_BACKOFF, Deadline

log = logging.getLogger("crgate.obtain")


class ResolvedRow(Protocol):
    """One image a reference resolved to (``runner.Row``): its id, or why it has none."""

    @property
    def image_id(self) -> str | None: ...

    @property
    def failure(self) -> BaseException | None: ...

    @property
    def source(self) -> ImageSource | None: ...


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
        concurrency: int,
        resolve: Callable[[Target], Sequence[ResolvedRow]] | None = None,
        rng: random.Random | None = None,
    ):
        self._scanner = scanner
        self._policy = policy
        self._deadline = deadline
        self._cancel = cancel
        self._now = now
        self._rng = rng or random.Random()
        self._resolve = resolve
        self.slots = ScanSlots(concurrency, cancel)
        self._quota_warned = threading.Event()
        self._results: _OncePerKey[Obtained] = _OncePerKey(cancel)
        self._baselines: _OncePerKey[BaselineKeys | BaseException] = _OncePerKey(cancel)
        self._baseline_rows: _OncePerKey[tuple[ResolvedRow, ...]] = _OncePerKey(cancel)
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

    def findings_of(self, result: ScanResult) -> tuple[ScanResult, tuple[Finding, ...]]:
        """The findings of a READY result, checked against its statistics (fail closed on a mismatch).

        A result without statistics is returned with the counts of its listed findings.
        """
        if result.statistics_missing:
            findings = self._scanner.list_findings(result.id, self._deadline, None)
            return dataclasses.replace(result, counts=recount(findings)), findings
        findings = self._scanner.list_findings(result.id, self._deadline, result.counts.total)
        listed = recount(findings)
        if listed != result.counts:
            raise MalformedResponseError(
                f"inconsistent answer for scan result {result.id}: the scan's statistics say "
                f"{_describe(result.counts)} but ListVulnerabilities listed {_describe(listed)}",
                method="ScannerService.ListVulnerabilities",
                scan_result_id=result.id,
            )
        return result, findings

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

    def refuse_self_baseline(self, label: str, image_id: str | None, source: ImageSource | None) -> None:
        """ConfigError (exit 2) when the policy's baseline resolves to the image ``label`` gates: the same
        image id or manifest, a platform image of it, or its index. A baseline of itself would hide every
        finding ("not counted: N in baseline"). Called before the image's result is obtained, so nothing is
        scanned or counted; a baseline that cannot be resolved is left to ``baseline_keys`` (its policy)."""
        spec = self._policy.baseline
        if spec is None:
            return
        try:
            rows = self._resolved_baseline(spec.image)
        except (ScanError, ScanTimeoutError):
            return
        baseline = {image_id for row in rows for image_id in _identity(row.image_id, row.source)}
        shared = sorted(baseline & _identity(image_id, source))
        if shared:
            raise ConfigError(
                f"the baseline is the image under test: baseline {spec.image} (policy {self._policy.source}, key "
                f"baseline.image) resolves to {shared[0]}, which this run gates as {label}; a baseline of the image "
                "itself counts none of its findings. Name an image that is already deployed (e.g. the production "
                "tag, pinned by digest) as the baseline, or remove 'baseline'"
            )

    # -- internals ----------------------------------------------------------------------------

    def _resolved_baseline(self, ref_text: str) -> tuple[ResolvedRow, ...]:
        """The baseline reference resolved to its rows, once per run (an error is shared the same way)."""
        assert self._resolve is not None
        resolve = self._resolve
        return self._baseline_rows.get(
            "rows", lambda: tuple(resolve(Target(label=ref_text, ref=parse_image_ref(ref_text))))
        )

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
        handle = self._join_running(image_id, notes)
        if handle is not None:
            return self._wait(handle, Origin.JOINED, notes, on_progress)
        self.slots.acquire(self._deadline, on_wait=lambda: on_progress(ImageState.WAITING_FOR_SLOT, None))
        handle = None
        try:
            handle = self._start_scan(image_id, notes, on_progress)
            origin = Origin.JOINED if handle.operation_id is None else Origin.SCANNED
            return self._wait(handle, origin, notes, on_progress)
        finally:
            self.slots.release(scan_ended=handle is not None and handle.done)

    def _wait(self, handle: ScanHandle, origin: Origin, notes: list[str], on_progress: ProgressCallback) -> Obtained:
        with self._lock:
            self._scans[handle.image_id] = handle
        result = handle.result(self._deadline, on_progress)
        return Obtained(result, origin, handle.polls, tuple(notes))

    def _join_running(self, image_id: str, notes: list[str]) -> ScanHandle | None:
        """A handle on a scan already RUNNING for the image, if the server can tell (an optimisation)."""
        try:
            running = self._scanner.running_scan(image_id, self._deadline)
        except UnsupportedCallError as error:
            if not any(note.startswith("could not look for a running scan") for note in notes):
                notes.append(f"could not look for a running scan to join ({error}): scanning")
                log.warning("image %s: %s", image_id, notes[-1])
            return None
        if running is None:
            return None
        notes.append(f"joined scan {running}, already running for image {image_id}: no new scan was started")
        return self._scanner.join(running, image_id)

    def _start_scan(self, image_id: str, notes: list[str], on_progress: ProgressCallback) -> ScanHandle:
        """Start a scan, holding a slot; while the cloud's quota is in use, wait for a free one.

        A refusal is never a failure by itself: the run lowers its own concurrency, backs off with jitter
        and asks again (a new call, so a new idempotency key: the refused call started nothing) until the
        deadline. Meanwhile someone else may start a scan of the image: that one is joined instead.
        """
        refusals = 0
        waited_from = self._deadline.elapsed()
        resume_key: str | None = None
        while True:
            with self._lock:
                self._scans[image_id] = None  # a Scan call is in flight: a scan may be starting
            try:
                handle = self._scanner.start_scan(image_id, self._deadline, idempotency_key=resume_key)
            except ScanQuotaError as refusal:
                # Refused: nothing was started by this call; but an earlier attempt under the same key may
                # have been (its answer lost), and then that key must be sent again, never a new one.
                resume_key = refusal.resume_key or resume_key
                with self._lock:
                    if resume_key is None:
                        del self._scans[image_id]
                refusals += 1
                self.slots.refused()
                self._pause_for_slot(image_id, refusals, refusal, waited_from, on_progress)
                joined = self._join_running(image_id, notes)
                if joined is not None:
                    return joined
                continue
            self.slots.accepted()
            if refusals:
                waited = self._deadline.elapsed() - waited_from
                notes.append(
                    f"waited {waited:.0f}s for a scan slot: the cloud's quota of concurrent scans was in use "
                    f"({refusals} refusal{'s' if refusals != 1 else ''})"
                )
            return handle

    def _pause_for_slot(
        self, image_id: str, refusals: int, refusal: ScanQuotaError, waited_from: float, on_progress: ProgressCallback
    ) -> None:
        if not self._quota_warned.is_set():
            self._quota_warned.set()
            log.warning(
                "waiting for a scan slot: the cloud's concurrent scans are in use (quota "
                "container-registry.parallelScans.count, 10 per cloud unless raised); waiting up to --timeout"
            )
        on_progress(ImageState.WAITING_FOR_SLOT, None)
        delay = SLOT_BACKOFF.delay(refusals, self._rng)
        if delay >= self._deadline.remaining():
            waited = self._deadline.elapsed() - waited_from
            raise ScanTimeoutError(
                f"timed out after {self._deadline.seconds:g}s: waited {waited:.0f}s for a scan slot for image "
                f"{image_id}, but the cloud's quota of concurrent scans stayed in use ({refusals} refusals; "
                f"last: {refusal})"
            )
        self.slots.pause(delay)

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
        rows = self._resolved_baseline(ref_text)
        if len(rows) != 1:
            raise ScanError(
                f"baseline {ref_text} is a multi-platform index of {len(rows)} platform images; name one of them "
                "(its @sha256 digest) as the baseline, or pass --platform"
            )
        if rows[0].failure is not None:
            raise rows[0].failure
        image_id = rows[0].image_id
        assert image_id is not None
        result = self._scanner.last_result(image_id, self._deadline)
        origin = "last READY result"
        if result is None:
            obtained = self.result_for(image_id, lambda state, scan_result_id: None)
            result, origin = obtained.result, str(obtained.origin)
        _, findings = self.findings_of(result)
        pairs = tuple(sorted({finding_key(f) for f in findings}))
        self.baseline = BaselineInfo(ref_text, image_id, result.id, origin, pairs)
        return frozenset(pairs)


def _identity(image_id: str | None, source: ImageSource | None) -> set[str]:
    """What names an image: its id, its manifest digest and the digest of the index it came from."""
    names = {image_id} if image_id else set()
    if source is not None:
        names.add(source.digest)
        if source.index_digest:
            names.add(source.index_digest)
    return names


def _describe(counts: SeverityCounts) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.as_dict().items()) + f" (total {counts.total})"
