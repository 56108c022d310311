"""A registry's scan policy (``ScanPolicyService.GetByRegistry``): scan on push and rescan schedules.

Scenario key, per registry (optional; without it the registry has no scan policy: NOT_FOUND)::

    registries[]:
      scan_policy:
        disabled: false
        push: {repository_prefixes: [app, team/], disabled: false}      # scan on push
        schedules:                                                       # rescans
          - {repository_prefixes: [""], rescan_period: 604800, disabled: false}   # seconds

It is served as Yandex serves it; the emulator does not rescan anything by itself (aged results are the
scenario's ``last_result``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    scan_policy_pb2,
    scan_policy_service_pb2,
    scan_policy_service_pb2_grpc,
)
from crgate_emulator.rpc import GrpcAbort, not_found, require_id

if TYPE_CHECKING:  # dispatch imports the scenario, which imports this module's parser
    from crgate_emulator.dispatch import Dispatcher, Headers

REGISTRY_KEYS = ("scan_policy",)


@dataclass(frozen=True)
class Rule:
    repository_prefixes: tuple[str, ...] = ()
    disabled: bool = False
    rescan_period: float | None = None
    """Seconds between rescans (schedule rules only)."""


@dataclass(frozen=True)
class ScanPolicySpec:
    id: str
    push: Rule | None = None
    schedules: tuple[Rule, ...] = ()
    disabled: bool = False


def parse_scan_policy(parser: Any, value: Any, path: str, registry_id: str) -> ScanPolicySpec | None:
    if value is None:
        return None
    raw = parser.mapping(value, path, ("disabled", "push", "schedules"))

    def rule(data: Any, where: str, *, scheduled: bool) -> Rule:
        keys = ("repository_prefixes", "disabled", *(("rescan_period",) if scheduled else ()))
        fields = parser.mapping(data, where, keys)
        prefixes = tuple(
            parser.text(p, f"{where}.repository_prefixes[{i}]", data)
            for i, p in enumerate(parser.seq(fields.get("repository_prefixes"), f"{where}.repository_prefixes", data))
        )
        period = None
        if scheduled:
            period = parser.number(fields.get("rescan_period"), f"{where}.rescan_period", data, default=604800.0)
        disabled = parser.boolean(fields.get("disabled"), f"{where}.disabled", data, default=False)
        return Rule(prefixes, disabled, period)

    push = None if raw.get("push") is None else rule(raw["push"], f"{path}.push", scheduled=False)
    schedules = tuple(
        rule(item, f"{path}.schedules[{i}]", scheduled=True)
        for i, item in enumerate(parser.seq(raw.get("schedules"), f"{path}.schedules", value))
    )
    disabled = parser.boolean(raw.get("disabled"), f"{path}.disabled", value, default=False)
    return ScanPolicySpec(f"crgsp{registry_id}"[:20], push, schedules, disabled)


def _wire(registry_id: str, spec: ScanPolicySpec) -> scan_policy_pb2.ScanPolicy:
    rules = scan_policy_pb2.ScanRules()
    if spec.push is not None:
        rules.push_rule.CopyFrom(
            scan_policy_pb2.PushRule(
                repository_prefixes=list(spec.push.repository_prefixes), disabled=spec.push.disabled
            )
        )
    for schedule in spec.schedules:
        entry = rules.schedule_rules.add(
            repository_prefixes=list(schedule.repository_prefixes), disabled=schedule.disabled
        )
        entry.rescan_period.FromSeconds(int(schedule.rescan_period or 0))
    return scan_policy_pb2.ScanPolicy(id=spec.id, registry_id=registry_id, rules=rules, disabled=spec.disabled)


class ScanPolicyService(scan_policy_service_pb2_grpc.ScanPolicyServiceServicer):
    def __init__(self, policies: dict[str, ScanPolicySpec | None], dispatcher: Dispatcher):
        self._policies = policies
        self._run = dispatcher.run

    def GetByRegistry(
        self, request: scan_policy_service_pb2.GetScanPolicyByRegistryRequest, context: grpc.ServicerContext
    ) -> Any:
        def body(_: Headers) -> Any:
            require_id(request.registry_id, "registry_id")
            spec = self._policies.get(request.registry_id)
            if spec is None:
                raise not_found(f"Scan policy for registry {request.registry_id} not found")
            return _wire(request.registry_id, spec)

        return self._run("ScanPolicyService.GetByRegistry", context, body, subject=request.registry_id)

    def _unimplemented(self, name: str, context: grpc.ServicerContext) -> Any:
        def body(_: Headers) -> Any:
            raise GrpcAbort(
                grpc.StatusCode.UNIMPLEMENTED, f"ScanPolicyService.{name} is not implemented by the emulator"
            )

        return self._run(f"ScanPolicyService.{name}", context, body)

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented("Get", context)

    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented("Create", context)

    def Update(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented("Update", context)

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._unimplemented("Delete", context)


def add_scan_policy_service(
    server: grpc.Server, policies: dict[str, ScanPolicySpec | None], dispatcher: Dispatcher
) -> None:
    scan_policy_service_pb2_grpc.add_ScanPolicyServiceServicer_to_server(
        ScanPolicyService(policies, dispatcher), server
    )
