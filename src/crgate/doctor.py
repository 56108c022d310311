"""``crgate doctor``: each stage of connecting, checked and explained, without starting a (billed) scan.

Stages: credentials (which source; never its secret), endpoints, token, reachability of every service
address, and, given a repository, that the identity may list its images, read its manifests and read scan
results (what ``check``'s reuse and ``crgate audit`` need), and the registry's scan policy (scan on push,
rescan schedules: whether fresh results exist without any pipeline asking; reported, never a failure).
The first failure stops the run; later stages are reported as skipped. Only the CLI turns the outcome into an exit code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_service_pb2,
    image_service_pb2_grpc,
    scan_policy_service_pb2,
    scan_policy_service_pb2_grpc,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from crgate.connect import ConnectOptions, Session, choose, connect, resolve_endpoints
from crgate.errors import CrgateError, exit_code_for
from crgate.exitcodes import ExitCode
from crgate.model import ImageRef
from crgate.scanner.calls import call_with_retries
from crgate.scanner.credentials.tokens import TokenObserver, TokenSource
from crgate.scanner.transport import RpcFailure
from crgate.textsafe import safe
from crgate.timing import Deadline

STAGES = ("credentials", "endpoints", "token", "reachable", "permission", "registry", "scan-results", "scan-policy")
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Step:
    """One stage's outcome: ``ok``, ``FAIL`` (with the error) or ``skip``."""

    stage: str
    status: str
    detail: str
    error: CrgateError | None = None


def summary(steps: Sequence[Step]) -> tuple[list[str], ExitCode]:
    """The lines doctor prints (one per stage, then the outcome) and the exit code it ends with."""
    lines = [f"{step.stage:<12} {step.status:<5} {step.detail}" for step in steps]
    failed = next((step for step in steps if step.error is not None), None)
    if failed is None or failed.error is None:
        return [*lines, "doctor: all checks passed (exit 0)"], ExitCode.PASS
    code = exit_code_for(failed.error)
    return [*lines, f"doctor: {failed.stage} check failed (exit {int(code)})"], code


def _registry_step(
    repository: ImageRef, source: TokenSource | None, registry_url: str | None, ca_file: str | None, deadline: Deadline
) -> Step:
    """Read the manifest behind ``repository`` (its tag, ``latest`` by default) the way ``check`` does."""
    from crgate.registry import ManifestNotFoundError, RegistryClient

    client = RegistryClient(token_source=source, registry_url=registry_url, ca_file=ca_file)
    where = client.base_url(repository)
    try:
        fetched = client.fetch(repository, deadline)
    except ManifestNotFoundError:
        what = f"digest {repository.digest}" if repository.digest else f"tag '{repository.tag}'"
        return Step(
            "registry", "ok", f"may read manifests at {where} (there is no {what}; give an image ref to read one)"
        )
    return Step("registry", "ok", f"may read manifests at {where} ({repository.raw}: {fetched.digest})")


def _scan_results_step(session: Session, image_id: str | None, repository: ImageRef, deadline: Deadline) -> Step:
    """Read the last scan result of one image of the repository (``GetLast``): reuse and audits need it."""
    if image_id is None:
        return Step("scan-results", "skip", f"no image in {repository.repository_name} to read a scan result of")
    stub = scanner_service_pb2_grpc.ScannerServiceStub(session.connection.channel("scanner"))
    request = scanner_service_pb2.GetLastScanResultRequest(image_id=image_id)
    try:
        call_with_retries(session.connection, "ScannerService.GetLast", stub.GetLast, request, deadline)
    except RpcFailure as failure:
        if failure.code == grpc.StatusCode.NOT_FOUND:
            return Step("scan-results", "ok", f"may read scan results (image {image_id} has none yet)")
        raise failure.to_scan_error(
            f"may not read the scan results of image {image_id}: crgate audit and reusing results need them "
            "(role container-registry.images.scanner on the registry or its folder)"
        ) from None
    return Step("scan-results", "ok", f"may read scan results (read the last one of image {image_id})")


def _scan_policy_step(session: Session, registry_id: str, deadline: Deadline) -> Step:
    """The registry's scan policy, described; reading it is informative only (never fails the doctor)."""
    from crgate.durations import format_duration

    stub = scan_policy_service_pb2_grpc.ScanPolicyServiceStub(session.connection.channel("scanner"))
    request = scan_policy_service_pb2.GetScanPolicyByRegistryRequest(registry_id=registry_id)
    try:
        policy, _ = call_with_retries(
            session.connection, "ScanPolicyService.GetByRegistry", stub.GetByRegistry, request, deadline
        )
    except RpcFailure as failure:
        if failure.code == grpc.StatusCode.NOT_FOUND:
            return Step(
                "scan-policy",
                "ok",
                f"registry {registry_id} has no scan policy: nothing scans on push or rescans, so fresh results "
                "exist only where a pipeline scanned (crgate audit --rescan-stale can rescan)",
            )
        return Step(
            "scan-policy", "skip", f"could not read the scan policy of registry {registry_id} ({failure.code.name})"
        )

    def prefixes(values: Sequence[str]) -> str:
        shown = [safe(v, 64) for v in values if v]
        return "every repository" if not shown or len(shown) < len(values) else ", ".join(shown[:10])

    if policy.disabled:
        return Step(
            "scan-policy", "ok", f"registry {registry_id}: its scan policy is disabled (no scan on push, no rescans)"
        )
    rules = policy.rules
    push = rules.push_rule
    on_push = (
        "off" if not rules.HasField("push_rule") or push.disabled else f"on for {prefixes(push.repository_prefixes)}"
    )
    schedules = [
        f"every {format_duration(dt.timedelta(seconds=rule.rescan_period.seconds))} for "
        f"{prefixes(rule.repository_prefixes)}"
        for rule in rules.schedule_rules
        if not rule.disabled and rule.rescan_period.seconds > 0
    ]
    rescans = "; ".join(schedules[:10]) if schedules else "none"
    return Step("scan-policy", "ok", f"registry {registry_id}: scan on push {on_push}; rescans {rescans}")


def run_doctor(
    options: ConnectOptions,
    env: Mapping[str, str],
    deadline: Deadline,
    repository: ImageRef | None,
    *,
    observer: TokenObserver | None = None,
    registry_url: str | None = None,
) -> list[Step]:
    """Every stage in order; stops at the first failure. ``registry_url``: ``--registry-url``."""
    steps: list[Step] = []
    session: Session | None = None

    def fail(stage: str, error: CrgateError) -> list[Step]:
        steps.append(Step(stage, "FAIL", str(error), error))
        steps.extend(Step(later, "skip", "not checked") for later in STAGES[STAGES.index(stage) + 1 :])
        return steps

    try:
        try:
            choice = choose(options, env)
        except CrgateError as error:
            return fail("credentials", error)
        try:
            found = resolve_endpoints(options, env, deadline)
        except CrgateError as error:
            steps.append(Step("credentials", "ok", choice.describe()))
            return fail("endpoints", error)
        try:
            session = connect(options, env, choice, found, deadline, observer=observer)
        except CrgateError as error:
            return fail("credentials", error)
        source = session.token_source
        described = source.description if source else choice.describe()
        steps.append(Step("credentials", "ok", "; ".join([described, *(f"warning: {n}" for n in session.notes)])))
        addresses = {service: found.address_of(service) for service in ("scanner", "operation", "iam")}
        steps.append(
            Step(
                "endpoints",
                "ok",
                f"{found.source}: container-registry {addresses['scanner']}, operation {addresses['operation']}, "
                f"iam {addresses['iam']}",
            )
        )
        if source is None:
            steps.append(Step("token", "skip", "no credentials: calls to this loopback endpoint carry no token"))
        else:
            try:
                source.token()
            except CrgateError as error:
                return fail("token", error)
            steps.append(Step("token", "ok", "obtained (never printed)"))
        for service in dict.fromkeys(("scanner", "operation", "iam")):
            try:
                session.connection.probe(service, min(CONNECT_TIMEOUT, max(deadline.remaining(), 0.001)))
            except RpcFailure as failure:
                return fail("reachable", failure.to_scan_error(f"cannot connect to {addresses[service]}"))
        steps.append(Step("reachable", "ok", ", ".join(dict.fromkeys(addresses.values()))))
        if repository is None:
            hint = "pass --repository cr.yandex/<registry-id>/<repository> to check it"
            steps.extend(Step(stage, "skip", hint) for stage in STAGES[STAGES.index("permission") :])
            return steps
        stub = image_service_pb2_grpc.ImageServiceStub(session.connection.channel("image"))
        request = image_service_pb2.ListImagesRequest(repository_name=repository.repository_name, page_size=10)
        try:
            response, _headers = call_with_retries(
                session.connection, "ImageService.List", stub.List, request, deadline
            )
        except RpcFailure as failure:
            return fail("permission", failure.to_scan_error(f"may not list images of {repository.repository_name}"))
        except CrgateError as error:
            return fail("permission", error)
        count = len(response.images)
        more = "+" if response.next_page_token else ""
        note = f"{count}{more} image(s)" if count else "no images yet: is the repository name right?"
        steps.append(Step("permission", "ok", f"may list images in {repository.repository_name} ({note})"))
        try:
            steps.append(_registry_step(repository, source, registry_url, options.ca_file, deadline))
        except CrgateError as error:
            return fail("registry", error)
        first = response.images[0].id if response.images else None
        try:
            steps.append(_scan_results_step(session, first, repository, deadline))
        except CrgateError as error:
            return fail("scan-results", error)
        steps.append(_scan_policy_step(session, repository.registry_id, deadline))
        return steps
    finally:
        if session is not None:
            session.close()
