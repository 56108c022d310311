"""Which address serves each API: one ``--endpoint`` for all, discovery at ``--api-endpoint`` /
``YC_ENDPOINT`` (``ApiEndpointService.List``, unauthenticated), or the production defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crgate._proto.yandex.cloud.endpoint import api_endpoint_service_pb2, api_endpoint_service_pb2_grpc
from crgate.errors import ConfigError, MalformedResponseError
from crgate.regions import DEFAULT_REGION, Region
from crgate.scanner.calls import call_with_retries
from crgate.scanner.transport import Connection, ConnectionSettings, RpcFailure
from crgate.textsafe import safe
from crgate.timing import Deadline

METHOD = "ApiEndpointService.List"
# crgate's service name -> the endpoint id discovery returns for it.
DISCOVERY_IDS = {"scanner": "container-registry", "image": "container-registry", "operation": "operation", "iam": "iam"}
MAX_PAGES = 20
_ADDRESS = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


@dataclass(frozen=True)
class Endpoints:
    """Per-service addresses and where they came from (for ``crgate doctor`` and logs)."""

    source: str
    endpoint: str | None = None
    addresses: tuple[tuple[str, str], ...] = ()

    def settings(self, *, insecure: bool, ca_file: str | None) -> ConnectionSettings:
        return ConnectionSettings(endpoint=self.endpoint, insecure=insecure, ca_file=ca_file, addresses=self.addresses)

    def address_of(self, service: str) -> str:
        return self.settings(insecure=False, ca_file=None).address_of(service)


def check_address(address: str, option: str) -> str:
    """``HOST:PORT`` as gRPC dials it; ConfigError otherwise."""
    if not _ADDRESS.fullmatch(address):
        raise ConfigError(f"{option}: '{safe(address, 200)}' is not HOST:PORT (e.g. api.cloud.yandex.net:443)")
    return address


def production(region: Region = DEFAULT_REGION) -> Endpoints:
    """The documented production addresses of ``region`` (which must have them: ``region.endpoints``)."""
    if not region.endpoints:
        raise ValueError(f"{region.name} has no documented production addresses; use discover()")
    return Endpoints(source=f"{region.title} production defaults", addresses=region.endpoints)


def single(endpoint: str) -> Endpoints:
    return Endpoints(source=f"--endpoint {endpoint}", endpoint=endpoint)


def discover(
    api_endpoint: str,
    origin: str,
    deadline: Deadline,
    *,
    insecure: bool,
    ca_file: str | None,
    trace_id: str | None = None,
) -> Endpoints:
    """Ask ``ApiEndpointService.List`` at ``api_endpoint`` where each service lives."""
    connection = Connection(
        ConnectionSettings(endpoint=api_endpoint, insecure=insecure, ca_file=ca_file), trace_id=trace_id
    )
    found: dict[str, str] = {}
    try:
        stub = api_endpoint_service_pb2_grpc.ApiEndpointServiceStub(connection.channel("iam"))
        token = ""
        for _ in range(MAX_PAGES):
            request = api_endpoint_service_pb2.ListApiEndpointsRequest(page_size=100, page_token=token)
            try:
                response, _headers = call_with_retries(connection, METHOD, stub.List, request, deadline, anonymous=True)
            except RpcFailure as failure:
                raise failure.to_scan_error(
                    f"endpoint discovery at {api_endpoint} ({origin}) failed",
                    hint="Is it an API root such as api.cloud.yandex.net:443 or api.yandexcloud.kz:443?",
                ) from None
            for item in response.endpoints:
                found.setdefault(item.id, item.address)
            token = response.next_page_token
            if not token:
                break
    finally:
        connection.close()
    addresses = []
    missing = sorted({wanted for wanted in DISCOVERY_IDS.values() if wanted not in found})
    if missing:
        raise MalformedResponseError(
            f"endpoint discovery at {api_endpoint} ({origin}) returned no address for {', '.join(missing)}",
            method=METHOD,
        )
    for service, endpoint_id in DISCOVERY_IDS.items():
        address = found[endpoint_id]
        if not _ADDRESS.fullmatch(address):
            raise MalformedResponseError(
                f"endpoint discovery at {api_endpoint} returned a malformed address for {endpoint_id}", method=METHOD
            )
        addresses.append((service, address))
    return Endpoints(source=f"discovered at {api_endpoint} ({origin})", addresses=tuple(addresses))
