"""The emulator over real loopback gRPC with the generated Yandex stubs: semantics, paging, errors."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import jwt as pyjwt
import pytest

import crgate_emulator
from authkit import SCANNER_ROLE, public_pem, rsa_key
from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from crgate._proto.yandex.cloud.endpoint import api_endpoint_service_pb2, api_endpoint_service_pb2_grpc
from crgate._proto.yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc
from crgate.errors import ConfigError
from crgate_emulator import Emulator, demo_scenario, scenario_from_dict
from fakeclock import FakeClock

TIMEOUT = 5.0
DIGEST = "sha256:" + "0" * 64
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED")


@dataclass
class Client:
    emu: Emulator
    clock: FakeClock
    scanner: scanner_service_pb2_grpc.ScannerServiceStub
    operations: operation_service_pb2_grpc.OperationServiceStub
    images: image_service_pb2_grpc.ImageServiceStub
    channel: grpc.Channel

    def scan(self, image_id: str, key: str | None = None) -> operation_pb2.Operation:
        metadata = [("idempotency-key", key)] if key else []
        return self.scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id), metadata=metadata, timeout=TIMEOUT)

    def get_op(self, operation_id: str) -> operation_pb2.Operation:
        return self.operations.Get(
            operation_service_pb2.GetOperationRequest(operation_id=operation_id), timeout=TIMEOUT
        )

    def finish(self, operation_id: str) -> operation_pb2.Operation:
        self.clock.advance(3600)
        return self.get_op(operation_id)


def finding(cve: str, severity: str, package: str = "openssl", **extra: Any) -> dict[str, Any]:
    return {"name": cve, "severity": severity, "package": package, "version": "1.0", **extra}


def img(
    image_id: str, tags: list[str] | None = None, findings: list[dict[str, Any]] | None = None, **scan: Any
) -> dict:
    return {"id": image_id, "digest": DIGEST, "tags": tags or [], "findings": findings or [], "scan": scan}


def scenario(*images: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"registries": [{"id": "crptest", "repositories": [{"name": "app", "images": list(images)}]}], **top}


MIXED = [
    finding("CVE-2024-0001", "CRITICAL", fixed_by="1.1"),
    finding("CVE-2024-0002", "CRITICAL", package="zlib1g"),
    finding("CVE-2024-0003", "HIGH"),
    finding("CVE-2024-0004", "MEDIUM"),
    finding("CVE-2024-0005", "LOW"),
    finding("CVE-2024-0006", "NEGLIGIBLE"),
    finding("CVE-2024-0007", "UNDEFINED"),
]


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    """Start an emulator (fake clock) from a scenario dict and dial it with the generated stubs."""
    started: list[tuple[Emulator, grpc.Channel]] = []

    def make(data: dict[str, Any]) -> Client:
        clock = FakeClock()
        emu = Emulator(scenario_from_dict(data, source="<test>"), clock=clock).start()
        channel = grpc.insecure_channel(emu.address)
        started.append((emu, channel))
        return Client(
            emu,
            clock,
            scanner_service_pb2_grpc.ScannerServiceStub(channel),
            operation_service_pb2_grpc.OperationServiceStub(channel),
            image_service_pb2_grpc.ImageServiceStub(channel),
            channel,
        )

    yield make
    for emu, channel in started:
        channel.close()
        emu.stop()


def unpack(message: Any, cls: type) -> Any:
    result = cls()
    assert message.Unpack(result), f"Any holds {message.type_url}, not {cls.__name__}"
    return result


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()  # type: ignore[attr-defined,no-any-return]


# ------------------------------------------------------------------------------------------ lifecycle


def test_scan_runs_then_finishes_with_counts_from_findings(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", findings=MIXED, duration=30)))
    op = client.scan("crpimg1")

    assert not op.done and op.WhichOneof("result") is None
    assert op.id.startswith("crgop") and len(op.id) == 20
    assert op.description == "Scan image" and op.created_by
    assert op.created_at.seconds > 0 and op.modified_at == op.created_at
    scan_id = unpack(op.metadata, scanner_service_pb2.ScanMetadata).scan_result_id
    running = client.scanner.Get(scanner_service_pb2.GetScanResultRequest(scan_result_id=scan_id), timeout=TIMEOUT)
    assert running.status == scanner_pb2.ScanResult.RUNNING and not running.HasField("vulnerabilities")
    last_request = scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1")
    assert code_of(lambda: client.scanner.GetLast(last_request)) == grpc.StatusCode.NOT_FOUND
    assert client.get_op(op.id).done is False

    client.clock.advance(30)
    done = client.get_op(op.id)
    assert done.done and done.WhichOneof("result") == "response"
    result = unpack(done.response, scanner_pb2.ScanResult)
    assert (result.id, result.image_id, result.status) == (scan_id, "crpimg1", scanner_pb2.ScanResult.READY)
    assert result.scanned_at == done.modified_at
    assert done.modified_at.seconds - done.created_at.seconds == 30
    stats = result.vulnerabilities
    assert (stats.critical, stats.high, stats.medium, stats.low, stats.negligible, stats.undefined) == (
        2,
        1,
        1,
        1,
        1,
        1,
    )
    last = client.scanner.GetLast(scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1"), timeout=TIMEOUT)
    assert last == result
    assert client.emu.stats.scans_started == 1


def test_real_clock_polling_reaches_done() -> None:
    emu = Emulator(scenario_from_dict(scenario(img("crpimg1", findings=MIXED[:1], duration=0.1)))).start()
    try:
        with grpc.insecure_channel(emu.address) as channel:
            scanner = scanner_service_pb2_grpc.ScannerServiceStub(channel)
            operations = operation_service_pb2_grpc.OperationServiceStub(channel)
            op = scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), timeout=TIMEOUT)
            for _ in range(100):
                if op.done:
                    break
                time.sleep(0.02)
                op = operations.Get(operation_service_pb2.GetOperationRequest(operation_id=op.id), timeout=TIMEOUT)
            assert op.done
            assert unpack(op.response, scanner_pb2.ScanResult).vulnerabilities.critical == 1
    finally:
        emu.stop()


def test_clean_image_has_stats_present_and_zero(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpclean")))
    result = unpack(client.finish(client.scan("crpclean").id).response, scanner_pb2.ScanResult)
    assert result.HasField("vulnerabilities") and result.vulnerabilities == scanner_pb2.VulnerabilityStats()


def test_scan_list_by_image_and_repository_with_status_filter(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", duration=10), img("crpimg2", duration=10)))
    first = client.scan("crpimg1")
    client.clock.advance(20)
    second = client.scan("crpimg1")
    client.scan("crpimg2")
    ids = [unpack(op.metadata, scanner_service_pb2.ScanMetadata).scan_result_id for op in (first, second)]

    def listing(**kwargs: Any) -> list[scanner_pb2.ScanResult]:
        request = scanner_service_pb2.ListScanResultsRequest(**kwargs)
        return list(client.scanner.List(request, timeout=TIMEOUT).scan_results)

    assert [r.id for r in listing(image_id="crpimg1")] == [ids[1], ids[0]]  # newest first
    assert [r.id for r in listing(image_id="crpimg1", filter='status="RUNNING"')] == [ids[1]]
    assert [r.id for r in listing(image_id="crpimg1", filter="status = 'READY'")] == [ids[0]]
    repository_id = client.emu.scenario.registries[0].repositories[0].id
    assert len(listing(repository_id=repository_id)) == 3
    assert listing(image_id="crpunknown") == []
    for bad in ('status="DONE"', "status>1", 'image_id="x"', "status"):
        assert code_of(partial(listing, image_id="crpimg1", filter=bad)) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: listing()) == grpc.StatusCode.INVALID_ARGUMENT


def test_last_result_exists_before_any_scan(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", findings=MIXED, last_result={"status": "READY", "age_seconds": 7200})))
    last = client.scanner.GetLast(scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1"), timeout=TIMEOUT)
    assert last.status == scanner_pb2.ScanResult.READY and last.vulnerabilities.critical == 2
    assert client.emu.stats.scans_started == 0
    op = client.scan("crpimg1")
    newest = unpack(client.finish(op.id).response, scanner_pb2.ScanResult)
    again = client.scanner.GetLast(scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1"), timeout=TIMEOUT)
    assert again.id == newest.id != last.id


def test_cancel_running_scan(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", duration=60)))
    op = client.scan("crpimg1")
    cancelled = client.operations.Cancel(
        operation_service_pb2.CancelOperationRequest(operation_id=op.id), timeout=TIMEOUT
    )
    assert cancelled.done and cancelled.error.code == grpc.StatusCode.CANCELLED.value[0]
    scan_id = unpack(op.metadata, scanner_service_pb2.ScanMetadata).scan_result_id
    result = client.scanner.Get(scanner_service_pb2.GetScanResultRequest(scan_result_id=scan_id), timeout=TIMEOUT)
    assert result.status == scanner_pb2.ScanResult.ERROR
    client.clock.advance(120)
    assert client.get_op(op.id) == cancelled  # a done operation stays as it was
    again = client.operations.Cancel(operation_service_pb2.CancelOperationRequest(operation_id=op.id), timeout=TIMEOUT)
    assert again == cancelled


def test_operation_error_and_error_status(connect: Callable[..., Client]) -> None:
    client = connect(
        scenario(
            img("crpcrash", operation_error={"code": "INTERNAL", "message": "scanner crashed"}),
            img("crperror", findings=MIXED, status="ERROR"),
        )
    )
    crashed = client.finish(client.scan("crpcrash").id)
    assert crashed.WhichOneof("result") == "error"
    assert (crashed.error.code, crashed.error.message) == (grpc.StatusCode.INTERNAL.value[0], "scanner crashed")
    errored = unpack(client.finish(client.scan("crperror").id).response, scanner_pb2.ScanResult)
    assert errored.status == scanner_pb2.ScanResult.ERROR and not errored.HasField("vulnerabilities")
    request = scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=errored.id)
    assert code_of(lambda: client.scanner.ListVulnerabilities(request)) == grpc.StatusCode.FAILED_PRECONDITION


# ------------------------------------------------------------------------------------------ idempotency


def test_idempotency_key_returns_the_same_operation(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1"), img("crpimg2")))
    key = str(uuid.uuid4())
    first, second = client.scan("crpimg1", key), client.scan("crpimg1", key)
    assert first.id == second.id and first.metadata == second.metadata
    assert client.emu.stats.scans_started == 1
    assert client.emu.stats.idempotency_keys == [key, key]
    assert client.scan("crpimg1", str(uuid.uuid4())).id != first.id
    assert client.emu.stats.scans_started == 2
    assert code_of(lambda: client.scan("crpimg2", key)) == grpc.StatusCode.INVALID_ARGUMENT


def test_lost_response_then_retry_with_same_key_starts_one_scan(connect: Callable[..., Client]) -> None:
    faults = [{"method": "ScannerService.Scan", "code": "UNAVAILABLE", "lost_response": True}]
    client = connect(scenario(img("crpimg1", faults=faults)))
    key = str(uuid.uuid4())
    assert code_of(lambda: client.scan("crpimg1", key)) == grpc.StatusCode.UNAVAILABLE
    client.scan("crpimg1", key)
    assert client.emu.stats.scans_started == 1
    assert client.emu.stats.calls["ScannerService.Scan"] == 2


def test_concurrent_scan_quota(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", duration=10), max_concurrent_scans=1))
    client.scan("crpimg1")
    assert code_of(lambda: client.scan("crpimg1")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    client.clock.advance(10)
    client.scan("crpimg1")
    assert client.emu.stats.scans_started == 2
    assert client.emu.stats.max_concurrent_scans == 1


def test_peak_of_concurrently_running_scans(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", duration=10), img("crpimg2", duration=10)))
    client.scan("crpimg1")
    client.clock.advance(5)
    key = str(uuid.uuid4())
    client.scan("crpimg2", key)
    client.scan("crpimg2", key)  # joins, starts nothing
    client.clock.advance(6)  # the first is done now
    client.scan("crpimg1")
    assert (client.emu.stats.scans_started, client.emu.stats.max_concurrent_scans) == (3, 2)


# ------------------------------------------------------------------------------------------ paging


def test_list_vulnerabilities_pages_cover_all_findings_once(connect: Callable[..., Client]) -> None:
    findings = [finding(f"CVE-2024-{i:04d}", SEVERITIES[i % 6], package=f"pkg{i}") for i in range(25)]
    client = connect(scenario(img("crpimg1", findings=findings)))
    scan_id = unpack(client.finish(client.scan("crpimg1").id).response, scanner_pb2.ScanResult).id

    def page(**kwargs: Any) -> scanner_service_pb2.ListVulnerabilitiesResponse:
        request = scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=scan_id, **kwargs)
        return client.scanner.ListVulnerabilities(request, timeout=TIMEOUT)

    seen: list[str] = []
    token, pages = "", 0
    while True:
        response = page(page_size=7, page_token=token)
        pages += 1
        seen += [v.package.name for v in response.vulnerabilities]
        token = response.next_page_token
        if not token:
            break
    assert pages == 4 and sorted(seen) == sorted(f["name"] for f in findings) and len(set(seen)) == 25
    one = page().vulnerabilities  # page_size 0 = default 100
    assert len(one) == 25 and page().next_page_token == ""
    assert one[0].severity == scanner_pb2.Vulnerability.CRITICAL and one[0].package.package == "pkg0"
    assert [v.severity for v in page(filter='severity="HIGH"').vulnerabilities] == [scanner_pb2.Vulnerability.HIGH] * 4
    first_token = page(page_size=7).next_page_token
    for bad in (
        {"page_size": 1001},
        {"page_size": -1},
        {"page_token": "garbage!"},
        {"page_token": "x" * 101},
        {"page_token": first_token, "filter": 'severity="HIGH"'},  # a token from another query
        {"filter": "severity>HIGH"},
        {"order_by": "severity"},
    ):
        assert code_of(partial(page, **bad)) == grpc.StatusCode.INVALID_ARGUMENT, bad
    assert len(page(page_size=1000).vulnerabilities) == 25


def test_list_vulnerabilities_of_running_scan_is_refused(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", findings=MIXED, duration=10)))
    scan_id = unpack(client.scan("crpimg1").metadata, scanner_service_pb2.ScanMetadata).scan_result_id
    request = scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=scan_id)
    assert code_of(lambda: client.scanner.ListVulnerabilities(request)) == grpc.StatusCode.FAILED_PRECONDITION


def test_image_list_paging_and_lookup(connect: Callable[..., Client]) -> None:
    data = scenario(*(img(f"crpimg{i}", tags=[f"v{i}", "latest"] if i == 4 else [f"v{i}"]) for i in range(5)))
    data["registries"][0]["repositories"].append({"name": "team/other", "images": [img("crpother")]})
    client = connect(data)

    def listing(**kwargs: Any) -> image_service_pb2.ListImagesResponse:
        return client.images.List(image_service_pb2.ListImagesRequest(**kwargs), timeout=TIMEOUT)

    names: list[str] = []
    token = ""
    for _ in range(10):
        response = listing(repository_name="crptest/app", page_size=2, page_token=token)
        assert len(response.images) <= 2
        names += [i.id for i in response.images]
        token = response.next_page_token
        if not token:
            break
    assert names == [f"crpimg{i}" for i in range(5)]
    image = listing(repository_name="crptest/app", page_size=1000).images[4]
    assert (image.name, image.digest, list(image.tags)) == ("crptest/app", DIGEST, ["v4", "latest"])
    assert image.created_at.seconds > 0
    assert [i.id for i in listing(repository_name="crptest/team/other").images] == ["crpother"]
    assert len(listing(registry_id="crptest").images) == 6
    assert [i.id for i in listing(registry_id="crptest", filter='name="crptest/team/other"').images] == ["crpother"]
    assert list(listing(repository_name="crptest/missing").images) == []
    assert list(listing(repository_name="crpnope/app").images) == []
    for bad in ({}, {"repository_name": "Bad Name"}, {"folder_id": "x" * 51}, {"registry_id": "x" * 51}):
        assert code_of(partial(listing, **bad)) == grpc.StatusCode.INVALID_ARGUMENT, bad
    got = client.images.Get(image_service_pb2.GetImageRequest(image_id="crpimg4"), timeout=TIMEOUT)
    assert got == image
    assert code_of(lambda: client.images.Get(image_service_pb2.GetImageRequest(image_id="crpnone"))) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_image_list_by_folder_lists_every_registry_of_it_in_pages(connect: Callable[..., Client]) -> None:
    data = scenario(*(img(f"crpimg{i}") for i in range(3)))
    data["registries"][0]["folder"] = "b1gfolderone"
    data["registries"].append({"id": "crpsecond", "folder": "b1gfolderone", "repositories": [
        {"name": "svc", "images": [img("crpsvc1"), img("crpsvc2")]}]})  # fmt: skip
    data["registries"].append({"id": "crpelse", "repositories": [{"name": "x", "images": [img("crpelse1")]}]})
    client = connect(data)
    ids: list[str] = []
    token = ""
    for _ in range(10):
        request = image_service_pb2.ListImagesRequest(folder_id="b1gfolderone", page_size=2, page_token=token)
        response = client.images.List(request, timeout=TIMEOUT)
        assert len(response.images) <= 2
        ids += [i.id for i in response.images]
        token = response.next_page_token
        if not token:
            break
    assert ids == ["crpimg0", "crpimg1", "crpimg2", "crpsvc1", "crpsvc2"]
    other = client.images.List(image_service_pb2.ListImagesRequest(folder_id="b1gnofolder"), timeout=TIMEOUT)
    assert list(other.images) == []
    too_big = image_service_pb2.ListImagesRequest(folder_id="b1gfolderone", page_size=1001)
    assert code_of(lambda: client.images.List(too_big)) == grpc.StatusCode.INVALID_ARGUMENT


# ------------------------------------------------------------------------------------------ anomalies


def _done_op(client: Client) -> tuple[operation_pb2.Operation, operation_pb2.Operation]:
    op = client.scan("crpimg1")
    return op, client.finish(op.id)


def test_anomaly_done_without_result(connect: Callable[..., Client]) -> None:
    _, done = _done_op(connect(scenario(img("crpimg1", anomaly="done_without_result"))))
    assert done.done and done.WhichOneof("result") is None


def test_anomaly_wrong_response_type(connect: Callable[..., Client]) -> None:
    _, done = _done_op(connect(scenario(img("crpimg1", anomaly="wrong_response_type"))))
    assert not done.response.Is(scanner_pb2.ScanResult.DESCRIPTOR)
    assert unpack(done.response, image_pb2.Image).id == "crpimg1"


def test_anomaly_missing_stats(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", findings=MIXED, anomaly="missing_stats")))
    _, done = _done_op(client)
    result = unpack(done.response, scanner_pb2.ScanResult)
    assert result.status == scanner_pb2.ScanResult.READY and not result.HasField("vulnerabilities")
    fetched = client.scanner.Get(scanner_service_pb2.GetScanResultRequest(scan_result_id=result.id), timeout=TIMEOUT)
    assert not fetched.HasField("vulnerabilities")


def test_anomaly_negative_count(connect: Callable[..., Client]) -> None:
    _, done = _done_op(connect(scenario(img("crpimg1", findings=MIXED, anomaly="negative_count"))))
    stats = unpack(done.response, scanner_pb2.ScanResult).vulnerabilities
    assert stats.critical == -1 and stats.high == 1


def test_anomaly_wrong_image_id(connect: Callable[..., Client]) -> None:
    _, done = _done_op(connect(scenario(img("crpimg1", anomaly="wrong_image_id"))))
    assert unpack(done.response, scanner_pb2.ScanResult).image_id not in ("", "crpimg1")


def test_anomaly_wrong_metadata_type(connect: Callable[..., Client]) -> None:
    op, done = _done_op(connect(scenario(img("crpimg1", anomaly="wrong_metadata_type"))))
    for operation in (op, done):
        assert not operation.metadata.Is(scanner_service_pb2.ScanMetadata.DESCRIPTOR)
        assert unpack(operation.metadata, image_service_pb2.DeleteImageMetadata).image_id == "crpimg1"


def test_anomaly_running_status_when_done(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", anomaly="running_status_when_done")))
    _, done = _done_op(client)
    assert done.done and unpack(done.response, scanner_pb2.ScanResult).status == scanner_pb2.ScanResult.RUNNING
    request = scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1")
    assert code_of(lambda: client.scanner.GetLast(request)) == grpc.StatusCode.NOT_FOUND


def test_anomaly_error_before_done(connect: Callable[..., Client]) -> None:
    op, done = _done_op(connect(scenario(img("crpimg1", anomaly="error_before_done"))))
    assert not op.done and op.WhichOneof("result") == "error" and op.error.code == grpc.StatusCode.INTERNAL.value[0]
    # Later the server claims success: only a client that failed on the early error stays closed.
    assert done.done and unpack(done.response, scanner_pb2.ScanResult).status == scanner_pb2.ScanResult.READY


# ------------------------------------------------------------------------------------------ faults


def test_faults_count_down_then_succeed(connect: Callable[..., Client]) -> None:
    faults = [
        {"method": "ScannerService.Scan", "code": "UNAVAILABLE", "count": 2},
        {"method": "OperationService.Get", "code": "OK", "count": 1},
        {"method": "OperationService.Get", "code": "INTERNAL", "count": 1, "message": "boom"},
    ]
    client = connect(scenario(img("crpimg1", faults=faults), img("crpimg2")))
    client.scan("crpimg2")  # another image is not affected
    assert [code_of(lambda: client.scan("crpimg1")) for _ in range(2)] == [grpc.StatusCode.UNAVAILABLE] * 2
    assert client.emu.stats.scans_started == 1
    op = client.scan("crpimg1")
    client.get_op(op.id)
    with pytest.raises(grpc.RpcError) as info:
        client.get_op(op.id)
    assert info.value.code() == grpc.StatusCode.INTERNAL and info.value.details() == "boom"  # type: ignore[attr-defined]
    assert client.get_op(op.id).id == op.id
    assert client.emu.stats.calls["ScannerService.Scan"] == 4 and client.emu.stats.scans_started == 2


def test_top_level_faults_apply_to_image_list(connect: Callable[..., Client]) -> None:
    faults = [{"method": "ImageService.List", "code": "PERMISSION_DENIED", "count": 1000}]
    client = connect(scenario(img("crpimg1"), faults=faults))
    request = image_service_pb2.ListImagesRequest(repository_name="crptest/app")
    for _ in range(3):
        assert code_of(lambda: client.images.List(request)) == grpc.StatusCode.PERMISSION_DENIED
    assert client.emu.stats.calls["ImageService.List"] == 3


def test_operation_not_found_right_after_scan(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", operation_not_found=2)))
    op = client.scan("crpimg1")
    assert [code_of(lambda: client.get_op(op.id)) for _ in range(2)] == [grpc.StatusCode.NOT_FOUND] * 2
    assert client.get_op(op.id).id == op.id


def test_poll_interval_header(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1", poll_interval=3), img("crpimg2", poll_interval=0.25), img("crpimg3")))
    header = "x-operation-poll-interval"
    headers = {}
    for image_id in ("crpimg1", "crpimg2", "crpimg3"):
        # The Scan answer carries it too, so a client's first wait can be the server's interval.
        op, call = client.scanner.Scan.with_call(scanner_service_pb2.ScanRequest(image_id=image_id), timeout=TIMEOUT)
        on_scan = dict(call.initial_metadata()).get(header)
        _, call = client.operations.Get.with_call(operation_service_pb2.GetOperationRequest(operation_id=op.id))
        on_get = dict(call.initial_metadata()).get(header)
        scan_result_id = unpack(op.metadata, scanner_service_pb2.ScanMetadata).scan_result_id
        request = scanner_service_pb2.GetScanResultRequest(scan_result_id=scan_result_id)
        _, call = client.scanner.Get.with_call(request, timeout=TIMEOUT)  # a joined scan is polled here
        headers[image_id] = (on_scan, on_get, dict(call.initial_metadata()).get(header))
    assert headers == {"crpimg1": ("3",) * 3, "crpimg2": ("0.25",) * 3, "crpimg3": (None,) * 3}
    # A finished scan result asks for no more polls.
    client.clock.advance(3600)
    _, call = client.scanner.Get.with_call(request, timeout=TIMEOUT)
    assert header not in dict(call.initial_metadata())


# ------------------------------------------------------------------------------------------ errors, headers


def test_not_found_and_invalid_argument(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1")))
    s, o = client.scanner, client.operations
    cases = {
        "scan unknown image": (lambda: client.scan("crpnope"), grpc.StatusCode.NOT_FOUND),
        "scan no image": (lambda: client.scan(""), grpc.StatusCode.INVALID_ARGUMENT),
        "scan long id": (lambda: client.scan("x" * 51), grpc.StatusCode.INVALID_ARGUMENT),
        "get unknown": (
            lambda: s.Get(scanner_service_pb2.GetScanResultRequest(scan_result_id="crgsrnope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "get empty": (lambda: s.Get(scanner_service_pb2.GetScanResultRequest()), grpc.StatusCode.INVALID_ARGUMENT),
        "last none": (
            lambda: s.GetLast(scanner_service_pb2.GetLastScanResultRequest(image_id="crpimg1")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "last unknown image": (
            lambda: s.GetLast(scanner_service_pb2.GetLastScanResultRequest(image_id="crpnope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "last empty": (
            lambda: s.GetLast(scanner_service_pb2.GetLastScanResultRequest()),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "vulns unknown": (
            lambda: s.ListVulnerabilities(scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id="crgsrx")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "op unknown": (lambda: client.get_op("crgopnope"), grpc.StatusCode.NOT_FOUND),
        "op empty": (lambda: client.get_op(""), grpc.StatusCode.INVALID_ARGUMENT),
        "cancel unknown": (
            lambda: o.Cancel(operation_service_pb2.CancelOperationRequest(operation_id="crgopnope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "image get empty": (
            lambda: client.images.Get(image_service_pb2.GetImageRequest()),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "image delete": (
            lambda: client.images.Delete(image_service_pb2.DeleteImageRequest(image_id="crpimg1")),
            grpc.StatusCode.UNIMPLEMENTED,
        ),
    }
    assert {name: code_of(call) for name, (call, _) in cases.items()} == {
        name: code for name, (_, code) in cases.items()
    }


def test_request_ids_on_success_and_error(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1")))
    request_id = str(uuid.uuid4())
    _, call = client.scanner.Scan.with_call(
        scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=[("x-request-id", request_id)]
    )
    headers = dict(call.initial_metadata())
    assert headers["x-request-id"] == request_id and uuid.UUID(headers["x-server-trace-id"])

    with pytest.raises(grpc.RpcError) as info:
        client.scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpnope"), metadata=[("x-request-id", "r-1")])
    error: Any = info.value
    assert dict(error.initial_metadata())["x-request-id"] == "r-1"
    assert dict(error.trailing_metadata())["x-request-id"] == "r-1"
    assert dict(error.trailing_metadata())["x-server-trace-id"]

    _, call = client.scanner.Scan.with_call(scanner_service_pb2.ScanRequest(image_id="crpimg1"))
    assert uuid.UUID(dict(call.initial_metadata())["x-request-id"])  # fresh when the client sent none
    sent = client.emu.stats.metadata_of("ScannerService.Scan")
    assert sent[0]["x-request-id"] == request_id and "user-agent" in sent[0]


def test_injected_fault_carries_request_ids(connect: Callable[..., Client]) -> None:
    faults = [{"method": "ImageService.List", "code": "UNAVAILABLE"}]
    client = connect(scenario(img("crpimg1"), faults=faults))
    with pytest.raises(grpc.RpcError) as info:
        client.images.List(image_service_pb2.ListImagesRequest(registry_id="crptest"), metadata=[("x-request-id", "q")])
    assert dict(info.value.trailing_metadata())["x-request-id"] == "q"  # type: ignore[attr-defined]


def test_require_auth(connect: Callable[..., Client]) -> None:
    accounts = [{"id": "ajesa1", "roles": [SCANNER_ROLE]}]
    grants = [{"token": "t1.x", "service_account_id": "ajesa1"}]
    client = connect(scenario(img("crpimg1"), require_auth=True, service_accounts=accounts, iam_tokens=grants))
    assert code_of(lambda: client.scan("crpimg1")) == grpc.StatusCode.UNAUTHENTICATED
    request = scanner_service_pb2.ScanRequest(image_id="crpimg1")
    assert client.scanner.Scan(request, metadata=[("authorization", "Bearer t1.x")]).id
    assert client.emu.stats.metadata_of("ScannerService.Scan")[1]["authorization"] == "Bearer t1.x"
    other = partial(client.scanner.Scan, request, metadata=[("authorization", "Bearer t1.other")])
    assert code_of(other) == grpc.StatusCode.UNAUTHENTICATED
    assert client.emu.stats.errors["ScannerService.Scan:UNAUTHENTICATED"] == 2


# ------------------------------------------------------------------------------------------ IAM, discovery


def _jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(claims)}.c2lnbmF0dXJl"


def test_iam_token_exchange_verifies_the_jwt(connect: Callable[..., Client]) -> None:
    key, other = rsa_key("a"), rsa_key("b")
    accounts = [{"id": "ajesa1", "roles": [SCANNER_ROLE], "key_id": "ajekey1", "public_key": public_pem(key)}]
    oauth = [{"token": "y0_x", "service_account_id": "ajesa1"}]
    client = connect(scenario(img("crpimg1"), service_accounts=accounts, oauth_tokens=oauth, token_lifetime=60))
    iam = iam_token_service_pb2_grpc.IamTokenServiceStub(client.channel)
    now = int(time.time())
    aud = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
    claims = {"iss": "ajesa1", "aud": aud, "iat": now, "exp": now + 3600}

    def signed(signer: Any = key, alg: str = "PS256", kid: str = "ajekey1", **changes: Any) -> str:
        return pyjwt.encode({**claims, **changes}, signer, algorithm=alg, headers={"kid": kid})

    response = iam.Create(iam_token_service_pb2.CreateIamTokenRequest(jwt=signed()), timeout=TIMEOUT)
    assert response.iam_token.startswith("t1.") and now + 30 < response.expires_at.seconds <= now + 61
    for bad, why in (
        ("not-a-jwt", "not a JWT"),
        (_jwt({"alg": "PS256", "kid": "ajekey1"}, claims), "signature verification failed"),
        (signed(other), "signature verification failed"),
        (signed(alg="RS256"), "alg must be PS256"),
        (signed(kid="ajekeyunknown"), "unknown key id"),
        (signed(exp=now + 7200), "exp - iat"),
        (signed(aud="x"), "aud must be"),
        (signed(iss="ajesa2"), "iss"),
        (signed(iat=now - 7200, exp=now - 3600), "expired"),
    ):
        request = iam_token_service_pb2.CreateIamTokenRequest(jwt=bad)
        with pytest.raises(grpc.RpcError) as info:
            iam.Create(request, timeout=TIMEOUT)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, why  # type: ignore[attr-defined]
        assert why in info.value.details()  # type: ignore[attr-defined]
    assert iam.Create(iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token="y0_x")).iam_token
    unknown = iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token="y0_unknown")
    assert code_of(partial(iam.Create, unknown)) == grpc.StatusCode.UNAUTHENTICATED


def test_issued_tokens_expire_and_roles_are_checked(connect: Callable[..., Client]) -> None:
    accounts = [{"id": "ajesa1", "roles": [SCANNER_ROLE]}, {"id": "ajepull", "roles": ["container-registry.viewer"]}]
    client = connect(scenario(img("crpimg1"), require_auth=True, service_accounts=accounts, token_lifetime=10))
    token, _, _ = client.emu.authority.issue("ajesa1")
    auth = [("authorization", f"Bearer {token}")]
    assert client.scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=auth).id
    client.clock.advance(11)
    expired = partial(client.scanner.Scan, scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=auth)
    assert code_of(expired) == grpc.StatusCode.UNAUTHENTICATED
    viewer, _, _ = client.emu.authority.issue("ajepull")
    auth = [("authorization", f"Bearer {viewer}")]
    listed = client.images.List(image_service_pb2.ListImagesRequest(registry_id="crptest"), metadata=auth)
    assert [i.id for i in listed.images] == ["crpimg1"]
    denied = partial(client.scanner.Scan, scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=auth)
    assert code_of(denied) == grpc.StatusCode.PERMISSION_DENIED


def test_endpoint_discovery_points_at_the_emulator(connect: Callable[..., Client]) -> None:
    client = connect(scenario(img("crpimg1")))
    endpoints = api_endpoint_service_pb2_grpc.ApiEndpointServiceStub(client.channel)
    listed = endpoints.List(api_endpoint_service_pb2.ListApiEndpointsRequest(), timeout=TIMEOUT).endpoints
    assert {e.id: e.address for e in listed}["container-registry"] == client.emu.address
    assert {e.id for e in listed} >= {"container-registry", "operation", "iam"}


# ------------------------------------------------------------------------------------------ server


def test_port_in_use_is_a_config_error() -> None:
    with Emulator(demo_scenario()) as first:
        with pytest.raises(ConfigError, match="cannot listen"):
            Emulator(demo_scenario(), port=first.port).start()
        assert first.address == f"127.0.0.1:{first.port}"


def test_demo_scenario_serves_documented_references() -> None:
    with Emulator(demo_scenario()) as emu, grpc.insecure_channel(emu.address) as channel:
        images = image_service_pb2_grpc.ImageServiceStub(channel)
        listed = images.List(image_service_pb2.ListImagesRequest(repository_name="crpdemo/app"), timeout=TIMEOUT)
        by_tag = {tag: i.id for i in listed.images for tag in i.tags}
        assert by_tag == {
            "clean": "crpdemoclean00000001",
            "latest": "crpdemoclean00000001",
            "vulnerable": "crpdemovuln000000001",
            "multi": "crpdemomulti00000001",
        }
        # Like a real multi-platform push: the platform images and the attestations are listed untagged.
        untagged = sorted(i.id for i in listed.images if not i.tags)
        assert untagged[2:] == ["crpdemoamd6400000001", "crpdemoarm6400000001"]
        assert all(i.startswith("crpatt") for i in untagged[:2])
        # Every digest demo.yaml documents is one ImageService lists.
        header = (Path(crgate_emulator.__file__).parent / "demo.yaml").read_text()
        documented = set(re.findall(r"@(sha256:[0-9a-f]{64})", header))
        assert len(documented) == 3 and documented <= {i.digest for i in listed.images}
    vulnerable = demo_scenario().image("crpdemovuln000000001")
    assert vulnerable is not None
    assert vulnerable.counts().as_dict() == {
        "critical": 6,
        "high": 7,
        "medium": 6,
        "low": 3,
        "negligible": 3,
        "undefined": 2,
    }
