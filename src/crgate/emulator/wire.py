"""Protobuf shapes of the emulator's views, including the scripted protocol anomalies."""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2
from yandex.cloud.containerregistry.v1 import image_pb2, image_service_pb2, scanner_pb2, scanner_service_pb2
from yandex.cloud.operation import operation_pb2

from crgate.emulator.scenario import Finding, Image, OperationError
from crgate.emulator.state import OperationView, ScanView

OPERATION_DESCRIPTION = "Scan image"
CREATED_BY = "ajeemulatorsubject00"  # the subject that "started" every operation
WRONG_IMAGE_ID = "crpemulatorwrongimage"
_STATUS = {
    "RUNNING": scanner_pb2.ScanResult.RUNNING,
    "READY": scanner_pb2.ScanResult.READY,
    "ERROR": scanner_pb2.ScanResult.ERROR,
}


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(dt.timezone.utc).replace(tzinfo=None))
    return stamp


def pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def rpc_status(error: OperationError) -> status_pb2.Status:
    return status_pb2.Status(code=grpc.StatusCode[error.code].value[0], message=error.message)


def image(value: Image, default_created_at: dt.datetime) -> image_pb2.Image:
    return image_pb2.Image(
        id=value.id,
        name=value.repository_name,
        digest=value.digest,
        compressed_size=value.compressed_size,
        tags=list(value.tags),
        created_at=timestamp(value.created_at or default_created_at),
    )


def vulnerability(finding: Finding) -> scanner_pb2.Vulnerability:
    return scanner_pb2.Vulnerability(
        severity=scanner_pb2.Vulnerability.Severity.Value(finding.severity),
        package=scanner_pb2.PackageVulnerability(
            name=finding.name,
            link=finding.link,
            package=finding.package,
            source=finding.source,
            version=finding.version,
            fixed_by=finding.fixed_by,
            origin=finding.origin,
            type=finding.type,
        ),
    )


def scan_result(view: ScanView) -> scanner_pb2.ScanResult:
    """A ScanResult; READY results carry stats derived from the image's findings."""
    result = scanner_pb2.ScanResult(
        id=view.id,
        image_id=WRONG_IMAGE_ID if view.anomaly == "wrong_image_id" else view.image.id,
        status=_STATUS[view.status],
    )
    if view.finished_at is not None:
        result.scanned_at.CopyFrom(timestamp(view.finished_at))
    if view.status == "READY" and view.anomaly != "missing_stats":
        counts = view.image.counts()
        result.vulnerabilities.CopyFrom(scanner_pb2.VulnerabilityStats(**counts.as_dict()))
        if view.anomaly == "negative_count":
            result.vulnerabilities.critical = -1
        if view.anomaly == "stats_mismatch":  # stats disagree with what ListVulnerabilities lists
            result.vulnerabilities.critical += 1
    return result


def operation(view: OperationView) -> operation_pb2.Operation:
    """The scan's Operation: metadata at once; when done exactly one of error/response (unless anomalous)."""
    scan = view.scan
    anomaly = scan.anomaly
    if anomaly == "wrong_metadata_type":
        metadata = pack(image_service_pb2.DeleteImageMetadata(image_id=scan.image.id))
    else:
        metadata = pack(scanner_service_pb2.ScanMetadata(scan_result_id=scan.id))
    result = operation_pb2.Operation(
        id=view.id,
        description=OPERATION_DESCRIPTION,
        created_at=timestamp(view.created_at),
        created_by=CREATED_BY,
        modified_at=timestamp(view.modified_at),
        done=view.done,
        metadata=metadata,
    )
    if not view.done:
        if anomaly == "error_before_done":
            early = scan.image.scan.operation_error or OperationError("INTERNAL", "scan failed")
            result.error.CopyFrom(rpc_status(early))
        return result
    if scan.error is not None:
        result.error.CopyFrom(rpc_status(scan.error))
    elif anomaly == "done_without_result":
        pass
    elif anomaly == "wrong_response_type":
        result.response.CopyFrom(pack(image(scan.image, view.created_at)))
    else:
        result.response.CopyFrom(pack(scan_result(scan)))
    return result
