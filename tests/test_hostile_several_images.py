"""Several images in one run: one hostile answer never hides behind another image."""

from __future__ import annotations

from hostile import (
    DIGEST_A,
    DIGEST_B,
    REF,
    answer,
    check,
    done_op,
    images_page,
    img,
    operation,
    scan_result,
    stats,
)


def test_one_anomalous_image_makes_the_run_an_error(server):
    server.registry.tags["bad"] = DIGEST_B
    server.handlers["ImageService.List"] = answer(images_page(img(), img("crpimg2", tags=("bad",), digest=DIGEST_B)))
    server.handlers["ScannerService.Scan"] = lambda request, context, n: operation(
        op_id=f"op-{request.image_id}", scan_id=f"scan-{request.image_id}"
    )
    server.handlers["OperationService.Get"] = lambda request, context, n: (
        done_op(op_id=request.operation_id, scan_id="scan-crpimg1", response=scan_result("scan-crpimg1"))
        if request.operation_id == "op-crpimg1"
        else done_op(op_id=request.operation_id, scan_id="scan-crpimg2", response=scan_result("scan-crpimg2"))
    )
    result = check(server, refs=(REF, "cr.yandex/crptest/app:bad"))
    assert result.code == 3, result.output
    first, second = result.doc["images"]
    assert first["verdict"] == "pass" and second["verdict"] == "error"
    assert "result is for image 'crpimg1', but image crpimg2 was scanned" in second["error"]["message"]


def test_two_references_to_one_image_share_one_scan_and_its_anomaly(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(high=-3))))
    result = check(server, refs=(REF, f"cr.yandex/crptest/app@{DIGEST_A}"))
    assert result.code == 3, result.output
    assert [i["verdict"] for i in result.doc["images"]] == ["error", "error"]
    assert all("negative vulnerability count" in i["error"]["message"] for i in result.doc["images"])
    assert server.calls["ScannerService.Scan"] == 1
