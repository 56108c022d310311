"""Identifiers the server makes up (ids, page tokens, request ids) are printed safely, and bounded."""

from __future__ import annotations

import pytest

from conftest import run_cli
from hostile import (
    IMAGE_ID,
    REF,
    RUNNING,
    HostileServer,
    answer,
    check,
    done_op,
    error_of,
    images_page,
    img,
    operation,
    running_list,
    scan_result,
    with_headers,
)

ESC = "\x1b[2J\x1b]0;pwned\x07"


def _hostile_scan_result_id(srv: HostileServer) -> None:
    sid = "crpscan" + ESC
    srv.handlers["ScannerService.Scan"] = answer(operation(scan_id=sid))
    srv.handlers["OperationService.Get"] = answer(done_op(scan_id=sid, response=scan_result(scan_id=sid)))


def _hostile_image_id(srv: HostileServer) -> None:
    srv.handlers["ImageService.List"] = answer(images_page(img(image_id="crpimg" + ESC)))
    srv.handlers["OperationService.Get"] = answer(done_op(response=scan_result(image_id="crpimg" + ESC)))


def _hostile_operation_id(srv: HostileServer) -> None:
    srv.handlers["ScannerService.Scan"] = answer(operation(op_id="crpop" + ESC))
    srv.handlers["OperationService.Get"] = answer(operation(op_id="crpop" + ESC))  # never done: timeout


def _hostile_foreign_image(srv: HostileServer) -> None:
    srv.handlers["OperationService.Get"] = answer(done_op(response=scan_result(image_id="crpother" + ESC)))


def _hostile_page_token(srv: HostileServer) -> None:
    srv.handlers["ImageService.List"] = answer(images_page(token="tok" + ESC))


def _hostile_joined_id(srv: HostileServer) -> None:
    sid = "crpjoin" + ESC
    srv.handlers["ScannerService.List"] = answer(running_list(scan_result(sid, IMAGE_ID, RUNNING)))
    srv.handlers["ScannerService.Get"] = answer(scan_result(sid))


HOSTILE_IDS = {
    "scan-result-id": _hostile_scan_result_id,
    "image-id": _hostile_image_id,
    "operation-id": _hostile_operation_id,
    "foreign-image-id": _hostile_foreign_image,
    "page-token": _hostile_page_token,
    "joined-scan-id": _hostile_joined_id,
}


@pytest.mark.parametrize("where", sorted(HOSTILE_IDS))
def test_escape_sequences_in_server_identifiers_never_reach_the_terminal(server, where):
    HOSTILE_IDS[where](server)
    args = ["check", "--endpoint", server.address, "--insecure", "--progress", "lines", "--timeout", "1"]
    result = run_cli([*args, REF, "--format", "text"])
    assert "Traceback" not in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


@pytest.mark.parametrize("where", ["page-token", "operation-id", "request-id-header", "ambiguous-images"])
def test_server_identifiers_are_bounded_in_messages(server, where):
    long = "Z" * 100_000
    if where == "ambiguous-images":  # the ambiguity message lists every matching image id
        server.handlers["ImageService.List"] = answer(images_page(*(img(f"crpimg{i:06d}") for i in range(20_000))))
    elif where == "page-token":
        server.handlers["ImageService.List"] = answer(images_page(token=long))
    elif where == "operation-id":
        server.handlers["ScannerService.Scan"] = answer(operation(op_id=long, done=True))
    else:  # a successful answer's own header, under gRPC's 8 KiB metadata limit
        server.handlers["OperationService.Get"] = with_headers(
            (("x-request-id", "Q" * 7000),), answer(operation(done=True))
        )
    result = check(server)
    assert result.code == 3, result.output
    assert len(error_of(result)["message"]) < 3000, len(error_of(result)["message"])
