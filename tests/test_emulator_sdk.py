"""A client nobody here wrote must work against the emulator unchanged: the official ``yandexcloud`` SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from crgate_emulator import Emulator, scenario_from_dict
from integration import need, sdk_installed

# The SDK's client runs in its own process: its ``yandex.cloud`` stubs and crgate's own (which the emulator
# serves with) define the same protobuf symbols, and one process refuses to load both.
SDK_CLIENT = """
import json, sys, time
import yandexcloud
from yandex.cloud.containerregistry.v1 import scanner_pb2, scanner_service_pb2
from yandex.cloud.containerregistry.v1.scanner_service_pb2_grpc import ScannerServiceStub
from yandex.cloud.operation import operation_service_pb2
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub

address = sys.argv[1]
# Construction does not touch the network; an explicit endpoint + insecure skips discovery and IAM.
sdk = yandexcloud.SDK(iam_token="t1.dummy")
scanner = sdk.client(ScannerServiceStub, endpoint=address, insecure=True)
operations = sdk.client(OperationServiceStub, endpoint=address, insecure=True)

operation = scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), timeout=5)
for _ in range(100):
    if operation.done:
        break
    time.sleep(0.02)
    operation = operations.Get(operation_service_pb2.GetOperationRequest(operation_id=operation.id), timeout=5)

result = scanner_pb2.ScanResult()
unpacked = operation.response.Unpack(result)
names = []
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
print(json.dumps({
    "done": operation.done,
    "result": operation.WhichOneof("result"),
    "unpacked": unpacked,
    "status": scanner_pb2.ScanResult.Status.Name(result.status),
    "critical": result.vulnerabilities.critical,
    "undefined": result.vulnerabilities.undefined,
    "names": names,
    "crgate_loaded": sorted(m for m in sys.modules if m == "crgate" or m.startswith("crgate.")),
}))
"""

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
    need(sdk_installed(), "the official SDK (yandexcloud, test extras) is not installed")
    done = subprocess.run(
        [sys.executable, "-c", SDK_CLIENT, emu.address], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)

    assert seen["crgate_loaded"] == []
    assert seen["done"] and seen["result"] == "response" and seen["unpacked"]
    assert seen["status"] == "READY"
    assert seen["critical"] == 2 and seen["undefined"] == 2
    assert sorted(seen["names"]) == sorted(f["name"] for f in FINDINGS)

    user_agents = {md.get("user-agent", "") for _, md in emu.stats.request_metadata}
    assert user_agents and all("yandex-cloud-python-sdk" in ua for ua in user_agents)
    assert emu.stats.scans_started == 1
