"""Answers over gRPC's size limits (an image page, a findings page, error trailers): exit 3, never
retried, never blamed on the scan quota.
"""

from __future__ import annotations

import pytest

from hostile import (
    C,
    HostileServer,
    answer,
    check,
    error_of,
    fail,
    images_page,
    img,
    vuln,
    vulns_page,
)


def _oversized_image_page(srv: HostileServer) -> None:
    huge = images_page(*(img(f"crpimg{i:07d}", tags=(f"t{i}",)) for i in range(60_000)))
    assert huge.ByteSize() > 4 * 1024 * 1024
    srv.handlers["ImageService.List"] = answer(huge)


def _oversized_findings_page(srv: HostileServer) -> None:
    huge = vulns_page(*(vuln(f"CVE-2024-{i}", link="https://nvd.example/" + "x" * 100) for i in range(40_000)))
    assert huge.ByteSize() > 4 * 1024 * 1024
    srv.handlers["ScannerService.ListVulnerabilities"] = answer(huge)


def _oversized_error_trailers(srv: HostileServer) -> None:
    srv.handlers["ScannerService.Scan"] = fail(C.FAILED_PRECONDITION, "D" * 100_000)  # over the 16 KiB hard limit


OVERSIZED = {
    "image-page": _oversized_image_page,
    "findings-page": _oversized_findings_page,
    "error-trailers": _oversized_error_trailers,
}


@pytest.mark.parametrize("what", sorted(OVERSIZED))
def test_oversized_answer_is_not_retried_or_blamed_on_the_scan_quota(server, what):
    OVERSIZED[what](server)
    result = check(server, timeout=1.5)
    assert result.code == 3, result.output
    error = error_of(result)
    assert "quota" not in error["message"], error["message"]
    assert sum(server.calls.values()) - server.calls["ScannerService.List"] <= 4  # no retry of the big call
