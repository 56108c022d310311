"""The command line: options, printing, and the one place that turns outcomes and errors into exit codes.

Commands return an ``ExitCode``; ``main`` maps every error (crgate's, click's, Ctrl-C, a broken pipe)
through ``_exit_status`` and exits once. The work itself is the core's (``crgate.gate``). Only click
and crgate's tiny modules load at start-up: ``--help`` and ``--version`` never load gRPC.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import click

from crgate import __version__
from crgate.defaults import DEFAULT_CONCURRENCY, DEFAULT_SARIF_LOCATION, DEFAULT_TIMEOUT, MAX_TIMEOUT
from crgate.exitcodes import ExitCode
from crgate.report import FORMATS
from crgate.terminal import HELP_MAX_WIDTH, help_width  # click would import shutil (bz2, lzma) for the width

if TYPE_CHECKING:
    import datetime as dt

    from crgate.connect import ConnectOptions, PlannedSettings, Session
    from crgate.gate import GateResult, RunOptions
    from crgate.masking import SecretMasker
    from crgate.model import ImageRef, Policy
    from crgate.outputs import ReportPlan
    from crgate.provenance import Flags, Loosening, SettingSource
    from crgate.targets import Selection
    from crgate.timing import Deadline


# -- parameter types --------------------------------------------------------------------------------


class _Seconds(click.FloatRange):
    """A positive, finite number of seconds (NaN and infinity pass a plain range check)."""

    name = "seconds"

    def __init__(self) -> None:
        super().__init__(min=0, min_open=True, max=MAX_TIMEOUT)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if seconds != seconds:  # NaN compares false with every bound
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return seconds


class _Output(click.ParamType):
    """``FORMAT=PATH`` with a known format and a path whose directory exists, or ``-`` for stdout."""

    name = "FORMAT=PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        from crgate.errors import ConfigError
        from crgate.outputs import parse_output

        try:
            return value if isinstance(value, tuple) else parse_output(str(value), FORMATS)
        except ConfigError as error:
            self.fail(str(error), param, ctx)


def _options(table: Sequence[Callable[[Any], Any]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Apply a table of click options to a command, in the table's order."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(table):
            command = option(command)
        return command

    return apply


# -- option tables ----------------------------------------------------------------------------------


def _text_option(name: str, metavar: str, help: str) -> Callable[[Any], Any]:
    return click.option(name, metavar=metavar, help=help)


# fmt: off
_CONNECTION_OPTIONS = (
    _text_option("--endpoint", "HOST:PORT", "One address for every API service (an emulator or a proxy). "
                 "Default: Yandex Cloud production endpoints over TLS."),
    _text_option("--api-endpoint", "HOST:PORT", "API root whose endpoint discovery names each service's address, "
                 "e.g. api.yandexcloud.kz:443 (env YC_ENDPOINT)."),
    click.option("--insecure", is_flag=True, help="Plaintext gRPC; allowed only to loopback addresses."),
    _text_option("--ca-file", "PEM", "Trust these CA certificates instead of the system roots (gRPC and the "
                 "token endpoint)."),
    _text_option("--iam-token", "TOKEN", "IAM token (env YC_IAM_TOKEN). Never printed."),
    _text_option("--sa-key", "FILE|JSON", "Service account authorized key, a path or inline JSON "
                 "(env YC_SERVICE_ACCOUNT_KEY_FILE)."),
    _text_option("--federation-sa-id", "ID", "Keyless CI: exchange the job's OIDC token for this service "
                 "account's token (env YC_SA_ID)."),
    _text_option("--oidc-token-env", "NAME", "Variable holding the job's OIDC token (GitLab id_tokens). "
                 "Default: YC_OIDC_TOKEN, else GitHub Actions' token."),
    _text_option("--oidc-audience", "AUD", "Audience of the GitHub Actions OIDC token to request."),
    _text_option("--token-endpoint", "URL", "Federation token exchange URL (env YC_TOKEN_ENDPOINT). "
                 "Default: https://auth.yandex.cloud/oauth/token."),
    click.option("--metadata", is_flag=True, help="Use this Yandex Cloud VM's service account (metadata service; "
                 "env YC_METADATA_ADDR: its address)."),
)
# fmt: on
_CREDENTIAL_KEYS = ("iam_token", "sa_key", "federation_sa_id", "oidc_token_env", "oidc_audience", "token_endpoint")
_VERBOSE = click.option("-v", "--verbose", count=True, help="Log API calls to stderr (-vv for debug). Secrets are "
                        "never logged.")  # fmt: skip


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the endpoint, TLS and credential options; the command receives them as ``connect``."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        from crgate.connect import ConnectOptions
        from crgate.scanner.credentials.choose import CredentialOptions

        credentials = CredentialOptions(
            **{key: kwargs.pop(key) for key in _CREDENTIAL_KEYS}, metadata=kwargs.pop("metadata")
        )
        kwargs["connect"] = ConnectOptions(
            credentials=credentials,
            endpoint=kwargs.pop("endpoint"),
            api_endpoint=kwargs.pop("api_endpoint"),
            insecure=kwargs.pop("insecure"),
            ca_file=kwargs.pop("ca_file"),
        )
        return command(**kwargs)

    return _options(_CONNECTION_OPTIONS)(wrapper)


# fmt: off
_POLICY_OPTION = click.option("--policy", "policy_path", metavar="FILE", help="Policy file. Default: ./.crgate.yaml, "
                              "./crgate.yaml, else built-in (critical: 0, high: 0).")
_POLICY_PIN_OPTION = click.option("--policy-sha256", "policy_sha256", metavar="HEX", help="Refuse to run (exit 2) "
                                  "unless the policy in force has this SHA-256 (env CRGATE_POLICY_SHA256; both "
                                  "must match when both are set). The built-in default is hashed as its "
                                  "documented text.")
_VEX_OPTIONS = (
    click.option("--vex", "vex_files", multiple=True, metavar="FILE", help="OpenVEX 0.2.0 document whose "
                 "not_affected/fixed statements take findings out of the counts (after the policy's 'vex' "
                 "list). Repeatable."),
    click.option("--kev-catalog", metavar="FILE", help="CISA KEV catalog (JSON) in place of the policy's "
                 "kev.catalog; without a 'kev' key in the policy: kev.max 0."),
)
_TODAY_OPTION = click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
                             help="Judge ignore-rule expiry as of this date (preview what fails after a rule "
                             "expires). Default: today.")
_REGISTRY_URL_OPTION = click.option("--registry-url", metavar="URL", envvar="CRGATE_REGISTRY_URL", help="The "
                                    "registry's OCI distribution API (env CRGATE_REGISTRY_URL). Default: "
                                    "https://<host of the reference>.")
_REPORT_OPTIONS = (
    click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
                 help="Report format on stdout."),
    click.option("--output", "outputs", type=_Output(), multiple=True, metavar="FORMAT=PATH",
                 help="Also write a report to PATH. Repeatable (e.g. --output json=report.json)."),
)
# fmt: on
# fmt: off
_LIMIT_OPTIONS = (
    click.option("--max", "limits", multiple=True, metavar="SEVERITY=N", help="Limit from the command line "
                 "(critical, high, medium, low, negligible, undefined, total); overrides the policy's. Repeatable."),
    click.option("--only-fixed", is_flag=True, help="Count only findings with a known fix against every limit."),
)
_CHECK_OPTIONS = (
    click.argument("image_refs", metavar="[IMAGE_REF]...", nargs=-1),
    click.option("--image-id", "image_ids", multiple=True, metavar="ID",
                 help="Scan an image by its id (skips resolution). Repeatable."),
    _POLICY_OPTION,
    _POLICY_PIN_OPTION,
    *_LIMIT_OPTIONS,
    *_VEX_OPTIONS,
    click.option("--report-only", is_flag=True, help="Judge and report as usual, but exit 0 when the only "
                 "failures are policy violations (errors still fail)."),
    _connection_options,
    click.option("--timeout", type=_Seconds(), default=DEFAULT_TIMEOUT, show_default=True, metavar="SECONDS",
                 help="Overall deadline for the whole run."),
    click.option("--concurrency", type=click.IntRange(1, 100), default=DEFAULT_CONCURRENCY, show_default=True,
                 help="Images scanned at once (Yandex allows 10 concurrent scans per cloud)."),
    *_REPORT_OPTIONS,
    click.option("--progress", type=click.Choice(("auto", "live", "lines", "none")), default="auto",
                 show_default=True, help="Progress on stderr: live table on a terminal, lines in logs."),
    click.option("--emulator", "use_emulator", is_flag=True, help="Start the built-in emulator with its demo data "
                 "and check against it (no account needed)."),
    click.option("--emulator-data", metavar="FILE", help="Scenario file for --emulator instead of the demo data."),
    _TODAY_OPTION,
    click.option("--from-manifest", "manifests", multiple=True, metavar="FILE|-",
                 help="Also gate every image in Kubernetes manifests (multi-document YAML, helm template output) "
                 "or a docker-compose file; - reads stdin. Repeatable. Images outside Yandex Container Registry "
                 "follow the policy's 'unscannable' (warn, fail or skip)."),
    click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH",
                 help="Gate only these platforms of a multi-platform image (e.g. linux/arm64). Repeatable."),
    _REGISTRY_URL_OPTION,
    click.option("--declare-loosening", "declared", multiple=True, metavar="TEXT",
                 help="For integrations: record TEXT as a loosening of this run (printed at the top of the log "
                 "and in every report), e.g. what an input or variable changed. Repeatable."),
    click.option("--pin-to", metavar="OUT", help="With --from-manifest: when every image passes, write the "
                 "manifest to OUT with each gated image pinned to its digest."),
    click.option("--sarif-location", default=DEFAULT_SARIF_LOCATION, show_default=True, metavar="PATH",
                 help="Repository path that SARIF results and Code Quality entries point at (line 1)."),
    click.option("--sarif-category", default="crgate", show_default=True, metavar="NAME",
                 help="SARIF run category for GitHub code scanning: one per matrix job, so uploads do not "
                 "replace each other."),
    _VERBOSE,
)
# fmt: on


# -- commands ---------------------------------------------------------------------------------------


class _ReaderGone(Exception):
    """stdout or stderr was closed under a command (``| head``): the output was not delivered."""


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, less ``emulator`` when the emulator (a distribution of its own) is not installed."""
        import importlib.util

        names = super().list_commands(ctx)
        return names if importlib.util.find_spec("crgate_emulator") else [n for n in names if n != "emulator"]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError as error:  # click itself would sys.exit(1), which reads as a violation
            raise _ReaderGone() from error


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_MAX_WIDTH})
@click.version_option(__version__, "--version", "-V", prog_name="crgate", message="%(prog)s %(version)s")
def cli() -> None:
    """crgate: scan Yandex Container Registry images and gate them on a severity policy.

    \b
    Exit codes:
      0    every image passed the policy
      1    at least one image violates the policy
      2    usage or configuration error (bad flag, policy file or image reference)
      3    scan or API error (auth, not found, scan ERROR, malformed response)
      4    timed out waiting for a scan result
      130  interrupted (Ctrl-C, SIGTERM)
    """


@cli.command()
@_options(_CHECK_OPTIONS)
def check(
    image_refs: tuple[str, ...],
    image_ids: tuple[str, ...],
    policy_path: str | None,
    policy_sha256: str | None,
    limits: tuple[str, ...],
    only_fixed: bool,
    vex_files: tuple[str, ...],
    kev_catalog: str | None,
    report_only: bool,
    connect: ConnectOptions,
    timeout: float,
    concurrency: int,
    fmt: str,
    outputs: tuple[tuple[str, str], ...],
    progress: str,
    use_emulator: bool,
    emulator_data: str | None,
    today: dt.datetime | None,
    manifests: tuple[str, ...],
    platforms: tuple[str, ...],
    registry_url: str | None,
    declared: tuple[str, ...],
    pin_to: str | None,
    sarif_location: str,
    sarif_category: str,
    verbose: int,
) -> ExitCode:
    """Scan images and judge them against the policy; the exit code is the verdict.

    IMAGE_REF is cr.yandex/<registry-id>/<repo>:<tag> or cr.yandex/<registry-id>/<repo>@sha256:<digest>
    (also cr.cloud.yandex.net, container-registry.cloud.yandex.net, cr.yandexcloud.kz).
    Several images are scanned concurrently; the exit code is the worst of them.
    """
    import dataclasses

    from crgate import outputs as files
    from crgate.connect import on_emulator, planned_settings, used_settings, with_region
    from crgate.gate import RunOptions
    from crgate.logs import configure_logging
    from crgate.overrides import apply_inputs, apply_overrides
    from crgate.pinning import write_pinned
    from crgate.policy import discover_policy_pinned
    from crgate.provenance import (
        MAX_DECLARED,
        Provenance,
        input_files,
        policy_origin,
        run_loosenings,
    )
    from crgate.registry import parse_platform
    from crgate.report.cosign_vuln import invocation_from_env
    from crgate.report.sarif import check_category
    from crgate.targets import select_targets
    from crgate.timing import Deadline

    masker = _masker()
    configure_logging(verbose, sys.stderr, masker)
    if not image_refs and not image_ids and not manifests:
        raise click.UsageError("no images given: pass IMAGE_REF arguments, --image-id ID or --from-manifest FILE")
    if not sarif_location.strip() or any(ch in sarif_location for ch in "\r\n"):
        raise click.BadParameter("give a repository-relative file path", param_hint="--sarif-location")
    if emulator_data and not use_emulator:
        raise click.UsageError("--emulator-data needs --emulator")
    if pin_to is not None and len(manifests) != 1:
        raise click.UsageError("--pin-to writes one manifest: give exactly one --from-manifest FILE (or -)")
    check_category(sarif_category)
    _refuse_emulator_variable(use_emulator)
    if len(declared) > MAX_DECLARED:
        raise click.BadParameter(
            f"given {len(declared)} times; at most {MAX_DECLARED}", param_hint="--declare-loosening"
        )
    plan = files.plan_reports(fmt, _given("fmt"), outputs, pin_to)
    selection = select_targets(image_refs, image_ids, manifests, sys.stdin.buffer)
    _refuse_oversized_dotenv(plan, [target.ref for target in selection.targets if target.ref])
    base_policy = discover_policy_pinned(policy_path, policy_sha256, os.environ)
    policy = apply_inputs(apply_overrides(base_policy, limits, only_fixed=only_fixed), vex_files, kev_catalog)
    options = RunOptions(
        platforms=tuple(parse_platform(value) for value in platforms),
        concurrency=concurrency,
        today=today.date() if today else None,
        unscannable=selection.unscannable,
        report_only=report_only,
    )
    registry_url = _registry_url(registry_url)
    refs = [target.ref for target in selection.targets if target.ref]
    connect = with_region(connect, refs, os.environ)
    planned = planned_settings(
        connect,
        os.environ,
        refs,
        registry_url=registry_url,
        registry_source=_source("registry_url"),
        emulator=use_emulator,
    )
    flags = _flags(
        planned,
        connect,
        selection.unscannable,
        today,
        report_only=report_only,
        platforms=platforms,
        emulator=(emulator_data or "its demo data") if use_emulator else None,
        declared=declared,
    )
    loosenings = run_loosenings(base_policy, policy, flags)

    def opening() -> None:  # printed once credentials are masked, before any scan (see _run_gate)
        _announce(loosenings)
        for line in selection.summary(policy.unscannable):
            _note(line, prefix=not line.startswith(" "))

    # Every destination gets its temporary file now: an unwritable one is exit 2 before any billed call.
    with files.pending(plan.destinations()) as opened, contextlib.ExitStack() as stack:
        emulator_registry = None
        if use_emulator and selection.targets:
            connect, registry_url = on_emulator(stack, connect, emulator_data, registry_url)
            emulator_registry = registry_url
        gating = _Gating(selection, policy, options, connect, registry_url, masker, opening, use_emulator)
        result, session = _run_gate(stack, gating, Deadline(timeout), progress)
        used = used_settings(planned, session, emulator_registry)
        read_vex, read_kev = input_files(policy)
        provenance = Provenance(
            __version__,
            policy_origin(base_policy, explicit=policy_path is not None),
            vex_files=read_vex,
            kev_files=read_kev,
            loosenings=loosenings,
            emulated=use_emulator,
            api_endpoint=used.api_endpoint,
            registry=used.registry,
            token_endpoint=used.token_endpoint,
            credential_kind=used.credential_kind,
            credential_source=used.credential_source,
        )
        result = dataclasses.replace(result, report=dataclasses.replace(result.report, provenance=provenance))
        if result.interrupted:
            from crgate.gate import interruption_lines

            for line in interruption_lines(result.left_running):
                _note(line, prefix=not line.startswith(" "))
        report = result.report
        reports, pin_file = opened[: len(plan.files)], opened[len(plan.files) :]
        files.write_reports(
            report,
            plan,
            reports,
            sys.stdout,
            sys.stderr,
            location=sarif_location,
            invocation=invocation_from_env(os.environ),
            sarif_category=sarif_category,
        )
        for out in pin_file:  # --pin-to: written only when the verdict is pass
            said = write_pinned(report, selection.manifests[0], out.stream, str(out.path))
            if said:
                out.commit()
            _note(said or f"--pin-to {out.path} not written: the verdict is {report.verdict}, nothing to deploy")
    return report.process_exit_code


class _Duration(click.ParamType):
    """``7d``, ``36h``, ``90m`` or ``3600s``."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from crgate.durations import parse_duration

        if not isinstance(value, str):
            return value
        duration = parse_duration(value.strip())
        if duration is None:
            self.fail(f"{value!r} is not a duration: give a whole number and a unit, e.g. 7d, 36h, 90m", param, ctx)
        return duration


_AUDIT_FORMATS = ("text", "json", "markdown", "junit")  # crgate.report.audit.AUDIT_FORMATS (not imported here)


class _AuditOutput(_Output):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        from crgate.errors import ConfigError
        from crgate.outputs import parse_output

        try:
            return value if isinstance(value, tuple) else parse_output(str(value), _AUDIT_FORMATS)
        except ConfigError as error:
            self.fail(str(error), param, ctx)


# fmt: off
_AUDIT_OPTIONS = (
    click.argument("image_refs", metavar="[IMAGE_REF]...", nargs=-1),
    click.option("--registry", "registries", multiple=True, metavar="ID", help="Audit every image of this "
                 "registry. Repeatable."),
    click.option("--repository", "repositories", multiple=True, metavar="REGISTRY_ID/REPOSITORY",
                 help="Audit every image of this repository. Repeatable."),
    click.option("--folder-id", "folders", multiple=True, metavar="ID", help="Audit every image of every registry "
                 "in this folder. Repeatable."),
    click.option("--from-manifest", "manifests", multiple=True, metavar="FILE|-", help="Also audit every image in "
                 "Kubernetes manifests or a compose file; - reads stdin (kubectl get pods -A -o yaml). Repeatable."),
    click.option("--max-age", type=_Duration(), default="7d", show_default=True, metavar="DURATION",
                 help="A last READY scan older than this is stale."),
    click.option("--since", type=_Duration(), metavar="DURATION", help="Only images created (pushed) within this "
                 "window (the image's created_at)."),
    click.option("--include-untagged", is_flag=True, help="Also audit untagged images (an image listed in a tagged "
                 "index always counts as tagged)."),
    click.option("--rescan-stale", is_flag=True, help="Scan the stale and never-scanned images (billed beyond the "
                 "monthly free scans), within the cloud's scan quota."),
    click.option("--max-scans", type=click.IntRange(0, 100_000), metavar="N", help="With --rescan-stale: start at "
                 "most N scans (never-scanned images first, then the oldest)."),
    _POLICY_OPTION,
    _POLICY_PIN_OPTION,
    _connection_options,
    _REGISTRY_URL_OPTION,
    click.option("--timeout", type=_Seconds(), default=DEFAULT_TIMEOUT, show_default=True, metavar="SECONDS",
                 help="Overall deadline for the whole audit."),
    click.option("--concurrency", type=click.IntRange(1, 64), default=16, show_default=True,
                 help="Images read at once (scan results are only read, never started)."),
    click.option("--format", "fmt", type=click.Choice(_AUDIT_FORMATS), default="text", show_default=True,
                 help="Report format on stdout."),
    click.option("--output", "outputs", type=_AuditOutput(), multiple=True, metavar="FORMAT=PATH",
                 help="Also write a report to PATH. Repeatable (e.g. --output json=audit.json)."),
    click.option("--progress", type=click.Choice(("auto", "live", "lines", "none")), default="auto",
                 show_default=True, help="Progress on stderr: a counter on a terminal, lines in logs."),
    _TODAY_OPTION,
    _VERBOSE,
)
# fmt: on


@cli.command()
@_options(_AUDIT_OPTIONS)
def audit(
    image_refs: tuple[str, ...],
    registries: tuple[str, ...],
    repositories: tuple[str, ...],
    folders: tuple[str, ...],
    manifests: tuple[str, ...],
    max_age: dt.timedelta,
    since: dt.timedelta | None,
    include_untagged: bool,
    rescan_stale: bool,
    max_scans: int | None,
    policy_path: str | None,
    policy_sha256: str | None,
    connect: ConnectOptions,
    registry_url: str | None,
    timeout: float,
    concurrency: int,
    fmt: str,
    outputs: tuple[tuple[str, str], ...],
    progress: str,
    today: dt.datetime | None,
    verbose: int,
) -> ExitCode:
    """Audit images already in the registry (or running): is each scanned recently and within policy?

    For every image: its last READY scan (none is started), the scan's age, and its verdict under the
    policy. Never-scanned, stale (older than --max-age) and failing images are the audit's findings
    (exit 1). No billed scan unless --rescan-stale. Exit codes as for check.
    """

    from crgate import outputs as files
    from crgate.audit.select import audit_selection
    from crgate.connect import planned_settings, with_region
    from crgate.logs import configure_logging
    from crgate.policy import discover_policy_pinned
    from crgate.provenance import run_loosenings
    from crgate.timing import Deadline

    masker = _masker()
    configure_logging(verbose, sys.stderr, masker)
    if not (image_refs or registries or repositories or folders or manifests):
        raise click.UsageError(
            "nothing to audit: pass --registry ID, --repository REGISTRY_ID/REPOSITORY, --folder-id ID, "
            "IMAGE_REF arguments or --from-manifest FILE"
        )
    if max_scans is not None and not rescan_stale:
        raise click.UsageError("--max-scans caps --rescan-stale: pass --rescan-stale too")
    plan = files.plan_reports(fmt, _given("fmt"), outputs)
    selection = audit_selection(image_refs, registries, repositories, folders, manifests, sys.stdin.buffer, since,
                                include_untagged, connect.api_endpoint)  # fmt: skip
    policy = discover_policy_pinned(policy_path, policy_sha256, os.environ)
    registry_url = _registry_url(registry_url)
    refs = [t.ref for t in selection.targets if t.ref]
    connect = with_region(connect, refs, os.environ)
    planned = planned_settings(
        connect, os.environ, refs, registry_url=registry_url, registry_source=_source("registry_url"), emulator=False
    )
    flags = _flags(planned, connect, tuple(selection.unscannable), today)
    loosenings = run_loosenings(policy, policy, flags)  # announced once credentials are masked (_run_audit)
    with files.pending(plan.destinations()) as opened, contextlib.ExitStack() as stack:
        report = _run_audit(stack, selection, policy, connect, registry_url, masker, Deadline(timeout), progress,
                            max_age=max_age, rescan_stale=rescan_stale, max_scans=max_scans, concurrency=concurrency,
                            today=today.date() if today else None, loosenings=loosenings)  # fmt: skip
        from crgate.report.audit import write_audit_reports

        write_audit_reports(report, plan, opened, sys.stdout, sys.stderr)
    if rescan_stale:
        _note(f"--rescan-stale: {report.scans_started} scan(s) started")
    return report.exit_code


def _run_audit(
    stack: contextlib.ExitStack[bool | None],
    selection: Any,
    policy: Policy,
    connect: ConnectOptions,
    registry_url: str | None,
    masker: SecretMasker,
    deadline: Deadline,
    progress: str,
    **settings: Any,
) -> Any:
    """Connect, then let the audit run; SIGTERM acts as Ctrl-C."""
    import dataclasses
    import signal
    import threading

    from crgate.audit.run import AuditOptions, audit
    from crgate.connect import open_clients
    from crgate.progress import CountProgress, progress_for

    cancel = threading.Event()
    clients = open_clients(connect, os.environ, deadline, registry_url=registry_url, cancel=cancel, observer=masker)
    stack.callback(clients.close)
    _announce(settings["loosenings"])  # the first lines after the credentials' masks, before any call
    _note(f"crgate {__version__}: audit; policy {policy.source}; " + ", ".join(selection.describe()), prefix=False)
    if clients.session.token_source is not None:
        _note(f"credentials: {clients.session.token_source.description}")
    for warning in clients.session.notes:
        _note(f"warning: {warning}")
    options = AuditOptions(
        max_age=settings["max_age"],
        concurrency=settings["concurrency"],
        rescan_stale=settings["rescan_stale"],
        max_scans=settings["max_scans"],
        today=settings["today"],
    )
    sink = progress_for(progress, sys.stderr) if settings["rescan_stale"] else None
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        report = audit(
            selection,
            clients.scanner,
            clients.registry,
            policy,
            deadline,
            options=options,
            progress=CountProgress(progress, sys.stderr),
            scan_progress=sink,
            cancel=cancel,
        )
        return dataclasses.replace(report, loosenings=settings["loosenings"])
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if sink is not None:
            sink.close()


class _Gating(NamedTuple):  # not a dataclass: importing dataclasses costs every --help and --version
    """What ``check`` has settled before any network call: what to gate, how, and where."""

    selection: Selection
    policy: Policy
    options: RunOptions
    connect: ConnectOptions
    registry_url: str | None
    masker: SecretMasker
    opening: Callable[[], None]
    """The loosenings block and what the selection says: the first lines after the credentials' masks."""
    emulated: bool = False


def _given(name: str) -> bool:
    """Whether the user gave option ``name`` (rather than leaving its default)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _flags(
    planned: PlannedSettings,
    connect: ConnectOptions,
    unscannable: tuple[str, ...],
    today: dt.datetime | None,
    **settings: Any,
) -> Flags:
    """The run's settings that can loosen it (``crgate.provenance.Flags``), the same for check and audit:
    the endpoints as planned, the trust store, the unscannable images, ``--today``; ``settings``: the
    command's own (report-only, platforms, the emulator, declared loosenings)."""
    import datetime as dt

    from crgate.provenance import Flags as RunFlags
    from crgate.provenance import trust_variables

    return RunFlags(
        unscannable=unscannable,
        today=today.date() if today else None,
        real_today=dt.date.today(),
        api_endpoint=planned.api_endpoint,
        registry=planned.registry,
        token_endpoint=planned.token_endpoint,
        federation=planned.federation,
        metadata_address=planned.metadata_address,
        ca_file=connect.ca_file,
        trust_variables=trust_variables(os.environ, connect.ca_file),
        **settings,
    )


def _refuse_oversized_dotenv(plan: ReportPlan, refs: list[ImageRef]) -> None:
    """A dotenv report GitLab would refuse is exit 2 now, before any billed call."""
    from crgate.report.dotenv import refuse_oversized

    options = [option for fmt, _, option in plan.files if fmt == "dotenv"]
    if plan.stdout_format == "dotenv":
        options.append("--format dotenv")
    if options:
        refuse_oversized(refs, options[0])


def _registry_url(value: str | None) -> str | None:
    """``--registry-url`` checked; from ``CRGATE_REGISTRY_URL`` alone it must name a Yandex registry host."""
    from crgate.registry import check_registry_url

    if not value:
        return None
    source = click.get_current_context().get_parameter_source("registry_url")
    if source is not None and source.name == "ENVIRONMENT":
        return check_registry_url(value, "CRGATE_REGISTRY_URL", from_environment=True)
    return check_registry_url(value, "--registry-url")


def _source(name: str) -> SettingSource:
    """Where option ``name``'s value came from: the command line, its environment variable, or its default."""
    from crgate.provenance import SettingSource

    source = click.get_current_context().get_parameter_source(name)
    if source is not None and source.name == "ENVIRONMENT":
        return SettingSource.ENVIRONMENT
    return SettingSource.FLAG if _given(name) else SettingSource.DEFAULT


def _announce(loosenings: tuple[Loosening, ...]) -> None:
    """The loosenings block on stderr (``crgate.report.provenance.log_block``: already inert, its CI markers
    crgate's own), so it leads the log whatever format goes to stdout."""
    import time

    from crgate.report.provenance import log_block

    for line in log_block(loosenings, os.environ, time.time()):
        click.echo(line, err=True)


def _refuse_emulator_variable(use_emulator: bool) -> None:
    """No variable switches the emulator on: a pipeline variable must never turn a gate into a demo."""
    value = os.environ.get("CRGATE_EMULATOR", "").strip().lower()
    if value and value not in ("0", "false", "no") and not use_emulator:
        _note("warning: CRGATE_EMULATOR is ignored: only the --emulator flag starts the emulator")


def _run_gate(
    stack: contextlib.ExitStack[bool | None], run: _Gating, deadline: Deadline, progress: str
) -> tuple[GateResult, Session | None]:
    """Connect (only when there is something to scan), then let the core run; SIGTERM acts as Ctrl-C.
    Returns the session too (None: nothing to scan), for the provenance of what was used."""
    import signal
    import threading

    from crgate import gate
    from crgate.progress import progress_for

    cancel = threading.Event()
    clients = None
    if run.selection.targets:
        from crgate.connect import open_clients

        # Credentials first: a misconfiguration stops the run before any scan RPC, and on GitHub Actions
        # the token is masked before anything else is printed (the loosenings block included).
        try:
            clients = open_clients(
                run.connect, os.environ, deadline, registry_url=run.registry_url, cancel=cancel, observer=run.masker
            )
        except BaseException:
            run.opening()  # the block is said even when connecting fails
            raise
        stack.callback(clients.close)
    run.opening()
    if clients is not None:
        emulated = " (EMULATED: crgate's built-in emulator, not Yandex Cloud)" if run.emulated else ""
        count = len(run.selection.targets)
        _note(f"crgate {__version__}: policy {run.policy.source}; {count} image(s){emulated}", prefix=False)
        if clients.session.token_source is not None:
            _note(f"credentials: {clients.session.token_source.description}")
        for warning in clients.session.notes:
            _note(f"warning: {warning}")
    sink = progress_for(progress, sys.stderr)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        scanner, registry = (clients.scanner, clients.registry) if clients else (None, None)
        targets = run.selection.targets
        result = gate.run(
            targets, scanner, run.policy, deadline, registry=registry, options=run.options, progress=sink, cancel=cancel
        )
        return result, clients.session if clients else None
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        sink.close()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _note(message: str, *, prefix: bool = True) -> None:
    """One line for people on stderr (stdout stays clean for machine formats), made inert: messages
    carry references, paths and server text, and none may drive the terminal or the CI runner."""
    from crgate.textsafe import LINE_LIMIT, safe

    click.echo(safe(f"crgate: {message}" if prefix else message, LINE_LIMIT), err=True)


def _show_usage_error(error: click.ClickException) -> None:
    """click's own rendering of a usage error, with the message (it quotes what was typed) made inert."""
    from crgate.textsafe import safe

    if isinstance(error, click.UsageError) and error.ctx is not None:
        click.echo(error.ctx.get_usage(), err=True)
        click.echo(f"Try '{error.ctx.command_path} {error.ctx.help_option_names[0]}' for help.\n", err=True)
    click.echo(f"Error: {safe(error.format_message(), 4000)}", err=True)


def _masker() -> SecretMasker:
    from crgate.masking import SecretMasker

    return SecretMasker(os.environ, lambda line: click.echo(line, err=True))


# fmt: off
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0 = pick a free one).")
@click.option("--data", metavar="FILE", help="Scenario YAML (registries, images, findings, scan behaviour). "
              "Default: the demo data.")
@click.option("--tls", is_flag=True, help="Serve TLS with a certificate of a CA generated at start; its path is the "
              "second line of stdout.")
# fmt: on
def emulator(host: str, port: int, data: str | None, tls: bool) -> ExitCode:
    """Run a local Yandex Container Registry scanner emulator (gRPC) until Ctrl-C.

    Prints the address it listens on as the first line of stdout (with --tls the CA certificate's path
    next), then the URL of its registry. Use them with
    `crgate check --endpoint ADDRESS --registry-url URL --insecure ...`, or with --tls:
    `crgate check --endpoint ADDRESS --registry-url URL --ca-file CA ...`.
    """
    import signal
    import threading

    from crgate.connect import start_emulator

    server = start_emulator("crgate emulator", data, host=host, port=port, tls=tls).start()
    stdout, stderr = server.announcement()
    for line in stdout:
        click.echo(line)
    for line in stderr:
        _note(line, prefix=False)
    stop = threading.Event()
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()  # until SIGTERM sets it, or Ctrl-C interrupts the wait
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        server.stop()
    return ExitCode.PASS


# fmt: off
@cli.command()
@click.option("--repository", metavar="REF", help="Check that the identity may list images of "
              "cr.yandex/<registry-id>/<repository> and read its manifest (an image ref works).")
@_connection_options
@_REGISTRY_URL_OPTION
@click.option("--timeout", type=_Seconds(), default=60.0, show_default=True, metavar="SECONDS",
              help="Overall deadline for all checks.")
@click.option("--emulator", "use_emulator", is_flag=True, help="Check against the built-in emulator and its demo "
              "data (no account needed).")
@_VERBOSE
# fmt: on
def doctor(
    repository: str | None,
    connect: ConnectOptions,
    registry_url: str | None,
    timeout: float,
    use_emulator: bool,
    verbose: int,
) -> ExitCode:
    """Check credentials, endpoints, reachability and permissions; never starts a scan.

    Shows which credential source crgate picks (never the secret), obtains a token, resolves the
    endpoints, connects to each, and with --repository lists its images and reads its manifest from the
    registry. Exit codes as for check.
    """
    from crgate.connect import on_emulator, with_region
    from crgate.doctor import run_doctor, summary
    from crgate.images import parse_image_ref
    from crgate.logs import configure_logging
    from crgate.textsafe import LINE_LIMIT, safe
    from crgate.timing import Deadline

    masker = _masker()
    configure_logging(verbose, sys.stderr, masker)
    ref = parse_image_ref(repository) if repository is not None else None
    connect = with_region(connect, [ref] if ref else [], os.environ)
    registry_url = _registry_url(registry_url)
    with contextlib.ExitStack() as stack:
        if use_emulator:
            connect, registry_url = on_emulator(stack, connect, None, registry_url)
        steps = run_doctor(connect, os.environ, Deadline(timeout), ref, observer=masker, registry_url=registry_url)
    # Printed only now: on GitHub Actions every token obtained was masked before this output.
    lines, code = summary(steps)
    for line in lines:
        click.echo(safe(line, LINE_LIMIT))
    return code


@cli.command()
@click.argument("report_file", metavar="RESULT.json")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy to judge with (same lookup as check).")
@_POLICY_PIN_OPTION
@_options(_LIMIT_OPTIONS)
@_options(_VEX_OPTIONS)
@_options(_REPORT_OPTIONS)
@_TODAY_OPTION
def evaluate(
    report_file: str,
    policy_path: str | None,
    policy_sha256: str | None,
    limits: tuple[str, ...],
    only_fixed: bool,
    vex_files: tuple[str, ...],
    kev_catalog: str | None,
    fmt: str,
    outputs: tuple[tuple[str, str], ...],
    today: dt.datetime | None,
) -> ExitCode:
    """Re-judge a saved JSON report under a policy, offline (no API call, no scan).

    The way to try a policy change before committing it: save a run with
    `crgate check --output json=result.json ...`, then `crgate evaluate result.json --policy new.yaml`.
    """
    import datetime as dt

    from crgate import outputs as files
    from crgate.gate import evaluate_saved
    from crgate.overrides import apply_inputs, apply_overrides
    from crgate.policy import discover_policy_pinned
    from crgate.provenance import override_loosenings, today_loosening
    from crgate.saved_report import load_saved_report

    base_policy = discover_policy_pinned(policy_path, policy_sha256, os.environ)
    overridden = apply_overrides(base_policy, limits, only_fixed=only_fixed)
    policy = apply_inputs(overridden, vex_files, kev_catalog)
    saved = load_saved_report(report_file)
    day = today.date() if today else None
    report = evaluate_saved(
        saved,
        policy,
        today=day or dt.date.today(),
        explicit_policy=policy_path is not None,
        loosenings=[*override_loosenings(base_policy, overridden), *today_loosening(day, dt.date.today())],
    )
    _announce(report.provenance.loosenings if report.provenance else ())
    plan = files.plan_reports(fmt, _given("fmt"), outputs)
    with files.pending(plan.destinations()) as opened:
        files.write_reports(report, plan, opened, sys.stdout, sys.stderr, location=DEFAULT_SARIF_LOCATION)
    return report.exit_code


@cli.group("policy")
def policy_group() -> None:
    """Work with policy files."""


@policy_group.command("validate")
@click.argument("file", metavar="FILE")
def policy_validate(file: str) -> ExitCode:
    """Check a policy file strictly; exit 0 when valid, 2 with file, line and key when not."""
    import datetime as dt

    from crgate.findings import far_expiry_warnings
    from crgate.image_rules import overlap_warnings
    from crgate.policy import describe_policy, load_policy
    from crgate.textsafe import LINE_LIMIT, safe

    policy = load_policy(file)
    summary = f"{file}: valid crgate policy, version {policy.version}, sha256 {policy.sha256}"
    summary += f": {describe_policy(policy)}"
    click.echo(safe(summary, LINE_LIMIT))
    for warning in far_expiry_warnings(policy, dt.date.today()) + overlap_warnings(policy.images, file):
        _note(f"warning: {warning}")
    return ExitCode.PASS


@policy_group.command("explain")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy file (default: ./.crgate.yaml, ./crgate.yaml, "
              "else the built-in default).")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
def policy_explain(policy_path: str | None, fmt: str, refs: tuple[str, ...]) -> ExitCode:
    """Print, per image reference, the images: rule that judges it and the effective limits (no API call)."""
    from crgate.images import parse_image_ref
    from crgate.policy import discover_policy
    from crgate.policy_explain import explain, render_json, render_text

    policy = discover_policy(policy_path)
    for ref in refs:
        parse_image_ref(ref)  # an image id or another registry's image: exit 2, as for check
    entries = explain(policy, refs)
    click.echo(render_json(policy, entries) if fmt == "json" else render_text(policy, entries))
    return ExitCode.PASS


# -- the one exit path ------------------------------------------------------------------------------


class _Status:
    code: int = ExitCode.PASS


@contextlib.contextmanager
def _exit_status() -> Iterator[_Status]:
    """Map whatever ends a command to its exit code; click's own mapping would make Ctrl-C exit 1."""
    status = _Status()
    try:
        yield status
    except click.exceptions.Exit as done:  # --help, --version
        status.code = done.exit_code
    except click.ClickException as error:
        _show_usage_error(error)
        status.code = ExitCode.USAGE
    except (click.Abort, KeyboardInterrupt):
        _note("interrupted")
        status.code = ExitCode.INTERRUPTED
    except (BrokenPipeError, _ReaderGone):
        # The reader went away (e.g. `| head`): the report was not delivered, so never exit 0 or 1; point
        # stdout at /dev/null so that flushing it at exit cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        with contextlib.suppress(OSError):  # stderr may be the closed one
            _note("error: the output was closed before all of it was written (exit 3)")
        status.code = ExitCode.SCAN_ERROR
    except Exception as error:
        from crgate.errors import CrgateError

        if isinstance(error, CrgateError):
            _note(f"error: {error}")
            status.code = error.exit_code
        else:  # a bug must still fail closed, without a traceback for the user
            _note(f"internal error ({type(error).__name__}): {error}; please report it")
            status.code = ExitCode.SCAN_ERROR


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: click parses, the command returns its exit code, and crgate exits once."""
    with _exit_status() as status:
        args = list(argv) if argv is not None else None
        width = help_width(click.formatting.FORCED_WIDTH)
        code = cli.main(args=args, prog_name="crgate", standalone_mode=False, terminal_width=width)
        status.code = code if isinstance(code, int) else ExitCode.PASS
    sys.exit(int(status.code))


if __name__ == "__main__":
    main()
