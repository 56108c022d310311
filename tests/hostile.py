"""A hostile gRPC server speaking the Yandex protos, and helpers to run crgate against it.

The harness behind the ``test_hostile_*.py`` files: a small scriptable server built from the
``yandexcloud`` servicers (ImageService, ScannerService, OperationService) on loopback, handler
combinators (``answer``, ``fail``, ``sequence``, ``sleeping``, ``with_headers``, ``quick``, ``raw``), message
builders, and ``check()``, which runs the real CLI in-process and checks what every hostile case must
hold: no traceback, no internal error, no terminal escape in the output, and for ``--format json``
exactly one JSON document that matches the report schema and carries the exit code.

The ``server`` fixture comes from here (``tests/conftest.py`` loads this module as a plugin).
Each case in those files was once a way a hostile server could fool crgate; all are fixed and must
stay fixed.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
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

import crgate.report
from conftest import run_cli
from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from crgate._proto.yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc


def manifest(name: str) -> bytes:
    """A small OCI image manifest; ``name`` makes each one (and so its digest) distinct."""
    config = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [],
        },
        separators=(",", ":"),
    ).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# The stub registry serves these manifests, so the digests the image service reports are real ones.
MANIFESTS = {digest(data): data for data in (manifest("a"), manifest("b"), manifest("c"))}
DIGEST_A, DIGEST_B, DIGEST_C = MANIFESTS
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
QUICK_POLLS = (("x-operation-poll-interval", "0.1"),)
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


def quick(then: Handler) -> Handler:
    """``then``, asking for the next poll in 0.1 s (``x-operation-poll-interval``): for cases about which
    answers follow which, so that they do not wait out crgate's 1.8 s steady interval between them."""
    return with_headers(QUICK_POLLS, then)


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
        self.registry = StubRegistry()
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
        self.registry.stop()


class StubRegistry:
    """The registry side of the hostile server: the OCI distribution API answering ``GET .../manifests/
    <tag|digest>`` for any repository with the manifests of ``MANIFESTS``; ``tags`` says which digest a
    tag names (default: every tag names ``DIGEST_A``). Anonymous, like a registry with no auth."""

    _PATH = re.compile(r"/v2/(?P<repository>.+)/manifests/(?P<reference>[^/]+)")

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.reads: list[str] = []
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = StubRegistry._PATH.fullmatch(self.path)
                if self.path == "/v2/":
                    self._answer(200, b"{}", "application/json")
                    return
                if match is None:
                    self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such path"}]}')
                    return
                reference = match["reference"]
                registry.reads.append(f"{match['repository']}:{reference}")
                wanted = reference if reference.startswith("sha256:") else registry.tags.get(reference, DIGEST_A)
                data = MANIFESTS.get(wanted)
                if data is None:
                    self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                    return
                self._answer(200, data, "application/vnd.oci.image.manifest.v1+json", digest(data))

            def _answer(self, status: int, body: bytes, kind: str = "application/json", sent: str = "") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if sent:
                    self.send_header("Docker-Content-Digest", sent)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits for serve_forever's next poll: 0.05 s, not the default 0.5 s, for each of ~190 tests.
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


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
    args = ["check", "--endpoint", srv.address, "--registry-url", srv.registry.url, "--insecure", "--progress", "lines"]
    args += ["--timeout", str(timeout)]
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


# -- answers built from pages -------------------------------------------------------------------


def images_page(*images: image_pb2.Image, token: str = "") -> image_service_pb2.ListImagesResponse:
    return image_service_pb2.ListImagesResponse(images=list(images), next_page_token=token)


def vulns_page(*items: scanner_pb2.Vulnerability, token: str = "") -> scanner_service_pb2.ListVulnerabilitiesResponse:
    return scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=list(items), next_page_token=token)


def running_list(*results: scanner_pb2.ScanResult, token: str = "") -> scanner_service_pb2.ListScanResultsResponse:
    return scanner_service_pb2.ListScanResultsResponse(scan_results=list(results), next_page_token=token)


def with_stats(srv: HostileServer, **counts: int) -> None:
    srv.handlers["OperationService.Get"] = answer(done_op(response=scan_result(vulns=stats(**counts))))
