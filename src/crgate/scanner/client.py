"""The scanner client: resolve image references, start or join scans, list findings.

Hands out only plain dataclasses (``crgate.model``), scan handles (``handle.py``: the waiting) and
crgate errors. Each snapshot is decoded by the pure, fail-closed ``decode.py``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_service_pb2,
    image_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from crgate._proto.yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc
from crgate.bulk import without_cycle_collection
from crgate.errors import (
    InterruptedRunError,
    MalformedResponseError,
    ScanQuotaError,
    UnsupportedCallError,
)
from crgate.model import Finding, ImageRef, LastScan, ListedImage, ScanResult
from crgate.scanner.calls import RETRYABLE, call_with_retries
from crgate.scanner.decode import (
    checked_id,
    decode_listed_image,
    decode_operation,
    decode_scan_result,
    decode_vulnerability,
)
from crgate.scanner.handle import Refresh, ScanHandle, Snapshot
from crgate.scanner.transport import Connection, RpcFailure
from crgate.textsafe import safe
from crgate.timing import Deadline, PollPolicy, RetryPolicy

log = logging.getLogger("crgate.scanner")

_C = grpc.StatusCode
# OperationService.Get may not know a fresh operation yet (eventual consistency right after Scan).
NOT_FOUND_AFTER_SCAN = 3
# Paging is bounded so that a server repeating tokens cannot keep crgate busy forever.
MAX_PAGES = 1000
PAGE_SIZE = 1000
POLL_INTERVAL_HEADER = "x-operation-poll-interval"


class _CallAhead:
    """One call made on a daemon thread of its own; ``result()`` waits for it and returns or raises what it
    did. A call whose result is never asked for (the caller stopped) ends on its own, within the deadline
    and per-call timeout every call has, and its result is dropped."""

    def __init__(self, call: Callable[[], tuple[Any, dict[str, str]]]):
        self._future: Future[tuple[Any, dict[str, str]]] = Future()
        threading.Thread(target=self._run, args=(call,), name="crgate-next-page", daemon=True).start()

    def _run(self, call: Callable[[], tuple[Any, dict[str, str]]]) -> None:
        try:
            self._future.set_result(call())
        except BaseException as error:  # handed to the caller by result()
            self._future.set_exception(error)

    def result(self) -> tuple[Any, dict[str, str]]:
        return self._future.result()


class ScannerClient:
    """Talks to ScannerService, OperationService and ImageService through one Connection."""

    def __init__(
        self,
        connection: Connection,
        *,
        poll_policy: PollPolicy | None = None,
        retry_policy: RetryPolicy | None = None,
        cancel: threading.Event | None = None,
        rng: random.Random | None = None,
    ):
        self._connection = connection
        self._poll_policy = poll_policy or PollPolicy()
        self._retry = retry_policy or RetryPolicy()
        self._cancel = cancel or threading.Event()
        self._rng = rng or random.Random()
        self._scanner = scanner_service_pb2_grpc.ScannerServiceStub(connection.channel("scanner"))
        self._images = image_service_pb2_grpc.ImageServiceStub(connection.channel("image"))
        self._operations = operation_service_pb2_grpc.OperationServiceStub(connection.channel("operation"))

    # -- waiting primitives -------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if self._cancel.wait(max(0.0, seconds)):
            raise InterruptedRunError("interrupted")

    def _check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise InterruptedRunError("interrupted")

    def _call(
        self,
        method: str,
        rpc: Any,
        request: Any,
        deadline: Deadline,
        *,
        extra_metadata: tuple[tuple[str, str], ...] = (),
        retryable: frozenset[grpc.StatusCode] = RETRYABLE,
    ) -> tuple[Any, dict[str, str]]:
        """A call with transient-failure retries, all inside the overall deadline; wakes on Ctrl-C."""
        return call_with_retries(
            self._connection,
            method,
            rpc,
            request,
            deadline,
            retry=self._retry,
            retryable=retryable,
            sleep=self._sleep,
            check_cancelled=self._check_cancelled,
            rng=self._rng,
            extra_metadata=extra_metadata,
        )

    # -- image resolution ---------------------------------------------------------------------

    def find_images(self, ref: ImageRef, digests: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """The image ids of the manifests ``digests`` in the repository of ``ref``, in one listing.

        A digest the image service does not list is left out (the caller names it). Two images with one
        digest, or an image of another repository, is a malformed answer.
        """
        wanted = set(digests)
        found: dict[str, set[str]] = {}
        try:
            for image in self._list_images(ref, deadline):
                if image.digest not in wanted:
                    continue
                if image.name and image.name != ref.repository_name:
                    raise MalformedResponseError(
                        f"ImageService.List for repository {ref.repository_name} returned an image of "
                        f"repository '{safe(image.name, 128)}' with digest {image.digest}",
                        method="ImageService.List",
                    )
                found.setdefault(image.digest, set()).add(checked_id(image.id, "image id", method="ImageService.List"))
        except RpcFailure as failure:
            raise failure.to_scan_error(f"could not list images of repository {ref.repository_name}") from None
        for digest, ids in found.items():
            if len(ids) > 1:
                distinct = sorted(ids)
                shown = ", ".join(distinct[:5]) + (f", ... and {len(distinct) - 5} more" if len(distinct) > 5 else "")
                raise MalformedResponseError(
                    f"image {ref.raw} is ambiguous: ImageService.List returned {len(distinct)} images with "
                    f"digest {digest} ({shown})",
                    method="ImageService.List",
                )
        return {digest: ids.pop() for digest, ids in found.items()}

    def list_images(
        self, deadline: Deadline, *, registry_id: str = "", repository_name: str = "", folder_id: str = ""
    ) -> Iterator[ListedImage]:
        """Every image of a registry, a repository (``<registry-id>/<name>``) or a folder (every registry in
        it), page by page (1000 a page, at most MAX_PAGES pages), each entry decoded and checked."""
        method = "ImageService.List"
        what = (
            f"repository {repository_name}"
            if repository_name
            else f"registry {registry_id}"
            if registry_id
            else f"folder {folder_id}"
        )

        def request(token: str) -> Any:
            return image_service_pb2.ListImagesRequest(
                registry_id=registry_id,
                repository_name=repository_name,
                folder_id=folder_id,
                page_size=PAGE_SIZE,
                page_token=token,
            )

        def next_wanted(page: Any) -> bool:
            return True

        pages = self._pages(method, self._images.List, request, deadline, what, ahead=next_wanted)
        try:
            for page in pages:
                for message in page.images:
                    image = decode_listed_image(message, method=method)
                    if repository_name and image.repository_name != repository_name:
                        raise MalformedResponseError(
                            f"{method} for {what} returned an image of repository '{safe(image.repository_name, 128)}'",
                            method=method,
                        )
                    if registry_id and image.registry_id != registry_id:
                        raise MalformedResponseError(
                            f"{method} for {what} returned an image of registry '{safe(image.registry_id, 64)}'",
                            method=method,
                        )
                    yield image
        except RpcFailure as failure:
            raise failure.to_scan_error(f"could not list the images of {what}") from None

    def last_scan(self, image_id: str, deadline: Deadline) -> LastScan:
        """The image's last READY result without starting a scan: ``GetLast``, and when the last finished
        scan was not READY, the newest READY one of ``List``. Never scanned: no result, no status."""
        answer = self._get_last(image_id, deadline)
        if answer is None:
            return LastScan(None, None)
        message, headers = answer
        status = scanner_pb2.ScanResult.Status.Name(message.status) if message.status in _STATUSES else "UNKNOWN"
        if status == "READY":
            method = "ScannerService.GetLast"
            result = decode_scan_result(message, image_id=image_id, request_ids=_request_ids(headers), method=method)
            return LastScan(result, status)
        return LastScan(self._newest_ready(image_id, deadline), status)

    def _get_last(self, image_id: str, deadline: Deadline) -> tuple[Any, dict[str, str]] | None:
        """``ScannerService.GetLast``'s answer and headers; None when the image has no finished result."""
        request = scanner_service_pb2.GetLastScanResultRequest(image_id=image_id)
        try:
            return self._call("ScannerService.GetLast", self._scanner.GetLast, request, deadline)
        except RpcFailure as failure:
            if failure.code == _C.NOT_FOUND:
                return None
            raise failure.to_scan_error(f"could not get the last scan result of image {image_id}") from None

    def _newest_ready(self, image_id: str, deadline: Deadline) -> ScanResult | None:
        """The newest READY result of the image among all its results (``ScannerService.List``, bounded)."""
        method = "ScannerService.List"

        def request(token: str) -> Any:
            return scanner_service_pb2.ListScanResultsRequest(image_id=image_id, page_size=100, page_token=token)

        newest: ScanResult | None = None
        pages = self._pages(method, self._scanner.List, request, deadline, f"image {image_id}", distinct_pages=False)
        try:
            for page in pages:
                for message in page.scan_results:
                    if message.status != scanner_pb2.ScanResult.READY or message.image_id != image_id:
                        continue
                    result = decode_scan_result(message, image_id=image_id, method=method)
                    if result.scanned_at is None:
                        continue  # an undated result cannot show that the image is fresh
                    if newest is None or newest.scanned_at is None or result.scanned_at > newest.scanned_at:
                        newest = result
        except RpcFailure as failure:
            raise failure.to_scan_error(f"could not list the scan results of image {image_id}") from None
        return newest

    def _list_images(self, ref: ImageRef, deadline: Deadline) -> Iterator[Any]:
        def request(token: str) -> Any:
            return image_service_pb2.ListImagesRequest(
                repository_name=ref.repository_name, page_size=PAGE_SIZE, page_token=token
            )

        # The same image on two pages is harmless (one id), so only tokens are checked for repeats here.
        pages = self._pages(
            "ImageService.List",
            self._images.List,
            request,
            deadline,
            f"repository {ref.repository_name}",
            distinct_pages=False,
        )
        for page in pages:
            yield from page.images

    def _pages(
        self,
        method: str,
        rpc: Any,
        request: Callable[[str], Any],
        deadline: Deadline,
        what: str,
        *,
        distinct_pages: bool = True,
        ahead: Callable[[Any], bool] | None = None,
    ) -> Iterator[Any]:
        """Every page of a paged list call, bounded: a repeated token, or over MAX_PAGES, is malformed; with
        ``distinct_pages`` so is a page served twice (findings counted twice could hide others).

        ``ahead(page)``, asked before a page is handed out: True requests the next page at once, on a
        thread of its own, so it travels while the caller works on this one (one page ahead at most,
        and only a page the listing would request anyway).
        """
        token = ""
        seen_tokens: set[str] = set()
        seen_pages: set[bytes] = set()
        pending: _CallAhead | None = None
        for number in range(MAX_PAGES):
            if pending is None:
                response, headers = self._call(method, rpc, request(token), deadline)
            else:
                response, headers = pending.result()
                pending = None

            def malformed(why: str, headers: dict[str, str] = headers) -> MalformedResponseError:
                return MalformedResponseError(
                    f"{method} {why} for {what}", method=method, request_ids=_request_ids(headers)
                )

            entries = type(response)()
            entries.CopyFrom(response)
            entries.ClearField("next_page_token")
            page = entries.SerializeToString(deterministic=True)
            if distinct_pages and page:  # an empty page may well repeat; one with entries must not
                digest = hashlib.sha256(page).digest()
                if digest in seen_pages:
                    raise malformed("served the same page twice (it ignores page tokens?)")
                seen_pages.add(digest)
            following = response.next_page_token
            if (
                ahead is not None
                and following
                and following not in seen_tokens
                and number + 1 < MAX_PAGES
                and ahead(response)
            ):
                pending = _CallAhead(functools.partial(self._call, method, rpc, request(following), deadline))
            yield response
            token = response.next_page_token
            if not token:
                return
            if token in seen_tokens:
                raise malformed(f"repeated page token '{safe(token, 64)}'")
            seen_tokens.add(token)
        raise MalformedResponseError(f"{method} returned more than {MAX_PAGES} pages for {what}", method=method)

    # -- findings -----------------------------------------------------------------------------

    def list_findings(self, scan_result_id: str, deadline: Deadline, expected: int | None) -> tuple[Finding, ...]:
        """Every finding of a READY scan result (``ListVulnerabilities``, 1000 a page, bounded).

        ``expected`` is the scan's own total: once more than that are listed the answer is inconsistent
        anyway, so paging stops there (the caller's recount reports it) instead of following, and
        holding, whatever a broken server keeps sending. None (the scan sent no statistics): paging is
        bounded by MAX_PAGES alone.
        """
        method = "ScannerService.ListVulnerabilities"

        def request(token: str) -> Any:
            return scanner_service_pb2.ListVulnerabilitiesRequest(
                scan_result_id=scan_result_id, page_size=PAGE_SIZE, page_token=token
            )

        findings: list[Finding] = []
        what = f"scan result {scan_result_id}"

        def more_wanted(page: Any) -> bool:  # a page that takes the listing past ``expected`` is its last
            return expected is None or len(findings) + len(page.vulnerabilities) <= expected

        rpc = self._scanner.ListVulnerabilities
        try:
            with without_cycle_collection():
                for page in self._pages(method, rpc, request, deadline, what, ahead=more_wanted):
                    findings.extend(
                        [decode_vulnerability(v, scan_result_id=scan_result_id) for v in page.vulnerabilities]
                    )
                    if expected is not None and len(findings) > expected:
                        break
        except RpcFailure as failure:
            raise failure.to_scan_error(
                f"could not list the findings of scan result {scan_result_id}", scan_result_id=scan_result_id
            ) from None
        return tuple(findings)

    # -- scanning -----------------------------------------------------------------------------

    def start_scan(self, image_id: str, deadline: Deadline, *, idempotency_key: str | None = None) -> ScanHandle:
        """Start one scan of ``image_id`` (``ScannerService.Scan``) and hand out its handle.

        ScanQuotaError when the cloud refuses for its quota of concurrent scans. ``idempotency_key``: the
        key of an earlier call that may have started the scan (``ScanQuotaError.resume_key``); by default
        a new one.
        """
        # Idempotency: one key per call of start_scan, reused by every retry inside it. An answer that
        # may have started a scan (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, a response lost on the
        # way) is retried with the SAME key, so the server returns the scan it already started instead
        # of starting (and billing) a second one. A quota refusal created nothing: it is not retried
        # here, and the caller's next start_scan (after waiting for a slot) sends a NEW key, so a server
        # that remembers keys cannot replay the refusal. But when an attempt before the refusal failed
        # on the way back (its answer lost), that attempt may have started the scan: the refusal then
        # hands the key back (resume_key) and the next call sends it again, so the server returns that
        # scan instead of starting (and billing) another one.
        idempotency_key = idempotency_key or str(uuid.uuid4())
        method = "ScannerService.Scan"
        request = scanner_service_pb2.ScanRequest(image_id=image_id)
        try:
            op, headers = self._call(
                method,
                self._scanner.Scan,
                request,
                deadline,
                extra_metadata=(("idempotency-key", idempotency_key),),
                retryable=RETRYABLE - {_C.RESOURCE_EXHAUSTED},
            )
        except RpcFailure as failure:
            context = f"could not start a scan of image {image_id}"
            if _is_quota_refusal(failure):
                error = failure.to_scan_error(context)
                raise ScanQuotaError(
                    error.message,
                    code=error.code,
                    method=error.method,
                    request_ids=error.request_ids,
                    resume_key=idempotency_key if failure.earlier_attempts else None,
                ) from None
            raise failure.to_scan_error(context) from None
        first = self._operation_snapshot(op, image_id, method, headers)
        log.debug("scan of %s started: operation %s, scan result %s", image_id, op.id, first.scan_result_id)
        return self._handle(image_id, first, self._follow_operation())

    def join(self, scan_result_id: str, image_id: str) -> ScanHandle:
        """A handle on a scan someone else started, followed with ``ScannerService.Get`` (no call yet)."""
        return self._handle(image_id, Snapshot(None, scan_result_id), self._follow_scan_result)

    def _handle(self, image_id: str, first: Snapshot, refresh: Refresh) -> ScanHandle:
        return ScanHandle(
            image_id, first, refresh=refresh, sleep=self._sleep, poll_policy=self._poll_policy, rng=self._rng
        )

    def _operation_snapshot(
        self, op: operation_pb2.Operation, image_id: str, method: str, headers: dict[str, str]
    ) -> Snapshot:
        request_ids = _request_ids(headers)
        state = decode_operation(op, image_id=image_id, method=method, request_ids=request_ids)
        return Snapshot(
            state.operation_id,
            state.scan_result_id,
            state.result,
            poll_hint=_poll_hint(headers),
            method=method,
            request_ids=tuple(request_ids),
        )

    def _follow_operation(self) -> Refresh:
        """Polls of ``OperationService.Get`` for a scan crgate started."""
        method = "OperationService.Get"
        # OperationService.Get may not know a fresh operation yet (eventual consistency right after Scan).
        not_found_left = NOT_FOUND_AFTER_SCAN
        seen_by_get = False

        def refresh(handle: ScanHandle, deadline: Deadline) -> Snapshot | None:
            nonlocal not_found_left, seen_by_get
            request = operation_service_pb2.GetOperationRequest(operation_id=handle.operation_id or "")
            try:
                op, headers = self._call(method, self._operations.Get, request, deadline)
            except RpcFailure as failure:
                if failure.code == _C.NOT_FOUND and not seen_by_get and not_found_left > 0:
                    not_found_left -= 1
                    log.info("operation %s not found yet; polling again", handle.operation_id)
                    return None
                raise failure.to_scan_error(
                    f"could not follow scan operation {handle.operation_id} of image {handle.image_id}",
                    scan_result_id=handle.scan_result_id,
                ) from None
            seen_by_get = True
            return self._operation_snapshot(op, handle.image_id, method, headers)

        return refresh

    def _follow_scan_result(self, handle: ScanHandle, deadline: Deadline) -> Snapshot:
        """One poll of ``ScannerService.Get`` for a joined scan (there is no operation to follow)."""
        method = "ScannerService.Get"
        scan_result_id = handle.scan_result_id or ""
        request = scanner_service_pb2.GetScanResultRequest(scan_result_id=scan_result_id)
        try:
            message, headers = self._call(method, self._scanner.Get, request, deadline)
        except RpcFailure as failure:
            raise failure.to_scan_error(
                f"could not follow running scan {scan_result_id} of image {handle.image_id}",
                scan_result_id=scan_result_id,
            ) from None
        request_ids = tuple(_request_ids(headers))
        if message.status == scanner_pb2.ScanResult.RUNNING and message.image_id == handle.image_id:
            return Snapshot(None, scan_result_id, poll_hint=_poll_hint(headers), method=method, request_ids=request_ids)
        result = decode_scan_result(
            message, image_id=handle.image_id, expected_id=scan_result_id, request_ids=request_ids, method=method
        )
        return Snapshot(None, scan_result_id, result, method=method, request_ids=request_ids)

    # -- reuse: earlier and running scans ------------------------------------------------------

    def last_result(self, image_id: str, deadline: Deadline) -> ScanResult | None:
        """The image's last finished scan result when it is READY; None when there is none (or ERROR)."""
        method = "ScannerService.GetLast"
        answer = self._get_last(image_id, deadline)
        if answer is None:
            return None
        message, headers = answer
        if message.status != scanner_pb2.ScanResult.READY:
            log.info("last scan result of %s is not READY (%s)", image_id, message.status)
            return None
        return decode_scan_result(message, image_id=image_id, request_ids=_request_ids(headers), method=method)

    def running_scan(self, image_id: str, deadline: Deadline) -> str | None:
        """The id of a scan of this image that is already RUNNING (e.g. scan-on-push), if any."""
        method = "ScannerService.List"

        def request(token: str) -> Any:
            return scanner_service_pb2.ListScanResultsRequest(
                image_id=image_id, page_size=100, page_token=token, filter='status="RUNNING"'
            )

        pages = self._pages(method, self._scanner.List, request, deadline, f"image {image_id}", distinct_pages=False)
        try:
            for page in pages:
                for message in page.scan_results:
                    running = message.status == scanner_pb2.ScanResult.RUNNING
                    if running and message.image_id == image_id and message.id:
                        return checked_id(message.id, "running scan result id", method=method)
        except RpcFailure as failure:
            error = failure.to_scan_error(f"could not list running scans of image {image_id}")
            if failure.code in (_C.INVALID_ARGUMENT, _C.UNIMPLEMENTED):  # the filter is an optimisation
                raise UnsupportedCallError(error.message, code=error.code, method=method) from None
            raise error from None
        return None


_STATUSES = set(scanner_pb2.ScanResult.Status.values())


def _is_quota_refusal(failure: RpcFailure) -> bool:
    """A Scan refused for the cloud's concurrent-scan quota (RESOURCE_EXHAUSTED, the API design guide's
    quota code, or another code whose message names the quota; Yandex does not document which)."""
    if not failure.retryable:  # an answer over crgate's own size limits is not a quota
        return False
    if failure.code == _C.RESOURCE_EXHAUSTED:
        return True
    details = failure.details.lower()
    return failure.code in (_C.FAILED_PRECONDITION, _C.ABORTED) and ("parallelscans" in details or "quota" in details)


def _request_ids(headers: dict[str, str]) -> list[str]:
    return [safe(headers[h], 128) for h in ("x-request-id", "x-server-trace-id") if h in headers]


def _poll_hint(headers: dict[str, str]) -> float | None:
    value = headers.get(POLL_INTERVAL_HEADER)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        log.debug("ignoring unparsable %s header %r", POLL_INTERVAL_HEADER, value)
        return None
    return seconds if seconds == seconds else None  # NaN is not a hint
