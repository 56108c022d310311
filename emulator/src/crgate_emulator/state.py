"""The emulator's mutable state: scans, operations, idempotency keys and fault scripts, behind one lock.

Time is lazy: a scan is done once ``clock()`` passes its start plus ``duration``; nothing runs in the
background. Wall-clock timestamps are derived from the same clock, so an injected clock drives both.
Everything handed out is an immutable view; protobuf shapes (and anomalies) are ``wire``'s job.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from crgate_emulator.rpc import GrpcAbort, not_found
from crgate_emulator.scenario import Fault, Image, OperationError, Scenario

# Anomalies that shape the ScanResult itself, so they also show on a pre-existing ``last_result``.
RESULT_ANOMALIES = frozenset({"missing_stats", "negative_count", "wrong_image_id", "stats_mismatch"})
CANCELLED_ERROR = OperationError(code="CANCELLED", message="operation cancelled by the client")
_ID_ALPHABET = string.ascii_lowercase[:22] + string.digits  # Yandex ids: lowercase, 20 characters


def new_id(prefix: str) -> str:
    """A random Yandex-shaped id of 20 characters starting with ``prefix``."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20 - len(prefix)))


@dataclass(frozen=True)
class ScanView:
    """A scan result as clients see it now. ``status`` already reflects ``running_status_when_done``."""

    id: str
    image: Image
    status: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    done: bool
    error: OperationError | None
    anomaly: str | None

    @property
    def finished(self) -> bool:
        """Finished as ``GetLast`` understands it: done and not claiming to run."""
        return self.done and self.status != "RUNNING"


@dataclass(frozen=True)
class OperationView:
    """A scan operation as clients see it now."""

    id: str
    scan: ScanView
    created_at: dt.datetime
    modified_at: dt.datetime

    @property
    def done(self) -> bool:
        return self.scan.done


@dataclass(frozen=True)
class ScanStart:
    """What ``start_scan`` did: the operation, whether a scan was created (False: an idempotent repeat),
    how many scans started through ``Scan`` now run (all clouds), and the quota slots of the image's cloud
    in use (other clients' and pre-existing scans included)."""

    operation: OperationView
    created: bool
    running: int
    cloud_id: str = ""
    in_use: int = 0


class QuotaRefused(GrpcAbort):
    """A ``Scan`` past its cloud's quota: nothing was created."""

    def __init__(self, code: grpc.StatusCode, message: str, cloud_id: str, in_use: int):
        super().__init__(code, message)
        self.cloud_id = cloud_id
        self.in_use = in_use


@dataclass
class _Scan:
    id: str
    image: Image
    start: float  # clock() seconds
    duration: float
    anomaly: str | None
    from_scan: bool = True
    status: str | None = None  # fixed end status (pre-existing results); None = the image's
    cancelled_at: float | None = None
    age: float = 0.0  # seconds its timestamps are shifted into the past (negative: the future)

    def end(self) -> float:
        return self.start + self.duration if self.cancelled_at is None else self.cancelled_at


@dataclass
class _Operation:
    id: str
    scan_id: str
    idempotency_key: str
    not_found_left: int


class EmulatorState:
    """Thread-safe scan bookkeeping for one scenario."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float] = time.monotonic):
        self.scenario = scenario
        self._clock = clock
        self._lock = threading.Lock()
        self._origin = clock()
        self._origin_wall = dt.datetime.now(dt.timezone.utc)
        self._images = {image.id: image for image in scenario.images()}
        self._cloud_of_image = {image.id: scenario.cloud_of(image).id for image in self._images.values()}
        self._scans: dict[str, _Scan] = {}
        self._scans_of: dict[str, list[_Scan]] = {}  # image id -> its scans: audits of 10,000 images read them
        self._operations: dict[str, _Operation] = {}
        self._by_key: dict[str, str] = {}
        self._crowded_until: dict[str, float] = {}  # cloud id -> clock() until other clients fill its quota
        self._faults_left: dict[str | None, list[int]] = {None: [f.count for f in scenario.faults]}
        for image in self._images.values():
            self._faults_left[image.id] = [f.count for f in image.scan.faults]
            last = image.scan.last_result
            if last is not None:
                anomaly = image.scan.anomaly if image.scan.anomaly in RESULT_ANOMALIES else None
                scan = _Scan(
                    id=new_id("crgsr"),
                    image=image,
                    start=self._origin,
                    duration=0.0,
                    anomaly=anomaly,
                    from_scan=False,
                    status=last.status,
                    age=last.age_seconds,
                )
                self._add(scan)
            running = image.scan.running_scan
            if running is not None:  # e.g. started by the registry's scan-on-push before crgate came
                scan = _Scan(
                    id=new_id("crgsr"),
                    image=image,
                    start=self._origin,
                    duration=running.remaining_seconds,
                    anomaly=image.scan.anomaly if image.scan.anomaly in RESULT_ANOMALIES else None,
                    from_scan=False,
                )
                self._add(scan)

    def _add(self, scan: _Scan) -> None:
        self._scans[scan.id] = scan
        self._scans_of.setdefault(scan.image.id, []).append(scan)

    @property
    def started_at(self) -> dt.datetime:
        """Wall-clock time the state was created (default ``Image.created_at``)."""
        return self._origin_wall

    def _wall(self, instant: float) -> dt.datetime:
        return self._origin_wall + dt.timedelta(seconds=instant - self._origin)

    # ------------------------------------------------------------------------------------------ images

    def image(self, image_id: str) -> Image:
        image = self._images.get(image_id)
        if image is None:
            raise not_found(f"Image {image_id} not found")
        return image

    def images(self, *, registry_id: str = "", repository_name: str = "", folder_id: str = "") -> list[Image]:
        """Images of a registry, repository or folder (every registry in it); empty for unknown ones (as
        Yandex answers)."""
        in_folder = {r.id for r in self.scenario.registries if r.folder_id == folder_id} if folder_id else None
        return [
            image
            for image in self._images.values()
            if (not registry_id or image.registry_id == registry_id)
            and (not repository_name or image.repository_name == repository_name)
            and (in_folder is None or image.registry_id in in_folder)
        ]

    # ----------------------------------------------------------------------------------------- scans

    def start_scan(self, image_id: str, idempotency_key: str = "") -> ScanStart:
        """Start a scan, or find the one this idempotency key started (even while the quota is full: a
        repeat creates nothing). ``QuotaRefused`` when the image's cloud has no free slot."""
        image = self.image(image_id)
        cloud = self.scenario.cloud_of(image)
        with self._lock:
            now = self._clock()
            if idempotency_key and idempotency_key in self._by_key:
                operation = self._operations[self._by_key[idempotency_key]]
                if self._scans[operation.scan_id].image.id != image_id:
                    raise GrpcAbort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "idempotency-key was already used for a request with different parameters",
                    )
                view = self._operation_view(operation, now)
                return ScanStart(view, False, self._running(now), cloud.id, self._in_use(cloud.id, now))
            limit = cloud.quota.limit
            in_use = self._in_use(cloud.id, now)
            if limit is not None and in_use >= limit:
                code = grpc.StatusCode[cloud.quota.code]
                raise QuotaRefused(code, cloud.quota.refusal_message(), cloud.id, in_use)
            running = self._running(now)
            scan = _Scan(
                id=new_id("crgsr"),
                image=image,
                start=now,
                duration=image.scan.duration,
                anomaly=image.scan.anomaly,
            )
            operation = _Operation(
                id=new_id("crgop"),
                scan_id=scan.id,
                idempotency_key=idempotency_key,
                not_found_left=image.scan.operation_not_found,
            )
            self._add(scan)
            self._operations[operation.id] = operation
            if idempotency_key:
                self._by_key[idempotency_key] = operation.id
            return ScanStart(self._operation_view(operation, now), True, running + 1, cloud.id, in_use + 1)

    def _running(self, now: float) -> int:
        """Scans started through ``Scan`` that still run, in every cloud."""
        return sum(1 for scan in self._scans.values() if scan.from_scan and scan.end() > now)

    def _in_use(self, cloud_id: str, now: float) -> int:
        """Quota slots of a cloud in use: its running scans, whoever started them, and other clients'."""
        own = sum(
            1 for scan in self._scans.values() if scan.end() > now and self._cloud_of_image[scan.image.id] == cloud_id
        )
        quota = self.scenario.cloud(cloud_id).quota
        crowd = (quota.limit or 0) if now < self._crowded_until.get(cloud_id, now) else 0
        return own + quota.others_running(now - self._origin) + crowd

    def quota_limited(self, image_id: str | None) -> bool:
        """Whether the image's cloud has a quota at all (chaos can only fill a limited one)."""
        cloud_id = self._cloud_of_image.get(image_id or "")
        return cloud_id is not None and self.scenario.cloud(cloud_id).quota.limit is not None

    def crowd(self, image_id: str, seconds: float) -> None:
        """Other clients fill every slot of the image's cloud for ``seconds`` (chaos mode's quota fault)."""
        with self._lock:
            cloud_id = self._cloud_of_image[image_id]
            until = self._clock() + seconds
            self._crowded_until[cloud_id] = max(until, self._crowded_until.get(cloud_id, until))

    def quota_in_use(self, cloud_id: str) -> int:
        """Quota slots of ``cloud_id`` in use now (for tests and logs)."""
        with self._lock:
            return self._in_use(cloud_id, self._clock())

    def operation(self, operation_id: str) -> OperationView:
        """``OperationService.Get``: NOT_FOUND for the first ``operation_not_found`` reads of a new one."""
        with self._lock:
            operation = self._get_operation(operation_id)
            if operation.not_found_left > 0:
                operation.not_found_left -= 1
                raise not_found(f"Operation {operation_id} not found")
            return self._operation_view(operation, self._clock())

    def cancel(self, operation_id: str) -> OperationView:
        """Cancel a running scan: done with error CANCELLED, scan status ERROR. Done ones are unchanged."""
        with self._lock:
            operation = self._get_operation(operation_id)
            scan = self._scans[operation.scan_id]
            now = self._clock()
            if scan.end() > now:
                scan.cancelled_at = now
            return self._operation_view(operation, now)

    def scan_result(self, scan_result_id: str) -> ScanView:
        with self._lock:
            scan = self._scans.get(scan_result_id)
            if scan is None:
                raise not_found(f"Scan result {scan_result_id} not found")
            return self._scan_view(scan, self._clock())

    def last_scan_result(self, image_id: str) -> ScanView:
        """The most recently finished scan result of an image."""
        self.image(image_id)
        with self._lock:
            now = self._clock()
            views = [self._scan_view(scan, now) for scan in self._scans_of.get(image_id, ())]
            finished = [v for v in views if v.finished]
        if not finished:
            raise not_found(f"No finished scan results for image {image_id}")
        return max(finished, key=lambda v: v.finished_at or v.created_at)

    def scan_results(self, *, image_id: str = "", repository_id: str = "", status: str | None = None) -> list[ScanView]:
        """Scan results of an image or a repository, newest first, optionally of one status."""
        repository = self.scenario.repository(repository_id) if repository_id else None
        wanted = {image_id} if image_id else {image.id for image in repository.images} if repository else set()
        with self._lock:
            now = self._clock()
            scans = [scan for image in sorted(wanted) for scan in self._scans_of.get(image, ())]
            views = [v for v in (self._scan_view(scan, now) for scan in scans) if status in (None, v.status)]
        return sorted(views, key=lambda v: v.created_at, reverse=True)

    # ---------------------------------------------------------------------------------- fault scripts

    def take_fault(self, method: str, image_id: str | None) -> Fault | None:
        """Consume one unit of the fault scripts for this call; the fault to answer with, if any."""
        with self._lock:
            fault = self._take(None, self.scenario.faults, method)
            if fault is None and image_id in self._images:
                fault = self._take(image_id, self._images[image_id].scan.faults, method)
            return fault

    def _take(self, key: str | None, faults: tuple[Fault, ...], method: str) -> Fault | None:
        left = self._faults_left[key]
        for index, fault in enumerate(faults):
            if fault.method == method and left[index] > 0:
                left[index] -= 1
                return None if fault.code == "OK" else fault
        return None

    def image_of_operation(self, operation_id: str) -> str | None:
        with self._lock:
            operation = self._operations.get(operation_id)
            return self._scans[operation.scan_id].image.id if operation else None

    def image_of_scan(self, scan_result_id: str) -> str | None:
        with self._lock:
            scan = self._scans.get(scan_result_id)
            return scan.image.id if scan else None

    # ----------------------------------------------------------------------------------------- views

    def _get_operation(self, operation_id: str) -> _Operation:
        operation = self._operations.get(operation_id)
        if operation is None:
            raise not_found(f"Operation {operation_id} not found")
        return operation

    def _scan_view(self, scan: _Scan, now: float) -> ScanView:
        done = now >= scan.end()
        behaviour = scan.image.scan
        error = None
        if scan.cancelled_at is not None:
            status, error = "ERROR", CANCELLED_ERROR
        elif not done or scan.anomaly == "running_status_when_done":
            status = "RUNNING"
        else:
            status = scan.status or behaviour.status
            error = behaviour.operation_error if scan.from_scan else None
        return ScanView(
            id=scan.id,
            image=scan.image,
            status=status,
            created_at=self._wall(scan.start - scan.age),
            finished_at=self._wall(scan.end() - scan.age) if done else None,
            done=done,
            error=error,
            anomaly=scan.anomaly,
        )

    def _operation_view(self, operation: _Operation, now: float) -> OperationView:
        scan = self._scans[operation.scan_id]
        view = self._scan_view(scan, now)
        return OperationView(
            id=operation.id,
            scan=view,
            created_at=view.created_at,
            modified_at=view.finished_at or view.created_at,
        )
