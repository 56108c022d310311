"""Protobuf shapes of the emulator's views, including the scripted protocol anomalies."""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    scanner_pb2,
    scanner_service_pb2,
)
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate_emulator.scenario import Image, OperationError, ScenarioVulnerability
from crgate_emulator.state import RESULT_ANOMALIES, OperationView, ScanView

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


def vulnerability(finding: ScenarioVulnerability) -> scanner_pb2.Vulnerability:
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
    """A ScanResult; READY results carry stats derived from the image's findings (unless anomalous)."""
    result = scanner_pb2.ScanResult(id=view.id, image_id=view.image.id, status=_STATUS[view.status])
    if view.finished_at is not None:
        result.scanned_at.CopyFrom(timestamp(view.finished_at))
    if view.status == "READY":
        result.vulnerabilities.CopyFrom(scanner_pb2.VulnerabilityStats(**view.image.counts().as_dict()))
    if view.anomaly in RESULT_ANOMALIES:
        return corrupt_result(result, view.anomaly) or result
    return result


def operation(view: OperationView) -> operation_pb2.Operation:
    """The scan's Operation: metadata at once; when done exactly one of error/response (unless anomalous)."""
    scan = view.scan
    result = operation_pb2.Operation(
        id=view.id,
        description=OPERATION_DESCRIPTION,
        created_at=timestamp(view.created_at),
        created_by=CREATED_BY,
        modified_at=timestamp(view.modified_at),
        done=view.done,
        metadata=pack(scanner_service_pb2.ScanMetadata(scan_result_id=scan.id)),
    )
    if view.done and scan.error is not None:
        result.error.CopyFrom(rpc_status(scan.error))
    elif view.done:
        result.response.CopyFrom(pack(scan_result(scan)))
    if scan.anomaly in OPERATION_ANOMALIES:
        return corrupt_operation(result, scan.anomaly, scan.image, view.created_at) or result
    return result


# -- anomalies: what each one does to an answer (a scan's own anomaly, or one chaos mode picks for one call)

# RESULT_ANOMALIES (state.py) shape the ScanResult message wherever it is sent (operation response, Get,
# GetLast, List); these shape the Operation around it. A scan's own running_status_when_done is the state's
# (GetLast sees it too); as the anomaly of one answer it is a change of the result's status.
OPERATION_ANOMALIES = frozenset(
    {"done_without_result", "wrong_response_type", "wrong_metadata_type", "error_before_done"}
)


def corrupt_result(result: scanner_pb2.ScanResult, anomaly: str) -> scanner_pb2.ScanResult | None:
    """A copy of ``result`` with ``anomaly``; None when it does not apply (stats anomalies need a READY result)."""
    corrupted = scanner_pb2.ScanResult()
    corrupted.CopyFrom(result)
    ready = result.status == scanner_pb2.ScanResult.READY
    stats = corrupted.vulnerabilities
    if anomaly == "wrong_image_id":
        corrupted.image_id = WRONG_IMAGE_ID
    elif anomaly == "missing_stats" and ready and result.HasField("vulnerabilities"):
        corrupted.ClearField("vulnerabilities")
    elif anomaly == "negative_count" and ready and result.HasField("vulnerabilities"):
        stats.critical = -1
    elif anomaly == "stats_mismatch" and ready and result.HasField("vulnerabilities"):
        stats.critical += 1  # the stats disagree with what ListVulnerabilities lists
    elif anomaly == "running_status_when_done" and ready:
        corrupted.status = scanner_pb2.ScanResult.RUNNING
        corrupted.ClearField("vulnerabilities")
    else:
        return None
    return corrupted


def corrupt_operation(
    op: operation_pb2.Operation, anomaly: str, image_of_scan: Image, created_at: dt.datetime
) -> operation_pb2.Operation | None:
    """A copy of ``op`` with ``anomaly`` (a ScanResult anomaly applies to its response); None when it does
    not apply to this state of the operation (e.g. ``done_without_result`` while it still runs)."""
    corrupted = operation_pb2.Operation()
    corrupted.CopyFrom(op)
    has_response = op.WhichOneof("result") == "response"
    if anomaly == "wrong_metadata_type":
        corrupted.metadata.CopyFrom(pack(image_service_pb2.DeleteImageMetadata(image_id=image_of_scan.id)))
    elif anomaly == "error_before_done" and not op.done:
        early = image_of_scan.scan.operation_error or OperationError("INTERNAL", "scan failed")
        corrupted.error.CopyFrom(rpc_status(early))
    elif anomaly == "done_without_result" and has_response:
        corrupted.ClearField("response")
    elif anomaly == "wrong_response_type" and has_response:
        corrupted.response.CopyFrom(pack(image(image_of_scan, created_at)))
    elif has_response and op.response.Is(scanner_pb2.ScanResult.DESCRIPTOR):
        result = scanner_pb2.ScanResult()
        op.response.Unpack(result)
        changed = corrupt_result(result, anomaly)
        if changed is None:
            return None
        corrupted.response.CopyFrom(pack(changed))
    else:
        return None
    return corrupted


def corrupt_answer(answer: object, anomaly: str, image_of_scan: Image, created_at: dt.datetime) -> object | None:
    """An Operation or ScanResult answer with ``anomaly`` (chaos mode's malformed fault); None when it does not
    apply to this answer (or the answer is of another type)."""
    if isinstance(answer, operation_pb2.Operation):
        return corrupt_operation(answer, anomaly, image_of_scan, created_at)
    if isinstance(answer, scanner_pb2.ScanResult):
        return corrupt_result(answer, anomaly)
    return None
