"""A client nobody here wrote must work against the emulator unchanged: the official ``yandexcloud`` SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

yandexcloud = pytest.importorskip("yandexcloud")

from yandex.cloud.containerregistry.v1 import scanner_pb2, scanner_service_pb2  # noqa: E402
from yandex.cloud.containerregistry.v1.scanner_service_pb2_grpc import ScannerServiceStub  # noqa: E402
from yandex.cloud.operation import operation_service_pb2  # noqa: E402
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub  # noqa: E402

from crgate_emulator import Emulator, scenario_from_dict  # noqa: E402

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED")
FINDINGS = [
    {"name": f"CVE-2024-{i:04d}", "severity": SEVERITIES[i % 6], "package": f"pkg{i}", "version": "1"}
    for i in range(12)
]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    data = {
        "registries": [
            {
                "id": "crptest",
                "repositories": [
                    {
                        "name": "app",
                        "images": [
                            {
                                "id": "crpimg1",
                                "digest": "sha256:" + "1" * 64,
                                "findings": FINDINGS,
                                "scan": {"duration": 0.1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    with Emulator(scenario_from_dict(data)) as emulator:
        yield emulator


def test_official_sdk_scans_polls_and_pages(emu: Emulator) -> None:
    # Construction does not touch the network; an explicit endpoint + insecure skips discovery and IAM.
    sdk = yandexcloud.SDK(iam_token="t1.dummy")
    scanner = sdk.client(ScannerServiceStub, endpoint=emu.address, insecure=True)
    operations = sdk.client(OperationServiceStub, endpoint=emu.address, insecure=True)

    operation = scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), timeout=5)
    for _ in range(100):
        if operation.done:
            break
        time.sleep(0.02)
        operation = operations.Get(operation_service_pb2.GetOperationRequest(operation_id=operation.id), timeout=5)
    assert operation.done and operation.WhichOneof("result") == "response"

    result = scanner_pb2.ScanResult()
    assert operation.response.Unpack(result)
    assert result.status == scanner_pb2.ScanResult.READY
    assert result.vulnerabilities.critical == 2 and result.vulnerabilities.undefined == 2

    names: list[str] = []
    token = ""
    for _ in range(10):
        page = scanner.ListVulnerabilities(
            scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=result.id, page_size=5, page_token=token),
            timeout=5,
        )
        names += [v.package.name for v in page.vulnerabilities]
        token = page.next_page_token
        if not token:
            break
    assert sorted(names) == sorted(f["name"] for f in FINDINGS)

    user_agents = {md.get("user-agent", "") for _, md in emu.stats.request_metadata}
    assert all("yandex-cloud-python-sdk" in ua for ua in user_agents)
    assert emu.stats.scans_started == 1
