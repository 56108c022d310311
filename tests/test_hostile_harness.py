"""The sane server: the harness itself works (a well-behaved registry passes, findings violate)."""

from __future__ import annotations

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_service_pb2
from hostile import (
    IMAGE_ID,
    REPO,
    SCAN_ID,
    SEV,
    answer,
    check,
    done_op,
    scan_result,
    stats,
    vuln,
)


def test_sane_server_passes_with_one_scan(server):
    result = check(server)
    assert result.code == 0, result.output
    image = result.doc["images"][0]
    assert (image["image_id"], image["scan_result_id"], image["origin"]) == (IMAGE_ID, SCAN_ID, "scanned")
    assert server.calls["ScannerService.Scan"] == 1
    assert server.calls["ImageService.List"] == 1
    assert server.calls["OperationService.Get"] == 1
    assert server.calls["ScannerService.ListVulnerabilities"] == 1
    assert server.requests["ImageService.List"][0].repository_name == REPO


def test_sane_server_with_findings_is_a_violation(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(critical=1))))
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=[vuln(severity=SEV.CRITICAL)])
    )
    result = check(server)
    assert result.code == 1, result.output
    assert result.doc["images"][0]["violations"] == [{"severity": "critical", "count": 1, "limit": 0}]
