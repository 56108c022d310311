"""crgate against hostile gRPC servers: every anomaly must fail closed, with the right exit class.

Each test builds a small scriptable server out of the ``yandexcloud`` servicers (ImageService,
ScannerService, OperationService) on loopback, runs the real CLI in-process and checks the exit code, a
useful message, that no traceback or terminal escape reaches the output, that ``--format json`` stays
valid JSON, and that the number of calls the server received is bounded.

Each case was once a way a hostile server could fool crgate; all are fixed and must stay fixed.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2
from yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc

import crgate.report
from conftest import DIGEST_A, DIGEST_B, run_cli

REF = "cr.yandex/crptest/app:tag"
REPO = "crptest/app"
IMAGE_ID = "crpimg1"
OP_ID = "crpop1"
SCAN_ID = "crpscan1"
INT64_MAX = 2**63 - 1
C = grpc.StatusCode
SEV = scanner_pb2.Vulnerability
READY = scanner_pb2.ScanResult.READY
RUNNING = scanner_pb2.ScanResult.RUNNING

Handler = Callable[[Any, grpc.ServicerContext, int], Any]
REPORT_SCHEMA = json.loads((Path(crgate.report.__file__).parent / "report.schema.json").read_text())
REPORT_VALIDATOR = jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker())


# -- messages ------------------------------------------------------------------------------------


def now_ts(offset: float = 0.0) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(int(time.time() + offset))
    return ts


def img(image_id: str = IMAGE_ID, tags: tuple[str, ...] = ("tag",), digest: str = DIGEST_A, name: str = REPO):
    return image_pb2.Image(id=image_id, name=name, digest=digest, tags=list(tags))


def stats(**counts: int) -> scanner_pb2.VulnerabilityStats:
    return scanner_pb2.VulnerabilityStats(**counts)


def scan_result(
    scan_id: str = SCAN_ID,
    image_id: str = IMAGE_ID,
    status: int = READY,
    vulns: scanner_pb2.VulnerabilityStats | None = None,
    scanned_at: timestamp_pb2.Timestamp | None = None,
) -> scanner_pb2.ScanResult:
    message = scanner_pb2.ScanResult(id=scan_id, image_id=image_id, status=status)
    if status != RUNNING:
        message.vulnerabilities.CopyFrom(vulns if vulns is not None else stats())
        message.scanned_at.CopyFrom(scanned_at if scanned_at is not None else now_ts())
    return message


def packed(message: Any) -> any_pb2.Any:
    value = any_pb2.Any()
    value.Pack(message)
    return value


def operation(
    op_id: str = OP_ID,
    *,
    done: bool = False,
    scan_id: str | None = SCAN_ID,
    response: Any = None,
    error: status_pb2.Status | None = None,
) -> operation_pb2.Operation:
    op = operation_pb2.Operation(id=op_id, done=done)
    if scan_id is not None:
        op.metadata.Pack(scanner_service_pb2.ScanMetadata(scan_result_id=scan_id))
    if response is not None:
        op.response.CopyFrom(response if isinstance(response, any_pb2.Any) else packed(response))
    if error is not None:
        op.error.CopyFrom(error)
    return op


def done_op(**kwargs: Any) -> operation_pb2.Operation:
    kwargs.setdefault("response", scan_result())
    return operation(done=True, **kwargs)


def vuln(cve: str = "CVE-2024-0001", severity: int = SEV.HIGH, package: str = "openssl", **extra: str):
    return scanner_pb2.Vulnerability(
        severity=severity,
        package=scanner_pb2.PackageVulnerability(name=cve, package=package, version="1.0", **extra),
    )


# -- the hostile server --------------------------------------------------------------------------


def answer(value: Any) -> Handler:
    return lambda request, context, n: value


def fail(code: grpc.StatusCode, details: str = "hostile", trailing: tuple[tuple[str, str], ...] = ()) -> Handler:
    def handler(request: Any, context: grpc.ServicerContext, n: int) -> Any:
        if trailing:
            context.set_trailing_metadata(trailing)
        context.abort(code, details)

    return handler


def sequence(*handlers: Handler) -> Handler:
    """The n-th call gets the n-th handler; the last one repeats."""
    return lambda request, context, n: handlers[min(n, len(handlers)) - 1](request, context, n)


def sleeping(seconds: float, then: Handler) -> Handler:
    """Stall ``seconds`` (less if the client gives up first), then answer."""

    def handler(request: Any, context: grpc.ServicerContext, n: int) -> Any:
        until = time.monotonic() + seconds
        while time.monotonic() < until and context.is_active():
            time.sleep(0.01)
        return then(request, context, n)

    return handler


def with_headers(headers: tuple[tuple[str, str], ...], then: Handler) -> Handler:
    def handler(request: Any, context: grpc.ServicerContext, n: int) -> Any:
        context.send_initial_metadata(headers)
        return then(request, context, n)

    return handler


def raw(data: bytes) -> Handler:
    """Answer with these bytes on the wire, whatever the method's response type (see ``_serialize``)."""
    return answer(data)


def _serialize(response: Any) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


class ImageServicer(image_service_pb2_grpc.ImageServiceServicer):
    def __init__(self, server: HostileServer):
        self._server = server

    def List(self, request, context):
        return self._server.dispatch("ImageService.List", request, context)


class ScannerServicer(scanner_service_pb2_grpc.ScannerServiceServicer):
    def __init__(self, server: HostileServer):
        self._server = server

    def Scan(self, request, context):
        return self._server.dispatch("ScannerService.Scan", request, context)

    def Get(self, request, context):
        return self._server.dispatch("ScannerService.Get", request, context)

    def GetLast(self, request, context):
        return self._server.dispatch("ScannerService.GetLast", request, context)

    def List(self, request, context):
        return self._server.dispatch("ScannerService.List", request, context)

    def ListVulnerabilities(self, request, context):
        return self._server.dispatch("ScannerService.ListVulnerabilities", request, context)


class OperationServicer(operation_service_pb2_grpc.OperationServiceServicer):
    def __init__(self, server: HostileServer):
        self._server = server

    def Get(self, request, context):
        return self._server.dispatch("OperationService.Get", request, context)


# (service full name, request type) of every method the hostile server answers, by "Service.Method".
_METHODS = {
    "ImageService.List": ("yandex.cloud.containerregistry.v1.ImageService", image_service_pb2.ListImagesRequest),
    "ScannerService.Scan": ("yandex.cloud.containerregistry.v1.ScannerService", scanner_service_pb2.ScanRequest),
    "ScannerService.Get": (
        "yandex.cloud.containerregistry.v1.ScannerService",
        scanner_service_pb2.GetScanResultRequest,
    ),
    "ScannerService.GetLast": (
        "yandex.cloud.containerregistry.v1.ScannerService",
        scanner_service_pb2.GetLastScanResultRequest,
    ),
    "ScannerService.List": (
        "yandex.cloud.containerregistry.v1.ScannerService",
        scanner_service_pb2.ListScanResultsRequest,
    ),
    "ScannerService.ListVulnerabilities": (
        "yandex.cloud.containerregistry.v1.ScannerService",
        scanner_service_pb2.ListVulnerabilitiesRequest,
    ),
    "OperationService.Get": ("yandex.cloud.operation.OperationService", operation_service_pb2.GetOperationRequest),
}


def sane_handlers() -> dict[str, Handler]:
    """A well-behaved registry: one image, no running scan, a scan that is done on the first poll."""
    return {
        "ImageService.List": answer(image_service_pb2.ListImagesResponse(images=[img()])),
        "ScannerService.List": answer(scanner_service_pb2.ListScanResultsResponse()),
        "ScannerService.GetLast": fail(C.NOT_FOUND, "no scan result"),
        "ScannerService.Scan": answer(operation()),
        "OperationService.Get": answer(done_op()),
        "ScannerService.Get": answer(scan_result()),
        "ScannerService.ListVulnerabilities": answer(scanner_service_pb2.ListVulnerabilitiesResponse()),
    }


class HostileServer:
    """A scriptable registry: ``handlers[method](request, context, n)`` answers the n-th call of a method.

    The generated servicers route every call through ``dispatch``; they are registered the way
    ``add_*Servicer_to_server`` does it, except that a handler may also answer raw bytes (garbage on the
    wire). Every call is counted and its request and metadata recorded.
    """

    def __init__(self) -> None:
        self.handlers = sane_handlers()
        self.calls: Counter[str] = Counter()
        self.requests: dict[str, list[Any]] = defaultdict(list)
        self.metadata: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._server = grpc.server(ThreadPoolExecutor(max_workers=16))
        servicers = {
            "ImageService": ImageServicer(self),
            "ScannerService": ScannerServicer(self),
            "OperationService": OperationServicer(self),
        }
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = defaultdict(dict)
        for name, (service, request_type) in _METHODS.items():
            short, method = name.split(".")
            by_service[service][method] = grpc.unary_unary_rpc_method_handler(
                getattr(servicers[short], method),
                request_deserializer=request_type.FromString,
                response_serializer=_serialize,
            )
        for service, methods in by_service.items():
            self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def dispatch(self, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls[method] += 1
            number = self.calls[method]
            self.requests[method].append(request)
            self.metadata[method].append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        return self.handlers[method](request, context, number)

    def stop(self) -> None:
        self._server.stop(0)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    hostile = HostileServer()
    yield hostile
    hostile.stop()


# -- running crgate ------------------------------------------------------------------------------


def check(
    srv: HostileServer,
    *extra: str,
    refs: tuple[str, ...] = (REF,),
    fmt: str = "json",
    timeout: float = 5,
) -> Any:
    args = ["check", "--endpoint", srv.address, "--insecure", "--progress", "lines", "--timeout", str(timeout)]
    result = run_cli([*args, *refs, "--format", fmt, *extra])
    assert "Traceback" not in result.output, result.output
    assert "internal error" not in result.output, result.output
    assert "\x1b" not in result.output and "\x9b" not in result.output, "terminal escapes reached the output"
    if fmt == "json":
        result.doc = json.loads(result.stdout)  # stdout is exactly one JSON document
        REPORT_VALIDATOR.validate(result.doc)
        assert result.doc["exit_code"] == result.code
    return result


def error_of(result: Any, index: int = 0) -> dict[str, Any]:
    error = result.doc["images"][index]["error"]
    assert error is not None, result.output
    assert result.doc["images"][index]["counts"] is None
    return error


def assert_fails_closed(result: Any, code: int, fragment: str, kind: str | None = None) -> dict[str, Any]:
    assert result.code == code, result.output
    assert result.doc["verdict"] == "error"
    error = error_of(result)
    assert fragment in error["message"], error["message"]
    assert fragment in result.stderr  # the human table (stderr with --format json) says it too
    if kind is not None:
        assert error["kind"] == kind, error
    return error


def policy_file(tmp_path: Any, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n" + text)
    return str(path)


# == the sane server: the harness itself works ===================================================


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


# == ImageService.List: paging and resolution ====================================================


def images_page(*images: image_pb2.Image, token: str = "") -> image_service_pb2.ListImagesResponse:
    return image_service_pb2.ListImagesResponse(images=list(images), next_page_token=token)


def test_image_list_tokens_that_cycle_stop_at_the_first_repeat(server):
    tokens = ["a", "b", "c", "a", "b", "c"]
    server.handlers["ImageService.List"] = lambda request, context, n: images_page(token=tokens[(n - 1) % 3])
    result = check(server)
    assert_fails_closed(result, 3, "repeated page token 'a'", "malformed")
    assert server.calls["ImageService.List"] == 4
    assert [r.page_token for r in server.requests["ImageService.List"]] == ["", "a", "b", "c"]
    assert server.calls["ScannerService.Scan"] == 0


def test_image_list_that_never_ends_is_bounded(server):
    server.handlers["ImageService.List"] = lambda request, context, n: images_page(token=f"t{n}")
    result = check(server, timeout=30)
    assert_fails_closed(result, 3, "more than 1000 pages", "malformed")
    assert server.calls["ImageService.List"] == 1000
    assert server.calls["ScannerService.Scan"] == 0


def test_empty_pages_with_tokens_then_the_image_resolve(server):
    server.handlers["ImageService.List"] = sequence(
        answer(images_page(token="p2")), answer(images_page(token="p3")), answer(images_page(img()))
    )
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ImageService.List"] == 3


def test_the_same_image_on_two_pages_is_scanned_once(server):
    server.handlers["ImageService.List"] = sequence(answer(images_page(img(), token="p2")), answer(images_page(img())))
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Scan"] == 1


def test_matching_image_with_an_empty_id_is_malformed(server):
    server.handlers["ImageService.List"] = answer(images_page(img(image_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "image id that is not an identifier (empty)", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


def test_tag_on_two_images_is_ambiguous(server):
    server.handlers["ImageService.List"] = sequence(
        answer(images_page(img("crpimg1"), token="p2")), answer(images_page(img("crpimg2", digest=DIGEST_B)))
    )
    result = check(server)
    assert_fails_closed(result, 3, "ambiguous", "malformed")
    assert "crpimg1" in error_of(result)["message"] and "crpimg2" in error_of(result)["message"]
    assert server.calls["ScannerService.Scan"] == 0


def test_digest_two_images_share_is_ambiguous(server):
    server.handlers["ImageService.List"] = answer(images_page(img("crpimg1", tags=()), img("crpimg2", tags=())))
    result = check(server, refs=(f"cr.yandex/crptest/app@{DIGEST_A}",))
    assert_fails_closed(result, 3, "ambiguous", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


def test_digest_in_upper_case_does_not_match(server):
    server.handlers["ImageService.List"] = answer(images_page(img(digest=DIGEST_A.upper())))
    result = check(server, refs=(f"cr.yandex/crptest/app@{DIGEST_A}",))
    assert_fails_closed(result, 3, "not found", "not_found")
    assert server.calls["ScannerService.Scan"] == 0


def test_tag_match_is_exact(server):
    server.handlers["ImageService.List"] = answer(images_page(img(tags=("Tag", "tag ", "tag2", "latest"))))
    result = check(server)
    assert_fails_closed(result, 3, "has no image with tag 'tag'", "not_found")
    assert server.calls["ScannerService.Scan"] == 0


def test_image_of_another_repository_is_not_taken(server):
    server.handlers["ImageService.List"] = answer(images_page(img(name="crptest/other")))
    result = check(server)
    assert result.code == 3, result.output
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize(
    "code",
    [
        C.UNIMPLEMENTED,
        C.UNKNOWN,
        C.DATA_LOSS,
        C.ABORTED,
        C.OUT_OF_RANGE,
        C.FAILED_PRECONDITION,
        C.INVALID_ARGUMENT,
        C.ALREADY_EXISTS,
        C.CANCELLED,
        C.PERMISSION_DENIED,
        C.UNAUTHENTICATED,
    ],
)
def test_image_list_error_codes_are_exit_3_without_retry(server, code):
    server.handlers["ImageService.List"] = fail(code, "listing refused")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list images of repository crptest/app: listing refused")
    assert error["code"] == code.name
    assert error["method"] == "ImageService.List"
    assert error["request_ids"]
    assert server.calls["ImageService.List"] == 1
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.INTERNAL, C.RESOURCE_EXHAUSTED])
def test_image_list_transient_errors_are_retried_a_bounded_number_of_times(server, code):
    server.handlers["ImageService.List"] = fail(code, "flaky")
    result = check(server, timeout=2)
    error = assert_fails_closed(result, 3, "could not list images")
    assert error["code"] == code.name
    assert "attempts" in error["message"]
    assert 2 <= server.calls["ImageService.List"] <= 8


def test_image_list_garbage_on_the_wire_is_exit_3(server):
    server.handlers["ImageService.List"] = raw(b"\xff\xff\xff\xff\x0f garbage")
    result = check(server, timeout=2)
    assert_fails_closed(result, 3, "could not list images")
    assert 1 <= server.calls["ImageService.List"] <= 8


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


# == ScannerService.Scan and the operation ======================================================


def test_scan_done_at_once_with_the_result_of_another_scan(server):
    server.handlers["ScannerService.Scan"] = answer(done_op(response=scan_result(scan_id="crpother")))
    result = check(server)
    assert_fails_closed(result, 3, "response is scan result crpother, but the operation is for crpscan1", "malformed")
    assert server.calls["OperationService.Get"] == 0
    assert server.calls["ScannerService.ListVulnerabilities"] == 0


def test_scan_done_at_once_with_the_result_of_another_image(server):
    server.handlers["ScannerService.Scan"] = answer(done_op(response=scan_result(image_id="crpother")))
    result = check(server)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")


def test_result_for_no_image_at_all(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(image_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "result is for image '(none)'", "malformed")


def test_ready_result_without_any_id_is_malformed(server):
    server.handlers["ScannerService.Scan"] = answer(operation(scan_id=None))
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None, response=scan_result(scan_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "no id", "malformed")


def test_result_id_from_the_response_when_metadata_is_absent(server):
    server.handlers["ScannerService.Scan"] = answer(operation(scan_id=None))
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["scan_result_id"] == SCAN_ID
    assert server.requests["ScannerService.ListVulnerabilities"][0].scan_result_id == SCAN_ID


def test_operation_done_at_once_is_not_polled(server):
    server.handlers["ScannerService.Scan"] = answer(done_op())
    server.handlers["OperationService.Get"] = answer(operation())  # "done" flipping back to false
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["OperationService.Get"] == 0


def test_operation_id_changes_between_polls(server):
    server.handlers["OperationService.Get"] = sequence(answer(operation()), answer(done_op(op_id="crpop2")))
    result = check(server)
    assert_fails_closed(result, 3, "asked for operation crpop1 but got operation crpop2", "malformed")
    assert server.calls["OperationService.Get"] == 2


def test_operation_answer_for_another_operation_on_first_poll(server):
    server.handlers["OperationService.Get"] = answer(done_op(op_id="crpop2"))
    result = check(server)
    assert_fails_closed(result, 3, "asked for operation crpop1 but got operation crpop2", "malformed")


def test_scan_result_id_changes_between_polls(server):
    server.handlers["OperationService.Get"] = sequence(
        answer(operation(scan_id="crpscan1")),
        answer(operation(scan_id="crpscan2")),
        answer(done_op(scan_id="crpscan2", response=scan_result(scan_id="crpscan2"))),
    )
    result = check(server)
    assert_fails_closed(result, 3, "changed its scan result from crpscan1 to crpscan2", "malformed")
    assert server.calls["OperationService.Get"] == 2


def test_metadata_vanishes_and_the_result_is_another_scan(server):
    server.handlers["OperationService.Get"] = answer(done_op(scan_id=None, response=scan_result(scan_id="crpscan2")))
    result = check(server)
    assert_fails_closed(result, 3, "changed its scan result from crpscan1 to crpscan2", "malformed")


def test_operation_without_id(server):
    server.handlers["ScannerService.Scan"] = answer(operation(op_id=""))
    result = check(server)
    assert_fails_closed(result, 3, "the operation has no id", "malformed")
    assert server.calls["OperationService.Get"] == 0


def test_not_done_operation_carrying_a_response(server):
    server.handlers["OperationService.Get"] = answer(operation(response=scan_result()))
    result = check(server)
    assert_fails_closed(result, 3, "it has a response but is not done", "malformed")


def test_done_operation_with_neither_error_nor_response(server):
    server.handlers["ScannerService.Scan"] = answer(operation(done=True))
    result = check(server)
    assert_fails_closed(result, 3, "neither an error nor a response", "malformed")


@pytest.mark.parametrize("with_response", [False, True], ids=["alone", "with-ready-response"])
def test_operation_error_with_code_ok_is_still_an_error(server, with_response):
    response = scan_result() if with_response else None
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, response=response, error=status_pb2.Status(code=0, message="all good, honestly"))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "all good, honestly", "scan")
    assert error["code"] == "OK"


def test_operation_error_with_an_unknown_code(server):
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, error=status_pb2.Status(code=4242, message=""))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "failed: no message")
    assert error["code"] == "code 4242"


def test_operation_error_message_with_escapes_and_huge_length(server):
    message = "\x1b[31mred\x1b[0m\x07\x9b2J\r\n" + "A" * 200_000
    server.handlers["OperationService.Get"] = answer(
        operation(done=True, error=status_pb2.Status(code=13, message=message))
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "?[31mred?[0m")
    assert len(error["message"]) < 2000
    assert len(result.output) < 20_000


def test_response_claiming_scan_result_with_garbage_bytes(server):
    bogus = any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult", value=b"\xff\xff")
    server.handlers["OperationService.Get"] = answer(done_op(response=bogus))
    result = check(server)
    assert_fails_closed(result, 3, "response could not be decoded", "malformed")


def test_response_claiming_scan_result_with_empty_bytes(server):
    empty = any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanResult", value=b"")
    server.handlers["OperationService.Get"] = answer(done_op(response=empty))
    result = check(server)
    assert_fails_closed(result, 3, "status is STATUS_UNSPECIFIED, expected READY", "malformed")


def test_response_of_another_type(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=img()))
    result = check(server)
    assert_fails_closed(result, 3, "response is a yandex.cloud.containerregistry.v1.Image, expected ScanResult")


def test_response_with_no_type_url(server):
    server.handlers["OperationService.Get"] = answer(done_op(response=any_pb2.Any(value=b"\x08\x02")))
    result = check(server)
    assert_fails_closed(result, 3, "message of no type", "malformed")


def test_metadata_claiming_scan_metadata_with_garbage_bytes(server):
    op = operation(scan_id=None)
    op.metadata.CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/yandex.cloud.containerregistry.v1.ScanMetadata", value=b"\xff")
    )
    server.handlers["ScannerService.Scan"] = answer(op)
    result = check(server)
    assert_fails_closed(result, 3, "metadata could not be decoded", "malformed")


def test_metadata_of_another_type(server):
    op = operation(scan_id=None)
    op.metadata.Pack(scan_result())
    server.handlers["OperationService.Get"] = answer(op)
    result = check(server)
    assert_fails_closed(result, 3, "metadata is a yandex.cloud.containerregistry.v1.ScanResult, expected ScanMetadata")


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        (0, "status is STATUS_UNSPECIFIED, expected READY"),
        (RUNNING, "status is RUNNING, expected READY"),
        (99, "status is 99, expected READY"),
        (-1, "status is -1, expected READY"),
    ],
)
def test_done_operation_with_a_result_that_is_not_ready(server, status, fragment):
    message = scanner_pb2.ScanResult(id=SCAN_ID, image_id=IMAGE_ID, status=status, vulnerabilities=stats())
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server)
    assert_fails_closed(result, 3, fragment, "malformed")


def test_status_error_result(server):
    message = scan_result(status=scanner_pb2.ScanResult.ERROR)
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server)
    error = assert_fails_closed(result, 3, "status ERROR", "scan")
    assert error["code"] == "ERROR"


def test_ready_result_without_statistics_is_judged_by_its_listed_findings(server):
    """Issue 13: not exit 3 any more; the listing (always fetched) is counted instead, with a warning."""
    message = scanner_pb2.ScanResult(id=SCAN_ID, image_id=IMAGE_ID, status=READY)
    server.handlers["OperationService.Get"] = answer(done_op(response=message))
    result = check(server, fmt="text")
    assert result.code == 0, result.output
    assert "carried no vulnerability statistics; judged by its 0 listed findings" in result.stdout


@pytest.mark.parametrize("field", ["critical", "high", "medium", "low", "negligible", "undefined"])
def test_negative_count_in_any_severity(server, field):
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(**{field: -1}))))
    result = check(server, fmt="text")
    assert result.code == 3, result.output
    assert f"negative vulnerability count ({field}=-1)" in result.stdout


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(253402300800, 0), (-62135596801, 0), (0, 1_000_000_000), (0, -1)], ids=str
)
def test_invalid_scanned_at(server, seconds, nanos):
    bad = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(scanned_at=bad)))
    result = check(server)
    assert_fails_closed(result, 3, "scanned_at is not a valid timestamp", "malformed")


def test_extreme_but_valid_scanned_at_is_reported(server):
    first = timestamp_pb2.Timestamp(seconds=-62135596800)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(scanned_at=first)))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["scanned_at"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_int64_max_counts_cannot_be_listed_so_the_answer_is_inconsistent(server, fmt):
    huge = stats(critical=INT64_MAX, high=INT64_MAX, medium=INT64_MAX, low=INT64_MAX, negligible=INT64_MAX)
    server.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=huge)))
    result = check(server, fmt=fmt)
    assert result.code == 3, result.output
    assert "inconsistent answer for scan result crpscan1" in result.output
    assert f"(total {5 * INT64_MAX})" in result.output  # the total is exact, not wrapped at 64 bits
    assert server.calls["ScannerService.ListVulnerabilities"] == 1


# == polling: bounded, whatever the server says ================================================


@pytest.fixture
def never_done(server: HostileServer) -> HostileServer:
    server.handlers["OperationService.Get"] = answer(operation())
    return server


def test_never_done_default_polling_is_bounded(never_done):
    result = check(never_done, timeout=1.2)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert 1 <= never_done.calls["OperationService.Get"] <= 8
    assert never_done.calls["ScannerService.Scan"] == 1


@pytest.mark.parametrize(
    "hint",
    ["0", "-0", "-1", "1e308", "inf", "-inf", "nan", "NaN", "abc", "", " ", "1e-300", "0.0000001", "1_0", "0x10"],
)
def test_poll_interval_header_cannot_make_polling_insane(never_done, hint):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", hint),), answer(operation())
    )
    result = check(never_done, timeout=1.2)
    assert_fails_closed(result, 4, "was still running", "timeout")
    # never more often than every 0.1 s, and never a sleep past the deadline
    assert 1 <= never_done.calls["OperationService.Get"] <= 14


def test_poll_interval_header_of_an_hour_does_not_outlive_the_deadline(never_done):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", "3600"),), answer(operation())
    )
    result = check(never_done, timeout=1.0)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert never_done.calls["OperationService.Get"] <= 8


def test_poll_interval_header_of_a_minute_is_capped_by_the_deadline(never_done):
    never_done.handlers["OperationService.Get"] = with_headers(
        (("x-operation-poll-interval", "60"),), answer(operation())
    )
    result = check(never_done, timeout=1.0)
    assert_fails_closed(result, 4, "was still running", "timeout")
    assert never_done.calls["OperationService.Get"] <= 2


def test_operation_not_found_forever_gives_up_after_a_few_polls(server):
    server.handlers["OperationService.Get"] = fail(C.NOT_FOUND, "no such operation")
    result = check(server, timeout=15)  # four polls of the steady schedule take about 6 s
    error = assert_fails_closed(result, 3, "could not follow scan operation crpop1")
    assert error["code"] == "NOT_FOUND"
    assert server.calls["OperationService.Get"] == 4


def test_operation_disappearing_after_it_was_seen_is_exit_3(server):
    server.handlers["OperationService.Get"] = sequence(answer(operation()), fail(C.NOT_FOUND, "gone"))
    result = check(server)
    assert_fails_closed(result, 3, "could not follow scan operation crpop1 of image crpimg1: gone")
    assert server.calls["OperationService.Get"] == 2


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.INTERNAL])
def test_operation_get_failing_transiently_forever_is_bounded(server, code):
    server.handlers["OperationService.Get"] = fail(code, "poll broken")
    result = check(server, timeout=2)
    assert result.code in (3, 4), result.output
    assert error_of(result)["message"]
    assert server.calls["OperationService.Get"] <= 8


@pytest.mark.parametrize(
    "code",
    [C.UNIMPLEMENTED, C.UNKNOWN, C.DATA_LOSS, C.ABORTED, C.OUT_OF_RANGE, C.FAILED_PRECONDITION, C.CANCELLED],
)
def test_operation_get_hard_errors_stop_polling_at_once(server, code):
    server.handlers["OperationService.Get"] = sequence(answer(operation()), fail(code, "poll refused"))
    result = check(server)
    error = assert_fails_closed(result, 3, "poll refused")
    assert error["code"] == code.name
    assert server.calls["OperationService.Get"] == 2


@pytest.mark.parametrize(
    "code",
    [
        C.UNIMPLEMENTED,
        C.UNKNOWN,
        C.DATA_LOSS,
        C.ABORTED,
        C.OUT_OF_RANGE,
        C.FAILED_PRECONDITION,
        C.PERMISSION_DENIED,
        C.NOT_FOUND,
        C.INVALID_ARGUMENT,
    ],
)
def test_scan_hard_errors_are_exit_3_and_never_retried(server, code):
    server.handlers["ScannerService.Scan"] = fail(code, "scan refused")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not start a scan of image crpimg1: scan refused")
    assert error["code"] == code.name and error["method"] == "ScannerService.Scan"
    assert server.calls["ScannerService.Scan"] == 1


def test_a_scan_that_may_have_started_keeps_its_key_and_a_refused_one_gets_a_new_one(server):
    """UNAVAILABLE may have started a scan: its retry repeats the key, so nothing is billed twice. A quota
    refusal started nothing: the next attempt (after waiting for a slot) is a new call with a new key."""
    server.handlers["ScannerService.Scan"] = sequence(
        fail(C.UNAVAILABLE), fail(C.RESOURCE_EXHAUSTED), answer(operation())
    )
    result = check(server, timeout=15)
    assert result.code == 0, result.output
    keys = [m.get("idempotency-key") for m in server.metadata["ScannerService.Scan"]]
    assert len(keys) == 3 and all(keys)
    assert keys[0] == keys[1], "the retry after UNAVAILABLE must carry the same key"
    assert keys[2] != keys[1], "the attempt after a refusal must not replay the refused key"


def test_scan_quota_exhausted_forever_waits_until_the_timeout_and_is_bounded(server):
    """Issue 13: a quota refusal is waited out, never a failure by itself; --timeout ends it (exit 4)."""
    server.handlers["ScannerService.Scan"] = fail(C.RESOURCE_EXHAUSTED, "quota")
    result = check(server, timeout=3)
    error = assert_fails_closed(result, 4, "waited", "timeout")
    assert "for a scan slot" in error["message"] and "quota" in error["message"]
    assert 2 <= server.calls["ScannerService.Scan"] <= 5  # backoff from 1 s: a handful of calls, not a storm


def test_error_details_and_trailing_request_ids_are_sanitized_and_bounded(server):
    # kept under gRPC's 8 KiB soft limit on metadata (the status message travels in the trailers)
    trailing = (("x-request-id", "R" * 1500), ("x-server-trace-id", "T" * 1500))
    server.handlers["ScannerService.Scan"] = fail(C.FAILED_PRECONDITION, "\x1b]0;owned\x07" + "D" * 2500, trailing)
    result = check(server)
    error = assert_fails_closed(result, 3, "?]0;owned?")
    assert len(error["message"]) < 4000
    assert [rid[:3] for rid in error["request_ids"][1:]] == ["RRR", "TTT"]
    assert all(len(rid) <= 128 for rid in error["request_ids"]), "request ids from the server are bounded"
    assert server.calls["ScannerService.Scan"] == 1


# == per-call deadlines (a server slower than the per-call deadline, shorter than --timeout) ======


@pytest.fixture
def short_calls(monkeypatch: pytest.MonkeyPatch) -> float:
    """Shrink the 20 s per-call deadline to 0.3 s so stalls beyond it stay fast to test."""
    from crgate import timing

    per_call = 0.3
    monkeypatch.setattr(
        timing.Deadline, "call_timeout", lambda self, cap: max(0.001, min(per_call, cap, self.remaining()))
    )
    return per_call


def test_scan_stalled_past_the_per_call_deadline_is_retried_with_the_same_key(server, short_calls):
    server.handlers["ScannerService.Scan"] = sequence(sleeping(1.0, answer(operation())), answer(operation()))
    result = check(server)
    assert result.code == 0, result.output
    keys = [m.get("idempotency-key") for m in server.metadata["ScannerService.Scan"]]
    assert len(keys) == 2 and len(set(keys)) == 1


def test_operation_get_always_stalling_is_bounded(server, short_calls):
    server.handlers["OperationService.Get"] = sleeping(5, answer(done_op()))
    result = check(server, timeout=2.5)
    assert result.code in (3, 4), result.output
    assert "DEADLINE_EXCEEDED" in result.output or "timed out" in result.output
    assert server.calls["OperationService.Get"] <= 8


# == a server slower than the whole --timeout: exit 4 ==========================================


@pytest.mark.parametrize(
    "method",
    [
        "ImageService.List",
        "ScannerService.List",
        "ScannerService.Scan",
        "OperationService.Get",
        "ScannerService.ListVulnerabilities",
    ],
)
def test_server_stalling_past_the_overall_timeout_is_exit_4(server, method):
    server.handlers[method] = sleeping(10, server.handlers[method])
    result = check(server, timeout=0.8)
    assert_fails_closed(result, 4, "", "timeout")
    assert server.calls[method] == 1


def test_get_last_stalling_past_the_overall_timeout_is_exit_4(server, tmp_path):
    server.handlers["ScannerService.GetLast"] = sleeping(10, answer(scan_result()))
    result = check(
        server, "--policy", policy_file(tmp_path, "thresholds: {critical: 0}\nreuse: {max_age: 24h}\n"), timeout=0.8
    )
    assert_fails_closed(result, 4, "", "timeout")
    assert server.calls["ScannerService.Scan"] == 0


# == joining a scan that is already RUNNING (ScannerService.List, then ScannerService.Get) =========


def running_list(*results: scanner_pb2.ScanResult, token: str = "") -> scanner_service_pb2.ListScanResultsResponse:
    return scanner_service_pb2.ListScanResultsResponse(scan_results=list(results), next_page_token=token)


def test_running_scan_of_another_image_is_not_joined(server):
    server.handlers["ScannerService.List"] = answer(running_list(scan_result("crpforeign", "crpother", RUNNING)))
    result = check(server)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "scanned"
    assert server.calls["ScannerService.Get"] == 0 and server.calls["ScannerService.Scan"] == 1
    assert server.requests["ScannerService.List"][0].filter == 'status="RUNNING"'


def test_listed_scan_that_is_not_running_or_has_no_id_is_not_joined(server):
    server.handlers["ScannerService.List"] = answer(
        running_list(scan_result("crpready", IMAGE_ID, READY), scan_result("", IMAGE_ID, RUNNING))
    )
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Get"] == 0 and server.calls["ScannerService.Scan"] == 1


@pytest.fixture
def joined(server: HostileServer) -> HostileServer:
    server.handlers["ScannerService.List"] = answer(running_list(scan_result("crpjoin", IMAGE_ID, RUNNING)))
    server.handlers["ScannerService.Get"] = answer(scan_result("crpjoin"))
    return server


def test_joined_scan_passes_without_a_new_scan(joined):
    result = check(joined)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "joined"
    assert result.doc["images"][0]["scan_result_id"] == "crpjoin"
    assert joined.calls["ScannerService.Scan"] == 0
    assert joined.requests["ScannerService.Get"][0].scan_result_id == "crpjoin"


def test_joined_scan_turning_into_a_result_for_another_image(joined):
    joined.handlers["ScannerService.Get"] = sequence(
        answer(scan_result("crpjoin", status=RUNNING)), answer(scan_result("crpjoin", image_id="crpother"))
    )
    result = check(joined)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")
    assert joined.calls["ScannerService.Scan"] == 0
    assert joined.calls["ScannerService.Get"] == 2


def test_joined_scan_running_for_another_image(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpjoin", image_id="crpother", status=RUNNING))
    result = check(joined)
    assert_fails_closed(result, 3, "status is RUNNING, expected READY", "malformed")
    assert joined.calls["ScannerService.Get"] == 1


def test_joined_scan_becoming_another_scan_result(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpswapped"))
    result = check(joined)
    assert_fails_closed(result, 3, "response is scan result crpswapped, but the operation is for crpjoin", "malformed")


def test_joined_scan_ending_in_error(joined):
    joined.handlers["ScannerService.Get"] = answer(scan_result("crpjoin", status=scanner_pb2.ScanResult.ERROR))
    result = check(joined)
    assert_fails_closed(result, 3, "status ERROR", "scan")


def test_joined_scan_that_never_finishes_is_exit_4_and_bounded(joined):
    joined.handlers["ScannerService.Get"] = with_headers(
        (("x-operation-poll-interval", "0"),), answer(scan_result("crpjoin", status=RUNNING))
    )
    result = check(joined, timeout=1.0)
    error = assert_fails_closed(result, 4, "scan crpjoin was still running", "timeout")
    assert "crpjoin" in error["message"]
    assert 1 <= joined.calls["ScannerService.Get"] <= 8
    assert joined.calls["ScannerService.Scan"] == 0


def test_joined_scan_vanishing(joined):
    joined.handlers["ScannerService.Get"] = fail(C.NOT_FOUND, "scan result gone")
    result = check(joined)
    assert_fails_closed(result, 3, "could not follow running scan crpjoin of image crpimg1: scan result gone")
    assert joined.calls["ScannerService.Get"] == 1


@pytest.mark.parametrize("code", [C.UNIMPLEMENTED, C.INVALID_ARGUMENT])
def test_a_server_that_cannot_list_running_scans_gets_a_normal_scan_and_a_warning(server, code):
    """Issue 13: looking for a RUNNING scan to join is an optimisation, not a precondition."""
    server.handlers["ScannerService.List"] = fail(code, "no filters here")
    result = check(server)
    assert result.code == 0, result.output
    warnings = result.doc["images"][0]["warnings"]
    assert any("could not look for a running scan" in w and code.name in w for w in warnings), warnings
    assert server.calls["ScannerService.Scan"] == 1


@pytest.mark.parametrize("code", [C.PERMISSION_DENIED, C.DATA_LOSS])
def test_listing_running_scans_failing_stops_before_any_scan(server, code):
    server.handlers["ScannerService.List"] = fail(code, "no listing")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list running scans of image crpimg1")
    assert error["code"] == code.name
    assert server.calls["ScannerService.Scan"] == 0


# == reuse: ScannerService.GetLast ================================================================


@pytest.fixture
def reuse_policy(tmp_path: Any) -> str:
    return policy_file(tmp_path, "thresholds: {critical: 0, high: 0}\nreuse: {max_age: 24h}\n")


def test_fresh_last_result_is_reused(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=now_ts(-60)))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "reused"
    assert server.calls["ScannerService.Scan"] == 0
    assert server.requests["ScannerService.ListVulnerabilities"][0].scan_result_id == "crplast"


def test_last_result_of_another_image_is_malformed(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", image_id="crpother"))
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "result is for image 'crpother', but image crpimg1 was scanned", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize(
    ("scanned_at", "why"),
    [
        (timestamp_pb2.Timestamp(seconds=253402300799), "in the future"),
        (now_ts(3600), "in the future"),
        (timestamp_pb2.Timestamp(seconds=-62135596800), "older than 24h"),
        (now_ts(-25 * 3600), "older than 24h"),
    ],
    ids=["year-9999", "an-hour-ahead", "year-1", "25h-old"],
)
def test_last_result_with_an_untrustworthy_age_is_not_reused(server, reuse_policy, scanned_at, why):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=scanned_at))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    image = result.doc["images"][0]
    assert image["origin"] == "scanned" and image["scan_result_id"] == SCAN_ID
    assert any(why in warning for warning in image["warnings"]), image["warnings"]
    assert server.calls["ScannerService.Scan"] == 1


def test_last_result_without_scan_time_is_not_reused(server, reuse_policy):
    message = scanner_pb2.ScanResult(id="crplast", image_id=IMAGE_ID, status=READY, vulnerabilities=stats())
    server.handlers["ScannerService.GetLast"] = answer(message)
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["origin"] == "scanned"


def test_last_result_with_an_invalid_scan_time_fails_closed(server, reuse_policy):
    bad = timestamp_pb2.Timestamp(seconds=10**12)
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=bad))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 3, result.output
    assert "scanned_at is not a valid timestamp" in error_of(result)["message"]


@pytest.mark.parametrize("status", [RUNNING, scanner_pb2.ScanResult.ERROR, 0, 77])
def test_last_result_that_is_not_ready_means_a_new_scan(server, reuse_policy, status):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", status=status))
    result = check(server, "--policy", reuse_policy)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Scan"] == 1


def test_reused_result_with_findings_its_statistics_deny(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("crplast", scanned_at=now_ts(-60)))
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=[vuln(severity=SEV.CRITICAL)])
    )
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "inconsistent answer for scan result crplast", "malformed")


def test_reused_result_without_an_id_is_malformed(server, reuse_policy):
    server.handlers["ScannerService.GetLast"] = answer(scan_result("", scanned_at=now_ts(-60)))
    result = check(server, "--policy", reuse_policy)
    assert_fails_closed(result, 3, "no id", "malformed")


@pytest.mark.parametrize("code", [C.PERMISSION_DENIED, C.UNIMPLEMENTED, C.DATA_LOSS])
def test_get_last_failing_stops_before_any_scan(server, reuse_policy, code):
    server.handlers["ScannerService.GetLast"] = fail(code, "no last")
    result = check(server, "--policy", reuse_policy)
    error = assert_fails_closed(result, 3, "could not get the last scan result of image crpimg1: no last")
    assert error["code"] == code.name
    assert server.calls["ScannerService.Scan"] == 0


# == ListVulnerabilities =========================================================================


def vulns_page(*items: scanner_pb2.Vulnerability, token: str = "") -> scanner_service_pb2.ListVulnerabilitiesResponse:
    return scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=list(items), next_page_token=token)


def with_stats(srv: HostileServer, **counts: int) -> None:
    srv.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(**counts))))


def test_zero_statistics_but_listed_findings_is_inconsistent(server):
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=SEV.LOW)))
    result = check(server)
    error = assert_fails_closed(result, 3, "inconsistent answer for scan result crpscan1", "malformed")
    assert "low 0" in error["message"] and "low 1" in error["message"]


def test_statistics_but_no_listed_findings_is_inconsistent(server):
    with_stats(server, critical=2)
    result = check(server, fmt="text")
    assert result.code == 3, result.output
    assert "inconsistent answer" in result.stdout


def test_findings_of_the_wrong_severity_are_inconsistent(server):
    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=SEV.LOW)))
    result = check(server)
    assert_fails_closed(result, 3, "inconsistent answer", "malformed")


@pytest.mark.parametrize("severity", [0, 7, 99, -5])
def test_finding_with_an_unknown_severity_is_malformed(server, severity):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(severity=severity)))
    result = check(server)
    assert_fails_closed(result, 3, f"severity {severity} is not one of CRITICAL", "malformed")


def test_finding_without_a_vulnerability_id_is_malformed(server):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln(cve="")))
    result = check(server)
    assert_fails_closed(result, 3, "it has no vulnerability id", "malformed")


def test_finding_pages_that_never_end_are_bounded(server):
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(token=f"v{n}")
    result = check(server, timeout=30)
    assert_fails_closed(result, 3, "returned more than 1000 pages for scan result crpscan1", "malformed")
    assert server.calls["ScannerService.ListVulnerabilities"] == 1000


def test_finding_page_tokens_that_cycle(server):
    tokens = ["x", "y"]
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(
        token=tokens[(n - 1) % 2]
    )
    result = check(server)
    assert_fails_closed(result, 3, "repeated page token 'x'", "malformed")
    assert server.calls["ScannerService.ListVulnerabilities"] == 3


def test_finding_pages_are_requested_with_the_tokens_given(server):
    with_stats(server, high=2)
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(vulns_page(vuln("CVE-1"), token="n2")), answer(vulns_page(vuln("CVE-2")))
    )
    result = check(server, fmt="text")
    assert result.code == 1, result.output
    tokens = [r.page_token for r in server.requests["ScannerService.ListVulnerabilities"]]
    assert tokens == ["", "n2"]
    assert all(r.scan_result_id == SCAN_ID for r in server.requests["ScannerService.ListVulnerabilities"])


def test_a_page_repeated_under_a_new_token_is_not_taken_as_new_findings(server, tmp_path):
    policy = policy_file(
        tmp_path, "thresholds: {critical: 0, high: 0}\nignore:\n  - id: CVE-2024-0001\n    reason: not reachable\n"
    )
    with_stats(server, high=2)
    page = vulns_page(vuln("CVE-2024-0001", fixed_by="1.1"), token="next")
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(page), answer(vulns_page(vuln("CVE-2024-0001", fixed_by="1.1")))
    )
    result = check(server, "--policy", policy)
    assert result.code == 3, result.output


def test_listing_stops_once_it_exceeds_the_statistics(server):
    with_stats(server, high=1)
    server.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: vulns_page(
        vuln(f"CVE-{n}"), token=f"v{n}"
    )
    result = check(server, timeout=30)
    assert result.code == 3, result.output
    assert server.calls["ScannerService.ListVulnerabilities"] <= 2


@pytest.mark.parametrize("code", [C.DATA_LOSS, C.UNIMPLEMENTED, C.OUT_OF_RANGE, C.ABORTED])
def test_listing_findings_failing_mid_way_is_exit_3(server, code):
    with_stats(server, high=2)
    server.handlers["ScannerService.ListVulnerabilities"] = sequence(
        answer(vulns_page(vuln("CVE-1"), token="n2")), fail(code, "page lost")
    )
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list the findings of scan result crpscan1: page lost")
    assert error["code"] == code.name
    assert server.calls["ScannerService.ListVulnerabilities"] == 2


def test_hostile_finding_text_is_sanitized(server):
    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        vulns_page(
            vuln(
                "CVE-\x1b[31m1",
                SEV.CRITICAL,
                package="\x1b]8;;http://evil\x07pkg\n",
                fixed_by="\x9b2J" + "9" * 5000,
                link="\x00\x7f",
            )
        )
    )
    result = check(server)
    assert result.code == 1, result.output
    found = result.doc["images"][0]["findings"][0]
    assert found["cve"] == "CVE-?[31m1"
    assert "\n" not in found["package"]
    assert len(found["fixed_by"]) <= 1003


def test_the_reports_stay_well_formed_with_hostile_text(server):
    import xml.etree.ElementTree as ET

    with_stats(server, critical=1)
    server.handlers["ScannerService.ListVulnerabilities"] = answer(
        vulns_page(vuln("CVE-1\ufffe\uffff\ud7ff", SEV.CRITICAL, package="p<&>\"'", fixed_by="]]>"))
    )
    for fmt in ("junit", "sarif", "gitlab", "markdown"):
        result = check(server, fmt=fmt)
        assert result.code == 1, result.output
        if fmt == "junit":
            ET.fromstring(result.stdout.encode())
        elif fmt in ("sarif", "gitlab"):
            json.loads(result.stdout)


# == identifiers the server makes up: printed safely, and bounded ===============================

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


# == baseline: another image's last result =======================================================

BASE_ID = "crpbase1"


@pytest.fixture
def baseline(server: HostileServer, tmp_path: Any) -> tuple[HostileServer, str]:
    """Target crpimg1 (tag) has one CRITICAL finding; the baseline crpbase1 (production) has the same one."""
    server.handlers["ImageService.List"] = answer(
        images_page(img(), img(BASE_ID, tags=("production",), digest=DIGEST_B))
    )
    with_stats(server, critical=1)
    server.handlers["ScannerService.GetLast"] = lambda request, context, n: (
        scan_result("crpbasescan", BASE_ID, vulns=stats(critical=1))
        if request.image_id == BASE_ID
        else context.abort(C.NOT_FOUND, "none")
    )
    server.handlers["ScannerService.ListVulnerabilities"] = answer(vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL)))
    policy = policy_file(
        tmp_path, "thresholds: {critical: 0, high: 0}\nbaseline:\n  image: cr.yandex/crptest/app:production\n"
    )
    return server, policy


def test_baseline_sane(baseline):
    srv, policy = baseline
    result = check(srv, "--policy", policy)
    assert result.code == 0, result.output
    assert result.doc["images"][0]["findings"][0]["decision"] == "in_baseline"
    assert result.doc["baseline"]["scan_result_id"] == "crpbasescan"
    assert srv.calls["ScannerService.Scan"] == 1  # the target only


def test_baseline_last_result_for_the_target_image_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ScannerService.GetLast"] = answer(scan_result("crpbasescan", IMAGE_ID, vulns=stats(critical=1)))
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "baseline cr.yandex/crptest/app:production could not be obtained")
    assert "result is for image 'crpimg1', but image crpbase1 was scanned" in error_of(result)["message"]


def test_baseline_listing_inconsistent_with_its_statistics_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ScannerService.ListVulnerabilities"] = lambda request, context, n: (
        vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL), vuln("CVE-2024-0002", SEV.CRITICAL))
        if request.scan_result_id == "crpbasescan"
        else vulns_page(vuln("CVE-2024-0001", SEV.CRITICAL))
    )
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "inconsistent answer for scan result crpbasescan")


def test_baseline_ambiguous_fails_closed(baseline):
    srv, policy = baseline
    srv.handlers["ImageService.List"] = answer(
        images_page(img(), img(BASE_ID, tags=("production",)), img("crpbase2", tags=("production",)))
    )
    result = check(srv, "--policy", policy)
    assert_fails_closed(result, 3, "ambiguous")


def test_hostile_baseline_with_missing_pass_is_judged_without_it_never_passed(baseline, tmp_path):
    srv, _ = baseline
    policy = policy_file(
        tmp_path,
        "thresholds: {critical: 0}\nbaseline:\n  image: cr.yandex/crptest/app:production\n  missing: pass\n",
    )
    srv.handlers["ScannerService.GetLast"] = answer(scan_result("crpbasescan", "crpother", vulns=stats(critical=1)))
    result = check(srv, "--policy", policy)
    assert result.code == 1, result.output
    assert result.doc["images"][0]["findings"][0]["decision"] == "counted"
    assert any("judged without a baseline" in w for w in result.doc["images"][0]["warnings"])


# == several images in one run: one hostile answer never hides behind another image ============


def test_one_anomalous_image_makes_the_run_an_error(server):
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


# == not a gRPC server at all ===================================================================


class RawTcpServer:
    """Accepts connections on loopback and answers each with ``reply`` (or nothing), then closes."""

    def __init__(self, reply: bytes | None):
        import socket

        self.connections = 0
        self._reply = reply
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[Any] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            if self._reply is None:
                self._held.append(conn)  # accept, then say nothing
                continue
            try:
                conn.recv(65536)
                conn.sendall(self._reply)
            except OSError:
                pass
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3),
        (b"\x00\x00\x04\x07\x00\x00\x00\x00\x00garbage-frames" * 10, 3),
        (None, 4),  # accepts the connection and never speaks
    ],
    ids=["http1", "garbage", "silent"],
)
def test_endpoint_that_does_not_speak_grpc(reply, code):
    fake = RawTcpServer(reply)
    try:
        args = ["check", "--endpoint", fake.address, "--insecure", "--progress", "none", "--timeout", "1.5"]
        result = run_cli([*args, REF, "--format", "json"])
    finally:
        fake.stop()
    assert "Traceback" not in result.output
    doc = json.loads(result.stdout)
    REPORT_VALIDATOR.validate(doc)
    assert result.code == code, result.output
    assert doc["images"][0]["error"]["method"] in ("ImageService.List", None)
    assert fake.connections <= 10


# == command-line values that would unbound the loops ==========================================


def test_timeout_nan_is_a_usage_error(server):
    stop_after = 200  # the hostile part: crgate would otherwise never stop; answer an error after this many
    server.handlers["OperationService.Get"] = lambda request, context, n: (
        operation() if n < stop_after else operation(done=True, error=status_pb2.Status(code=13, message="enough"))
    )
    args = ["check", "--endpoint", server.address, "--insecure", "--progress", "none", "--timeout", "nan", REF]
    result = run_cli(args)
    assert "Traceback" not in result.output
    assert result.code == 2, f"exit {result.code} after {server.calls['OperationService.Get']} polls"
    assert sum(server.calls.values()) == 0
