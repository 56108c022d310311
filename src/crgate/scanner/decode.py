"""Pure decoding of a scan ``Operation`` into a plain result, failing closed on every anomaly.

The API promises: ``metadata`` is a ScanMetadata; while running, neither ``error`` nor ``response``
(except that ``error`` may appear early); when ``done``, exactly one of them; a successful response is
a READY ScanResult for the scanned image with non-negative counts. Anything else is reported as a
malformed answer (exit 3), never treated as "no vulnerabilities".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import image_pb2, scanner_pb2, scanner_service_pb2
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate.errors import MalformedResponseError, ScanFailedError
from crgate.images import ID_PATTERN
from crgate.model import SEVERITIES, Finding, ListedImage, ScanResult, SeverityCounts
from crgate.textsafe import safe

_METHOD = "OperationService.Get"
MAX_FINDING_TEXT = 1000
"""Characters kept of each text field of a finding (CVE ids, package names, links are far shorter)."""


def checked_id(value: str, what: str, *, method: str | None = None, request_ids: Sequence[str] = ()) -> str:
    """``value`` when it looks like an identifier; MalformedResponseError (it is never printed raw) otherwise."""
    if not ID_PATTERN.fullmatch(value):
        shown = "empty" if not value else f"'{safe(value, 64)}'"
        raise MalformedResponseError(
            f"the server sent a {what} that is not an identifier ({shown})", method=method, request_ids=request_ids
        )
    return value


@dataclass(frozen=True)
class OperationState:
    """What a poll told us: still running (``result`` None) or finished with a usable result."""

    operation_id: str
    scan_result_id: str | None
    result: ScanResult | None


_INDEX_REFUSAL = re.compile(r"media type is not supported.*(image\.index|manifest\.list)", re.IGNORECASE)


def multi_platform_hint(message: str) -> str:
    """For the scanner's refusal of an image index: what to do instead (empty for other messages)."""
    if not _INDEX_REFUSAL.search(message):
        return ""
    return (
        ". The image is a multi-platform index (e.g. docker buildx / Docker 29+ with provenance attestations): "
        "gate its reference instead of --image-id (crgate scans every platform image in it, --platform "
        "restricts them), pass a platform image's id, or build with docker build --provenance=false --sbom=false "
        "for a single-platform image"
    )


def status_code_name(code: int) -> str:
    """``google.rpc.Status.code`` as a gRPC code name (``INTERNAL``), or ``code 42`` when unknown."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return str(status.name)
    return f"code {code}"


def decode_operation(
    op: operation_pb2.Operation,
    *,
    image_id: str,
    method: str = _METHOD,
    request_ids: Sequence[str] = (),
) -> OperationState:
    """Decode one snapshot of a scan operation; raise ScanError / MalformedResponseError on anomalies."""

    malformed = _malformed_factory(f"malformed scan operation {op.id or '(no id)'}", method, request_ids)

    if not op.id:
        raise malformed("the operation has no id, so it cannot be followed")
    checked_id(op.id, "operation id", method=method, request_ids=request_ids)
    scan_result_id = _scan_result_id(op, malformed)
    if op.HasField("error"):
        raise ScanFailedError(
            f"scan of image {image_id} failed: {safe(op.error.message) or 'no message'}"
            + multi_platform_hint(op.error.message),
            code=status_code_name(op.error.code),
            method=method,
            request_ids=request_ids,
            scan_result_id=scan_result_id,
        )
    if not op.done:
        if op.HasField("response"):
            raise malformed("it has a response but is not done", scan_result_id)
        return OperationState(op.id, scan_result_id, None)
    if not op.HasField("response"):
        raise malformed("it is done but carries neither an error nor a response", scan_result_id)
    result = _decode_result(op, image_id, scan_result_id, malformed)
    return OperationState(op.id, scan_result_id or result.id, result)


def _scan_result_id(op: operation_pb2.Operation, malformed: _Malformed) -> str | None:
    if not op.HasField("metadata"):
        return None
    if not op.metadata.Is(scanner_service_pb2.ScanMetadata.DESCRIPTOR):
        raise malformed(f"metadata is a {_type_name(op.metadata.type_url)}, expected ScanMetadata")
    metadata = scanner_service_pb2.ScanMetadata()
    try:
        ok = op.metadata.Unpack(metadata)
    except Exception as error:  # protobuf's DecodeError: bytes that do not parse
        raise malformed(f"metadata could not be decoded: {safe(str(error))}") from None
    if not ok:
        raise malformed("metadata could not be decoded as ScanMetadata")
    if not metadata.scan_result_id:
        return None
    return checked_id(metadata.scan_result_id, "scan result id")


def _decode_result(
    op: operation_pb2.Operation, image_id: str, scan_result_id: str | None, malformed: _Malformed
) -> ScanResult:
    if not op.response.Is(scanner_pb2.ScanResult.DESCRIPTOR):
        raise malformed(f"response is a {_type_name(op.response.type_url)}, expected ScanResult", scan_result_id)
    message = scanner_pb2.ScanResult()
    try:
        ok = op.response.Unpack(message)
    except Exception as error:  # protobuf raises DecodeError subclasses of Exception
        raise malformed(f"response could not be decoded: {safe(str(error))}", scan_result_id) from None
    if not ok:
        raise malformed("response could not be decoded as ScanResult", scan_result_id)
    return decode_scan_result(message, image_id=image_id, expected_id=scan_result_id, malformed=malformed)


def decode_scan_result(
    message: scanner_pb2.ScanResult,
    *,
    image_id: str,
    expected_id: str | None = None,
    malformed: _Malformed | None = None,
    method: str | None = None,
    request_ids: Sequence[str] = (),
) -> ScanResult:
    """Check and convert a finished ScanResult message (also used for ``ScannerService.Get`` answers)."""
    if malformed is None:
        malformed = _malformed_factory("malformed scan result", method, request_ids)

    result_id = message.id or expected_id
    if not result_id:
        raise malformed("the scan result has no id, so its findings cannot be listed or traced")
    checked_id(result_id, "scan result id", method=method, request_ids=request_ids)
    status = scanner_pb2.ScanResult.Status.Name(message.status) if message.status in _STATUS_NAMES else None
    if status == "ERROR":
        raise ScanFailedError(
            f"the scanner reports status ERROR for image {image_id}: the scan failed "
            "(OCI image indexes / multi-arch images, images over 2 GB or 127 layers are not scannable)",
            code="ERROR",
            scan_result_id=result_id,
        )
    if status != "READY":
        raise malformed(f"scan result status is {status or message.status}, expected READY", result_id)
    if expected_id and message.id and message.id != expected_id:
        raise malformed(
            f"response is scan result {safe(message.id, 64)}, but the operation is for {expected_id}",
            expected_id,
        )
    if message.image_id != image_id:
        raise malformed(
            f"result is for image '{safe(message.image_id, 64) or '(none)'}', but image {image_id} was scanned",
            result_id,
        )
    # A READY result without statistics is what a server sends for a clean image when it leaves the
    # message unset; the findings are always listed and counted, so judging stays fail-closed.
    statistics_missing = not message.HasField("vulnerabilities")
    counts = {name: int(getattr(message.vulnerabilities, name)) for name in SEVERITIES}
    negative = {name: value for name, value in counts.items() if value < 0}
    if negative:
        shown = ", ".join(f"{name}={value}" for name, value in negative.items())
        raise malformed(f"negative vulnerability count ({shown})", result_id)
    scanned_at = None
    if message.HasField("scanned_at"):
        try:
            scanned_at = message.scanned_at.ToDatetime(tzinfo=dt.timezone.utc)
        except (ValueError, OverflowError):
            raise malformed("scanned_at is not a valid timestamp", result_id) from None
    return ScanResult(
        id=result_id or "",
        image_id=message.image_id,
        status=status,
        counts=SeverityCounts(**counts),
        scanned_at=scanned_at,
        statistics_missing=statistics_missing,
    )


_STATUS_NAMES = set(scanner_pb2.ScanResult.Status.values())


class _Malformed(Protocol):
    """The signature of the local ``malformed`` error factories."""

    def __call__(self, why: str, scan_result_id: str | None = None) -> MalformedResponseError: ...


def _malformed_factory(prefix: str, method: str | None, request_ids: Sequence[str]) -> _Malformed:
    """The error factory of one decoding: every message starts with ``prefix`` and names the call."""

    def malformed(why: str, scan_result_id: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(
            f"{prefix}: {why}", method=method, request_ids=request_ids, scan_result_id=scan_result_id
        )

    return malformed


def _type_name(type_url: str) -> str:
    """The message type an ``Any`` names, as display text (the server chose the URL)."""
    return safe(type_url.rsplit("/", 1)[-1], 128) or "message of no type"


_LISTED_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REPOSITORY_NAME = re.compile(r"[a-z0-9]+/[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
MAX_TAGS = 1000
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the distribution spec's tag grammar


def decode_listed_image(message: image_pb2.Image, *, method: str) -> ListedImage:
    """One ``ImageService.List`` entry, checked: an id, a repository name, a sha256 digest, bounded tags."""
    image_id = checked_id(message.id, "image id", method=method)

    def malformed(why: str) -> MalformedResponseError:
        return MalformedResponseError(f"malformed image {image_id} in {method}: {why}", method=method)

    if not _REPOSITORY_NAME.fullmatch(message.name) or len(message.name) > 512:
        raise malformed(f"its repository name '{safe(message.name, 128)}' is not <registry-id>/<repository>")
    if not _LISTED_DIGEST.fullmatch(message.digest):
        raise malformed(f"its digest '{safe(message.digest, 80)}' is not sha256:<64 hex digits>")
    if len(message.tags) > MAX_TAGS:
        raise malformed(f"it lists {len(message.tags)} tags (more than {MAX_TAGS})")
    bad_tag = next((tag for tag in message.tags if not _TAG.fullmatch(tag)), None)
    if bad_tag is not None:
        raise malformed(f"its tag '{safe(bad_tag, 128)}' is not a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})")
    tags = tuple(message.tags)
    created_at = None
    if message.HasField("created_at"):
        try:
            created_at = message.created_at.ToDatetime(tzinfo=dt.timezone.utc)
        except (ValueError, OverflowError):
            raise malformed("created_at is not a valid timestamp") from None
    return ListedImage(image_id, message.name, message.digest, tags, created_at)


_SEVERITY_BY_NUMBER = {
    number: name.lower() for name, number in scanner_pb2.Vulnerability.Severity.items() if name.lower() in SEVERITIES
}


def decode_vulnerability(message: scanner_pb2.Vulnerability, *, scan_result_id: str) -> Finding:
    """One ``ListVulnerabilities`` entry; a finding without a known severity or CVE id is malformed."""
    package = message.package
    severity = _SEVERITY_BY_NUMBER.get(message.severity)
    if severity is None:
        raise MalformedResponseError(
            f"malformed finding {safe(package.name) or '(no id)'} in package "
            f"{safe(package.package) or '(none)'}: severity {message.severity} is not one of "
            f"{', '.join(s.upper() for s in SEVERITIES)}",
            method="ScannerService.ListVulnerabilities",
            scan_result_id=scan_result_id,
        )
    if not package.name:
        raise MalformedResponseError(
            f"malformed finding in package {safe(package.package) or '(none)'}: it has no vulnerability id",
            method="ScannerService.ListVulnerabilities",
            scan_result_id=scan_result_id,
        )
    # Lossless: machine formats (JSON, SARIF, ...) carry what the scanner said; every place that prints
    # for people makes it inert (crgate.textsafe). Only the length is bounded here, for memory.
    # (Positional, in Finding's field order, and each field read once: this runs once per finding.)
    texts: tuple[str, ...] = (
        package.name,
        package.package,
        package.version,
        package.fixed_by,
        package.link,
        package.source,
        package.origin,
        package.type,
    )
    if max(map(len, texts)) > MAX_FINDING_TEXT:
        texts = tuple(text if len(text) <= MAX_FINDING_TEXT else text[:MAX_FINDING_TEXT] + "..." for text in texts)
    cve, name, version, fixed_by, link, source, origin, kind = texts
    return Finding(cve, severity, name, version, fixed_by, link, source, origin, kind)
