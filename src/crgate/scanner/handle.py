"""A scan being waited on: the state of one long-running scan lives here, not in its callers.

Modelled on google api-core's ``operation.Operation``: the handle keeps what the server has revealed
(operation id, scan result id, polls, the final result) and waits with an injected ``refresh`` (one
unbilled read: ``OperationService.Get`` for a scan crgate started, ``ScannerService.Get`` for one it
joined), an immutable poll policy and a sleep that wakes on Ctrl-C. Every snapshot is checked against
what the handle already knows, so a server that switches operations or results mid-wait fails closed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from crgate.errors import MalformedResponseError, ScanError, ScanFailedError, ScanTimeoutError
from crgate.model import ImageState, ProgressCallback, ScanResult
from crgate.timing import Deadline, PollPolicy

log = logging.getLogger("crgate.scanner")


@dataclass(frozen=True)
class Snapshot:
    """One answer about a scan: its ids as the server names them, and the READY result once done."""

    operation_id: str | None
    scan_result_id: str | None
    result: ScanResult | None = None
    poll_hint: float | None = None
    """Seconds the server asks crgate to wait before the next poll (``x-operation-poll-interval``)."""
    method: str = ""
    request_ids: tuple[str, ...] = ()


Refresh = Callable[["ScanHandle", Deadline], "Snapshot | None"]
"""One poll: a snapshot, or None when there is nothing to learn yet (e.g. not visible to Get yet)."""


class ScanHandle:
    """One scan of ``image_id``: crgate's own (``operation_id`` set) or another's it joined."""

    def __init__(
        self,
        image_id: str,
        first: Snapshot,
        *,
        refresh: Refresh,
        sleep: Callable[[float], None],
        poll_policy: PollPolicy,
        rng: random.Random,
    ):
        self.image_id = image_id
        self.operation_id: str | None = None
        self.scan_result_id: str | None = None
        self.polls = 0
        self._refresh = refresh
        self._sleep = sleep
        self._poll_policy = poll_policy
        self._rng = rng
        self._result: ScanResult | None = None
        self._failed = False
        self._hint: float | None = None
        self._record(first)

    @property
    def done(self) -> bool:
        """True once the server said the scan is over: READY, or failed (``result`` raised for it)."""
        return self._result is not None or self._failed

    @property
    def joined(self) -> bool:
        """True for a scan someone else started (there is no operation of crgate's to follow)."""
        return self.operation_id is None

    def result(self, deadline: Deadline, on_progress: ProgressCallback | None = None) -> ScanResult:
        """Wait for the READY result: poll by the policy, the deadline checked before every sleep.

        Raises ScanError (the scan failed), MalformedResponseError (an inconsistent answer),
        ScanTimeoutError (``deadline`` passed; the scan may still finish) or InterruptedRunError.
        """
        notify = on_progress or (lambda state, scan_result_id: None)
        notify(ImageState.SCANNING, self.scan_result_id)
        waited_from = deadline.elapsed()
        while self._result is None:
            remaining = deadline.remaining()
            if remaining > 0:
                waited = deadline.elapsed() - waited_from
                interval = self._poll_policy.interval(self.polls + 1, waited, self._rng, self._hint)
                self._sleep(min(interval, remaining))
            if deadline.expired():
                raise self._still_running(deadline)
            self.polls += 1
            try:
                snapshot = self._refresh(self, deadline)
            except ScanTimeoutError:
                raise self._still_running(deadline) from None
            except ScanError as error:
                self.scan_result_id = self.scan_result_id or error.scan_result_id
                # Only the scanner's own verdict ends the scan; a failed call or a malformed answer does not.
                self._failed = isinstance(error, ScanFailedError)
                raise
            if snapshot is not None:
                self._record(snapshot)
            notify(ImageState.SCANNING, self.scan_result_id)
        return self._result

    def _record(self, snapshot: Snapshot) -> None:
        """Take a snapshot in, refusing one that contradicts what the server said before."""

        def malformed(why: str) -> MalformedResponseError:
            return MalformedResponseError(
                why,
                method=snapshot.method or None,
                request_ids=snapshot.request_ids,
                scan_result_id=self.scan_result_id,
            )

        if self.operation_id and snapshot.operation_id != self.operation_id:
            raise malformed(f"asked for operation {self.operation_id} but got operation {snapshot.operation_id}")
        if self.scan_result_id and snapshot.scan_result_id and snapshot.scan_result_id != self.scan_result_id:
            raise malformed(
                f"operation {snapshot.operation_id or '(joined scan)'} changed its scan result from "
                f"{self.scan_result_id} to {snapshot.scan_result_id}"
            )
        self.operation_id = self.operation_id or snapshot.operation_id
        self.scan_result_id = snapshot.scan_result_id or self.scan_result_id
        self._hint = snapshot.poll_hint
        if snapshot.result is not None:
            self._result = snapshot.result

    def _still_running(self, deadline: Deadline) -> ScanTimeoutError:
        what = f"operation {self.operation_id}" if self.operation_id else f"scan {self.scan_result_id}"
        message = (
            f"timed out after {deadline.seconds:g}s waiting for the scan of image {self.image_id}: "
            f"{what} was still running"
        )
        if self.scan_result_id:
            message += f"; scan result id {self.scan_result_id} (it may still finish: look it up later)"
        return ScanTimeoutError(message, scan_result_id=self.scan_result_id, operation_id=self.operation_id)
