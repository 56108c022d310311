"""The operation decoder fails closed on every malformed or inconsistent snapshot (pure, no network)."""

import pytest
from google.protobuf import any_pb2

from crgate._proto.yandex.cloud.containerregistry.v1 import image_pb2, scanner_pb2, scanner_service_pb2
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate.errors import MalformedResponseError, ScanError
from crgate.exitcodes import ExitCode
from crgate.scanner.decode import decode_operation, status_code_name

IMAGE = "crpimage1"
RESULT = "crpresult1"


def packed(message) -> any_pb2.Any:
    value = any_pb2.Any()
    value.Pack(message)
    return value


def result(**overrides) -> scanner_pb2.ScanResult:
    fields = {
        "id": RESULT,
        "image_id": IMAGE,
        "status": scanner_pb2.ScanResult.READY,
        "vulnerabilities": scanner_pb2.VulnerabilityStats(critical=1, high=2, low=3),
    }
    fields.update(overrides)
    message = scanner_pb2.ScanResult(**{k: v for k, v in fields.items() if v is not None})
    message.scanned_at.GetCurrentTime()
    return message


def operation(*, done=True, response=None, error=None, metadata=True, op_id="op1") -> operation_pb2.Operation:
    op = operation_pb2.Operation(id=op_id, done=done)
    if metadata:
        op.metadata.CopyFrom(packed(scanner_service_pb2.ScanMetadata(scan_result_id=RESULT)))
    if response is not None:
        op.response.CopyFrom(packed(response))
    if error is not None:
        op.error.CopyFrom(error)
    return op


def test_ready_result_decodes_to_counts():
    state = decode_operation(operation(response=result()), image_id=IMAGE)
    assert state.result is not None
    assert state.result.counts.as_dict() == {
        "critical": 1,
        "high": 2,
        "medium": 0,
        "low": 3,
        "negligible": 0,
        "undefined": 0,
    }
    assert state.scan_result_id == RESULT
    assert state.result.scanned_at is not None


def test_running_operation_has_no_result_yet():
    state = decode_operation(operation(done=False), image_id=IMAGE)
    assert state.result is None and state.scan_result_id == RESULT


def test_operation_error_reports_code_and_message():
    from google.rpc import status_pb2

    op = operation(error=status_pb2.Status(code=13, message="scanner crashed"))
    with pytest.raises(ScanError) as caught:
        decode_operation(op, image_id=IMAGE, request_ids=["req-1"])
    text = str(caught.value)
    assert "scanner crashed" in text and "INTERNAL" in text and "req-1" in text and RESULT in text
    assert caught.value.exit_code == ExitCode.SCAN_ERROR


def test_error_before_done_fails_at_once():
    from google.rpc import status_pb2

    op = operation(done=False, error=status_pb2.Status(code=9, message="image is an OCI index"))
    with pytest.raises(ScanError, match="OCI index"):
        decode_operation(op, image_id=IMAGE)


def _stats(**counts):
    return scanner_pb2.VulnerabilityStats(**counts)


MALFORMED = {
    "done without result": (operation(), "neither an error nor a response"),
    "response of another type": (
        operation(response=image_pb2.Image(id=IMAGE)),
        "is a yandex.cloud.containerregistry.v1.Image",
    ),
    "status RUNNING when done": (
        operation(response=result(status=scanner_pb2.ScanResult.RUNNING)),
        "status is RUNNING",
    ),
    "status unspecified": (operation(response=result(status=0)), "status is STATUS_UNSPECIFIED"),
    "unknown status number": (operation(response=result(status=77)), "status is 77"),
    "negative count": (
        operation(response=result(vulnerabilities=_stats(high=-1))),
        "negative vulnerability count (high=-1)",
    ),
    "other image": (operation(response=result(image_id="crpother")), "is for image 'crpother'"),
    "other scan result": (operation(response=result(id="crpresult2")), "is scan result crpresult2"),
    "response before done": (operation(done=False, response=result()), "has a response but is not done"),
    "no operation id": (operation(op_id="", done=False), "has no id"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_snapshots_fail_closed(case):
    op, fragment = MALFORMED[case]
    with pytest.raises(MalformedResponseError) as caught:
        decode_operation(op, image_id=IMAGE)
    assert fragment in str(caught.value)
    assert caught.value.exit_code == ExitCode.SCAN_ERROR


def test_ready_result_without_statistics_is_flagged_not_read_as_zero():
    """Issue 13: a server may leave the statistics unset for a clean image; the runner then counts the
    listed findings (always fetched), so the flag, not zeros, is what the decoder hands on."""
    state = decode_operation(operation(response=result(vulnerabilities=None)), image_id=IMAGE)
    assert state.result is not None and state.result.statistics_missing
    assert not decode_operation(operation(response=result()), image_id=IMAGE).result.statistics_missing


def test_metadata_of_another_type_is_malformed():
    op = operation(done=False, metadata=False)
    op.metadata.CopyFrom(packed(image_pb2.Image(id="x")))
    with pytest.raises(MalformedResponseError, match="metadata is a yandex.cloud.containerregistry.v1.Image"):
        decode_operation(op, image_id=IMAGE)


def test_corrupt_response_bytes_are_malformed():
    op = operation()
    op.response.type_url = "type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult"
    op.response.value = b"\xff\xff\xff"
    with pytest.raises(MalformedResponseError, match="could not be decoded"):
        decode_operation(op, image_id=IMAGE)


def test_scan_status_error_is_a_scan_error_not_a_pass():
    with pytest.raises(ScanError) as caught:
        decode_operation(operation(response=result(status=scanner_pb2.ScanResult.ERROR)), image_id=IMAGE)
    assert "status ERROR" in str(caught.value)
    assert not isinstance(caught.value, MalformedResponseError)


def test_status_code_names():
    assert status_code_name(14) == "UNAVAILABLE"
    assert status_code_name(999) == "code 999"


def test_invalid_timestamp_is_malformed():
    message = result()
    message.scanned_at.seconds = 10**15
    with pytest.raises(MalformedResponseError, match="scanned_at is not a valid timestamp"):
        decode_operation(operation(response=message), image_id=IMAGE)


def test_server_text_cannot_inject_terminal_sequences():
    from google.rpc import status_pb2

    op = operation(error=status_pb2.Status(code=13, message="\x1b[2J\x1b[32mPASS\nall good"))
    with pytest.raises(ScanError) as caught:
        decode_operation(op, image_id=IMAGE)
    assert "\x1b" not in str(caught.value) and "\n" not in str(caught.value)


def _texts(seed: int) -> list[str]:
    """Short and long texts of printable, control, format and non-ASCII characters (a fixed corpus)."""
    import random

    rng = random.Random(seed)
    alphabet = "aZ9.-_/:+~ \t\n\r\x00\x07\x1b\x7f\x85\x9b\u00a0\u200b\u2028\ufeff\ufffeé☃𝄞"
    texts = ["", "CVE-2024-0001", "x" * 999, "x" * 1000, "x" * 1001, "é" * 1200]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.choice((1, 8, 40, 300)))) for _ in range(300)]
    return texts


def test_finding_text_is_kept_as_sent_and_bounded_whatever_it_holds():
    """Machine formats stay lossless (issue 10): the decoder keeps each text field as the scanner sent
    it, cut to MAX_FINDING_TEXT characters; making it inert is the job of every place that prints it."""
    from crgate.scanner.decode import MAX_FINDING_TEXT, decode_vulnerability

    fields = ("name", "package", "version", "fixed_by", "link", "source", "origin", "type")
    texts = _texts(7)

    def bounded(text: str) -> str:
        return text if len(text) <= MAX_FINDING_TEXT else text[:MAX_FINDING_TEXT] + "..."

    for number in range(len(texts)):
        values = {field: texts[(number + offset * 37) % len(texts)] for offset, field in enumerate(fields)}
        values["name"] = values["name"] or "CVE-1"
        message = scanner_pb2.Vulnerability(
            severity=scanner_pb2.Vulnerability.HIGH, package=scanner_pb2.PackageVulnerability(**values)
        )
        finding = decode_vulnerability(message, scan_result_id="crgsr1")
        decoded = (finding.cve, finding.package, finding.version, finding.fixed_by, finding.link, finding.source)
        decoded += (finding.origin, finding.type)
        assert decoded == tuple(bounded(values[field]) for field in fields)
        assert all(len(text) <= MAX_FINDING_TEXT + 3 for text in decoded)
    clean = {field: f"{field}-é☃ 1.0" for field in fields}  # printable and short: kept exactly as sent
    message = scanner_pb2.Vulnerability(
        severity=scanner_pb2.Vulnerability.LOW, package=scanner_pb2.PackageVulnerability(**clean)
    )
    finding = decode_vulnerability(message, scan_result_id="crgsr1")
    assert (finding.cve, finding.package, finding.type) == (clean["name"], clean["package"], clean["type"])
