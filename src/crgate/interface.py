"""The seams of the core: what a run needs from the registry, the scanner, and whoever shows progress.

The real implementations are ``crgate.registry.RegistryClient`` (the OCI distribution API over HTTP),
``crgate.scanner.client.ScannerClient`` (gRPC) and ``crgate.progress``; unit tests pass fakes of these
protocols (pip-audit's ``_service/interface.py`` is the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from crgate.model import Finding, ImageRef, ImageState, ProgressCallback, ScanResult
from crgate.registry.index import Platform, Resolved
from crgate.timing import Deadline


class Registry(Protocol):
    """What a run needs from the registry: which images a reference names, read from its manifest."""

    def resolve(self, ref: ImageRef, deadline: Deadline, platforms: Sequence[Platform] = ()) -> Resolved:
        """The verified manifest behind ``ref``: one image, or the platform images of an index."""
        ...


class ScanHandle(Protocol):
    """One scan being waited on; its state lives inside it (``crgate.scanner.handle.ScanHandle``)."""

    image_id: str
    operation_id: str | None
    """None for a scan someone else started (joined): crgate has no operation of its own to follow."""
    scan_result_id: str | None
    polls: int

    @property
    def done(self) -> bool: ...

    def result(self, deadline: Deadline, on_progress: ProgressCallback | None = None) -> ScanResult: ...


class Scanner(Protocol):
    """What a run needs from the registry's scanner."""

    def find_images(self, ref: ImageRef, digests: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """Image ids of the manifests ``digests`` in ``ref``'s repository; an unknown digest is left out."""
        ...

    def start_scan(self, image_id: str, deadline: Deadline, *, idempotency_key: str | None = None) -> ScanHandle:
        """Start (and be billed for) one scan; a repeat of the call under retries never starts two.
        ``idempotency_key`` resumes an earlier call that may have started it (``ScanQuotaError.resume_key``)."""
        ...

    def join(self, scan_result_id: str, image_id: str) -> ScanHandle:
        """A handle on a scan that is already running (started by someone else)."""
        ...

    def running_scan(self, image_id: str, deadline: Deadline) -> str | None:
        """The scan result id of a RUNNING scan of the image, if there is one."""
        ...

    def last_result(self, image_id: str, deadline: Deadline) -> ScanResult | None:
        """The image's last finished result when it is READY."""
        ...

    def list_findings(self, scan_result_id: str, deadline: Deadline, expected: int | None) -> tuple[Finding, ...]:
        """Every finding of a READY result; paging may stop once more than ``expected`` (if known) are listed."""
        ...


class ProgressSink(Protocol):
    """Receives every state change of each image (``crgate.progress`` draws them)."""

    def update(self, ref: str, state: ImageState, scan_result_id: str | None = None) -> None: ...
