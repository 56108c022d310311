"""Thin gRPC servicers: validate the request, ask the state, shape the answer with ``wire``.

Served: ScannerService, OperationService, ImageService (List, Get), ScanPolicyService.GetByRegistry, and
the two services a client needs before it has a token: IamTokenService.Create and ApiEndpointService
(every endpoint id maps to the emulator's own address).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_service_pb2,
    image_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from crgate._proto.yandex.cloud.endpoint import (
    api_endpoint_pb2,
    api_endpoint_service_pb2,
    api_endpoint_service_pb2_grpc,
)
from crgate._proto.yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc
from crgate_emulator import wire
from crgate_emulator.authority import Authority
from crgate_emulator.dispatch import Dispatcher, Headers
from crgate_emulator.paging import paginate
from crgate_emulator.rpc import (
    REPOSITORY_NAME_RE,
    GrpcAbort,
    check_id,
    invalid,
    not_found,
    parse_equality_filter,
    parse_status_filter,
    refuse_unsupported_filter,
    reject_order_by,
    require_id,
)
from crgate_emulator.scanpolicy import add_scan_policy_service
from crgate_emulator.scenario import SEVERITY_NAMES, Image
from crgate_emulator.state import EmulatorState, QuotaRefused, ScanView
from crgate_emulator.stats import EmulatorStats, ScanAttempt

POLL_INTERVAL_HEADER = "x-operation-poll-interval"
ENDPOINT_IDS = ("container-registry", "operation", "iam", "endpoint")


def _idempotency_key(context: grpc.ServicerContext) -> str:
    return next((v for k, v in context.invocation_metadata() if k == "idempotency-key"), "")


class ScannerService(scanner_service_pb2_grpc.ScannerServiceServicer):
    def __init__(self, state: EmulatorState, stats: EmulatorStats, dispatcher: Dispatcher):
        self._state = state
        self._stats = stats
        self._run = dispatcher.run
        # ListVulnerabilities pages slice one tuple of wire messages per image (and per severity filter),
        # built once: a page never copies or converts every finding of the image, so a client that lists
        # a large result, as the benchmarks do, measures its own work rather than the emulator's.
        self._wire_findings: dict[tuple[str, str | None], tuple[scanner_pb2.Vulnerability, ...]] = {}

    def _listed(self, image: Image, severity: str | None) -> tuple[scanner_pb2.Vulnerability, ...]:
        key = (image.id, severity)
        if key not in self._wire_findings:
            self._wire_findings[key] = tuple(
                wire.vulnerability(f) for f in image.findings if severity in (None, f.severity)
            )
        return self._wire_findings[key]

    def Scan(self, request: scanner_service_pb2.ScanRequest, context: grpc.ServicerContext) -> Any:
        key = _idempotency_key(context)
        attempt = ScanAttempt(request.image_id, key, "failed")  # until the scan logic says otherwise

        def body(headers: Headers) -> Any:
            nonlocal attempt
            require_id(request.image_id, "image_id")
            try:
                start = self._state.start_scan(request.image_id, key)
            except QuotaRefused as refusal:
                attempt = dataclasses.replace(
                    attempt, outcome="refused", cloud_id=refusal.cloud_id, in_use=refusal.in_use
                )
                raise
            if start.created:
                self._stats.record_scan_started(running=start.running)
            attempt = dataclasses.replace(
                attempt,
                outcome="started" if start.created else "repeated",
                operation_id=start.operation.id,
                scan_result_id=start.operation.scan.id,
                cloud_id=start.cloud_id,
                in_use=start.in_use,
            )
            _hint_poll_interval(headers, start.operation.scan)
            return wire.operation(start.operation)

        try:
            return self._run("ScannerService.Scan", context, body, image_id=request.image_id)
        finally:
            code = context.code()  # set by abort(): the status the client gets; None = OK
            self._stats.record_scan_attempt(dataclasses.replace(attempt, code="OK" if code is None else code.name))

    def Get(self, request: scanner_service_pb2.GetScanResultRequest, context: grpc.ServicerContext) -> Any:
        def body(headers: Headers) -> Any:
            require_id(request.scan_result_id, "scan_result_id")
            view = self._state.scan_result(request.scan_result_id)
            if not view.done:  # a joined scan is polled here: the same hint as its operation's
                _hint_poll_interval(headers, view)
            return wire.scan_result(view)

        image_id = self._state.image_of_scan(request.scan_result_id)
        return self._run("ScannerService.Get", context, body, image_id=image_id)

    def GetLast(self, request: scanner_service_pb2.GetLastScanResultRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            require_id(request.image_id, "image_id")
            return wire.scan_result(self._state.last_scan_result(request.image_id))

        return self._run("ScannerService.GetLast", context, body, image_id=request.image_id)

    def List(self, request: scanner_service_pb2.ListScanResultsRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            if not (request.image_id or request.repository_id):
                raise invalid("one of image_id or repository_id is required")
            check_id(request.image_id, "image_id")
            check_id(request.repository_id, "repository_id")
            refuse_unsupported_filter(self._state.scenario.scan_list_filter, request.filter)
            status = parse_status_filter(request.filter)
            reject_order_by(request.order_by)
            views = self._state.scan_results(
                image_id=request.image_id, repository_id=request.repository_id, status=status
            )
            scope = f"ScannerService.List|{request.image_id}|{request.repository_id}|{status}"
            page, token = paginate(views, request.page_size, request.page_token, scope)
            return scanner_service_pb2.ListScanResultsResponse(
                scan_results=[wire.scan_result(view) for view in page], next_page_token=token
            )

        return self._run("ScannerService.List", context, body, image_id=request.image_id or None)

    def ListVulnerabilities(
        self, request: scanner_service_pb2.ListVulnerabilitiesRequest, context: grpc.ServicerContext
    ) -> Any:
        def body(_: Headers) -> Any:
            require_id(request.scan_result_id, "scan_result_id")
            severity = parse_equality_filter(request.filter, "severity")
            if severity is not None and severity not in SEVERITY_NAMES:
                raise invalid(f"filter: unknown severity {severity!r}")
            reject_order_by(request.order_by)
            view = self._state.scan_result(request.scan_result_id)
            if view.status != "READY":
                raise GrpcAbort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Scan result {view.id} is {view.status}; vulnerabilities are listed for READY results only",
                )
            scope = f"ScannerService.ListVulnerabilities|{view.id}|{severity}"
            page, token = paginate(self._listed(view.image, severity), request.page_size, request.page_token, scope)
            return scanner_service_pb2.ListVulnerabilitiesResponse(vulnerabilities=page, next_page_token=token)

        image_id = self._state.image_of_scan(request.scan_result_id)
        return self._run("ScannerService.ListVulnerabilities", context, body, image_id=image_id)


class OperationService(operation_service_pb2_grpc.OperationServiceServicer):
    def __init__(self, state: EmulatorState, dispatcher: Dispatcher):
        self._state = state
        self._run = dispatcher.run

    def Get(self, request: operation_service_pb2.GetOperationRequest, context: grpc.ServicerContext) -> Any:
        def body(headers: Headers) -> Any:
            require_id(request.operation_id, "operation_id")
            view = self._state.operation(request.operation_id)
            _hint_poll_interval(headers, view.scan)
            return wire.operation(view)

        image_id = self._state.image_of_operation(request.operation_id)
        return self._run("OperationService.Get", context, body, image_id=image_id)

    def Cancel(self, request: operation_service_pb2.CancelOperationRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            require_id(request.operation_id, "operation_id")
            return wire.operation(self._state.cancel(request.operation_id))

        image_id = self._state.image_of_operation(request.operation_id)
        return self._run("OperationService.Cancel", context, body, image_id=image_id)


class ImageService(image_service_pb2_grpc.ImageServiceServicer):
    def __init__(self, state: EmulatorState, dispatcher: Dispatcher):
        self._state = state
        self._run = dispatcher.run

    def List(self, request: image_service_pb2.ListImagesRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            if not (request.registry_id or request.repository_name or request.folder_id):
                raise invalid("one of registry_id, repository_name or folder_id is required")
            check_id(request.registry_id, "registry_id")
            check_id(request.folder_id, "folder_id")
            if request.repository_name and not REPOSITORY_NAME_RE.fullmatch(request.repository_name):
                raise invalid(f"repository_name: invalid value {request.repository_name!r}")
            name = parse_equality_filter(request.filter, "name")
            reject_order_by(request.order_by)
            images = [
                image
                for image in self._state.images(
                    registry_id=request.registry_id,
                    repository_name=request.repository_name,
                    folder_id=request.folder_id,
                )
                if name in (None, image.repository_name)
            ]
            scope = f"ImageService.List|{request.registry_id}|{request.repository_name}|{request.folder_id}|{name}"
            page, token = paginate(images, request.page_size, request.page_token, scope)
            return image_service_pb2.ListImagesResponse(
                images=[wire.image(image, self._state.started_at) for image in page], next_page_token=token
            )

        return self._run(
            "ImageService.List",
            context,
            body,
            subject=request.repository_name or request.registry_id or request.folder_id,
        )

    def Get(self, request: image_service_pb2.GetImageRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            require_id(request.image_id, "image_id")
            return wire.image(self._state.image(request.image_id), self._state.started_at)

        return self._run("ImageService.Get", context, body, image_id=request.image_id)

    def Delete(self, request: image_service_pb2.DeleteImageRequest, context: grpc.ServicerContext) -> Any:
        return self._run("ImageService.Delete", context, _unimplemented("ImageService.Delete"))


class IamTokenService(iam_token_service_pb2_grpc.IamTokenServiceServicer):
    """Exchanges a service-account JWT (signature checked against the scenario's public keys: PS256,
    ``kid``, ``iss``, ``aud``, ``iat``/``exp`` at most an hour apart, not expired) or a configured OAuth
    token for a short-lived IAM token (``token_lifetime``)."""

    def __init__(self, dispatcher: Dispatcher, authority: Authority):
        self._run = dispatcher.run
        self._authority = authority

    def Create(self, request: iam_token_service_pb2.CreateIamTokenRequest, context: grpc.ServicerContext) -> Any:
        def body(_headers: Headers) -> Any:
            identity = request.WhichOneof("identity")
            if identity is None:
                raise invalid("one of yandex_passport_oauth_token or jwt is required")
            if identity == "jwt":
                account = self._authority.account_of_jwt(request.jwt)
            else:
                account = self._authority.account_of_oauth(request.yandex_passport_oauth_token)
            token, expires_at, _lifetime = self._authority.issue(account)
            return iam_token_service_pb2.CreateIamTokenResponse(iam_token=token, expires_at=wire.timestamp(expires_at))

        return self._run("IamTokenService.Create", context, body)

    def CreateForServiceAccount(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run(
            "IamTokenService.CreateForServiceAccount",
            context,
            _unimplemented("IamTokenService.CreateForServiceAccount"),
        )

    def Revoke(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._run("IamTokenService.Revoke", context, _unimplemented("IamTokenService.Revoke"))


def _unimplemented(method: str) -> Callable[[Headers], Any]:
    def body(_: Headers) -> Any:
        raise GrpcAbort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented by the emulator")

    return body


class ApiEndpointService(api_endpoint_service_pb2_grpc.ApiEndpointServiceServicer):
    """Endpoint discovery: every known service lives at the emulator's address."""

    def __init__(self, dispatcher: Dispatcher, address: Callable[[], str]):
        self._run = dispatcher.run
        self._address = address

    def _endpoints(self) -> list[api_endpoint_pb2.ApiEndpoint]:
        return [api_endpoint_pb2.ApiEndpoint(id=name, address=self._address()) for name in ENDPOINT_IDS]

    def Get(self, request: api_endpoint_service_pb2.GetApiEndpointRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            found = [e for e in self._endpoints() if e.id == request.api_endpoint_id]
            if not found:
                raise not_found(f"Api endpoint {request.api_endpoint_id} not found")
            return found[0]

        return self._run("ApiEndpointService.Get", context, body)

    def List(self, request: api_endpoint_service_pb2.ListApiEndpointsRequest, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            page, token = paginate(self._endpoints(), request.page_size, request.page_token, "ApiEndpointService")
            return api_endpoint_service_pb2.ListApiEndpointsResponse(endpoints=page, next_page_token=token)

        return self._run("ApiEndpointService.List", context, body)


def add_services(
    server: grpc.Server,
    state: EmulatorState,
    stats: EmulatorStats,
    address: Callable[[], str],
    authority: Authority,
) -> None:
    """Register every emulated service on ``server``."""
    dispatcher = Dispatcher(state, stats, authority)
    scanner_service_pb2_grpc.add_ScannerServiceServicer_to_server(ScannerService(state, stats, dispatcher), server)
    operation_service_pb2_grpc.add_OperationServiceServicer_to_server(OperationService(state, dispatcher), server)
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(ImageService(state, dispatcher), server)
    policies = {registry.id: registry.scan_policy for registry in state.scenario.registries}
    add_scan_policy_service(server, policies, dispatcher)
    iam_token_service_pb2_grpc.add_IamTokenServiceServicer_to_server(IamTokenService(dispatcher, authority), server)
    api_endpoint_service_pb2_grpc.add_ApiEndpointServiceServicer_to_server(
        ApiEndpointService(dispatcher, address), server
    )


def _hint_poll_interval(headers: Headers, scan: ScanView) -> None:
    """The image's ``poll_interval``, if it has one, as ``x-operation-poll-interval``: on the Scan answer
    (so the first wait is the hint too), on every OperationService.Get, and on ScannerService.Get of a
    running scan (a joined scan)."""
    interval = scan.image.scan.poll_interval
    if interval is not None:
        headers.append((POLL_INTERVAL_HEADER, f"{interval:g}"))
