"""The command line: the only place that picks concrete parts and turns errors into exit codes.

Start-up stays light: only click and crgate's tiny modules are imported at module level, so
``crgate --help`` and ``crgate --version`` never load gRPC or the Yandex stubs.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from crgate import __version__
from crgate.exitcodes import ExitCode
from crgate.report import FORMATS

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from crgate.connect import ConnectOptions
    from crgate.masking import SecretMasker
    from crgate.model import Policy, RunReport
    from crgate.runner import Run, Target

DEFAULT_SARIF_LOCATION = "Dockerfile"
FORMAT_CHOICES = FORMATS
DEFAULT_TIMEOUT = 900.0
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: longer is a typo, and infinity would never end
DEFAULT_CONCURRENCY = 10  # Yandex's quota: 10 concurrent scans per cloud


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


def _fail(error: BaseException) -> NoReturn:
    """Print a crgate error the one way errors are printed, and exit with its code."""
    from crgate.errors import exit_code_for

    click.echo(f"crgate: error: {error}", err=True)
    sys.exit(int(exit_code_for(error)))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def _parse_outputs(values: Sequence[str]) -> list[tuple[str, Path]]:
    from pathlib import Path

    outputs = []
    for value in values:
        fmt, sep, path = value.partition("=")
        if not sep or not path:
            raise click.BadParameter(f"'{value}' is not FORMAT=PATH (e.g. json=report.json)", param_hint="--output")
        if fmt not in FORMAT_CHOICES:
            raise click.BadParameter(
                f"unknown format '{fmt}' in '{value}'; choose one of {', '.join(FORMAT_CHOICES)}",
                param_hint="--output",
            )
        target = Path(path)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise click.BadParameter(f"directory '{parent}' for '{value}' does not exist", param_hint="--output")
        if target.is_dir():
            raise click.BadParameter(f"'{path}' is a directory; give a file path", param_hint="--output")
        outputs.append((fmt, target))
    return outputs


_CONNECTION_OPTIONS = (
    click.option(
        "--endpoint",
        metavar="HOST:PORT",
        help="One address for every API service (an emulator or a proxy). "
        "Default: Yandex Cloud production endpoints over TLS.",
    ),
    click.option(
        "--api-endpoint",
        metavar="HOST:PORT",
        help="API root whose endpoint discovery names each service's address, e.g. api.yandexcloud.kz:443 "
        "(env YC_ENDPOINT).",
    ),
    click.option("--insecure", is_flag=True, help="Plaintext gRPC; allowed only to loopback addresses."),
    click.option(
        "--ca-file",
        metavar="PEM",
        help="Trust these CA certificates instead of the system roots (gRPC and the token endpoint).",
    ),
    click.option("--iam-token", metavar="TOKEN", help="IAM token (env YC_IAM_TOKEN). Never printed."),
    click.option(
        "--sa-key",
        metavar="FILE|JSON",
        help="Service account authorized key, a path or inline JSON (env YC_SERVICE_ACCOUNT_KEY_FILE).",
    ),
    click.option(
        "--federation-sa-id",
        metavar="ID",
        help="Keyless CI: exchange the job's OIDC token for this service account's token (env YC_SA_ID).",
    ),
    click.option(
        "--oidc-token-env",
        metavar="NAME",
        help="Variable holding the job's OIDC token (GitLab id_tokens). Default: YC_OIDC_TOKEN, else GitHub "
        "Actions' token.",
    ),
    click.option("--oidc-audience", metavar="AUD", help="Audience of the GitHub Actions OIDC token to request."),
    click.option(
        "--token-endpoint",
        metavar="URL",
        help="Federation token exchange URL (env YC_TOKEN_ENDPOINT). Default: https://auth.yandex.cloud/oauth/token.",
    ),
    click.option(
        "--metadata",
        is_flag=True,
        help="Use this Yandex Cloud VM's service account (metadata service; env YC_METADATA_ADDR: its address).",
    ),
)
_CONNECTION_KEYS = (
    "endpoint",
    "api_endpoint",
    "insecure",
    "ca_file",
    "iam_token",
    "sa_key",
    "federation_sa_id",
    "oidc_token_env",
    "oidc_audience",
    "token_endpoint",
    "metadata",
)


def _connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the endpoint, TLS and credential options; the command receives them as ``connect``."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        from crgate.connect import ConnectOptions
        from crgate.scanner.credentials.choose import CredentialOptions

        values = {key: kwargs.pop(key) for key in _CONNECTION_KEYS}
        credentials = CredentialOptions(
            iam_token=values["iam_token"],
            sa_key=values["sa_key"],
            federation_sa_id=values["federation_sa_id"],
            oidc_token_env=values["oidc_token_env"],
            oidc_audience=values["oidc_audience"],
            token_endpoint=values["token_endpoint"],
            metadata=values["metadata"],
        )
        kwargs["connect"] = ConnectOptions(
            credentials=credentials,
            endpoint=values["endpoint"],
            api_endpoint=values["api_endpoint"],
            insecure=values["insecure"],
            ca_file=values["ca_file"],
        )
        return command(**kwargs)

    for option in reversed(_CONNECTION_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@cli.command()
@click.argument("image_refs", metavar="[IMAGE_REF]...", nargs=-1)
@click.option(
    "--image-id",
    "image_ids",
    multiple=True,
    metavar="ID",
    help="Scan an image by its id (skips resolution). Repeatable.",
)
@click.option(
    "--policy",
    "policy_path",
    metavar="FILE",
    help="Policy file. Default: ./.crgate.yaml, ./crgate.yaml, else built-in (critical: 0, high: 0).",
)
@_connection_options
@click.option(
    "--timeout",
    type=_Seconds(),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Overall deadline for the whole run.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 100),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Images scanned at once (Yandex allows 10 concurrent scans per cloud).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="text",
    show_default=True,
    help="Report format on stdout.",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    metavar="FORMAT=PATH",
    help="Also write a report to PATH. Repeatable (e.g. --output json=report.json).",
)
@click.option(
    "--progress",
    type=click.Choice(("auto", "live", "lines", "none")),
    default="auto",
    show_default=True,
    help="Progress on stderr: live table on a terminal, lines in logs.",
)
@click.option(
    "--emulator",
    "use_emulator",
    is_flag=True,
    help="Start the built-in emulator with its demo data and check against it (no account needed).",
)
@click.option("--emulator-data", metavar="FILE", help="Scenario file for --emulator instead of the demo data.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Judge ignore-rule expiry as of this date (preview what fails after a rule expires). Default: today.",
)
@click.option(
    "--from-manifest",
    "manifests",
    multiple=True,
    metavar="FILE|-",
    help="Also gate every image in Kubernetes manifests (multi-document YAML, helm template output) or a "
    "docker-compose file; - reads stdin. Repeatable. Images outside Yandex Container Registry follow the "
    "policy's 'unscannable' (warn, fail or skip).",
)
@click.option(
    "--sarif-location",
    default=DEFAULT_SARIF_LOCATION,
    show_default=True,
    metavar="PATH",
    help="Repository path that SARIF results point at (line 1).",
)
@click.option("-v", "--verbose", count=True, help="Log API calls to stderr (-vv for debug). Secrets are never logged.")
def check(
    image_refs: tuple[str, ...],
    image_ids: tuple[str, ...],
    policy_path: str | None,
    connect: ConnectOptions,
    timeout: float,
    concurrency: int,
    fmt: str,
    outputs: tuple[str, ...],
    progress: str,
    use_emulator: bool,
    emulator_data: str | None,
    today: dt.datetime | None,
    manifests: tuple[str, ...],
    sarif_location: str,
    verbose: int,
) -> None:
    """Scan images and judge them against the policy; the exit code is the verdict.

    IMAGE_REF is cr.yandex/<registry-id>/<repo>:<tag> or cr.yandex/<registry-id>/<repo>@sha256:<digest>
    (also cr.cloud.yandex.net, container-registry.cloud.yandex.net, cr.yandexcloud.kz).
    Several images are scanned concurrently; the exit code is the worst of them.
    """
    from crgate.errors import ConfigError, CrgateError
    from crgate.images import parse_image_ref
    from crgate.policy import discover_policy
    from crgate.runner import Target

    masker = _masker()
    _configure_logging(verbose, masker)
    parsed_outputs = _parse_outputs(outputs)
    if not image_refs and not image_ids and not manifests:
        raise click.UsageError("no images given: pass IMAGE_REF arguments, --image-id ID or --from-manifest FILE")
    if not sarif_location.strip() or any(ch in sarif_location for ch in "\r\n"):
        raise click.BadParameter("give a repository-relative file path", param_hint="--sarif-location")
    if use_emulator and (connect.endpoint or connect.api_endpoint):
        raise click.UsageError("--emulator excludes --endpoint and --api-endpoint: --emulator picks its own address")
    if emulator_data and not use_emulator:
        raise click.UsageError("--emulator-data needs --emulator")
    try:
        targets = [Target(label=raw, ref=parse_image_ref(raw)) for raw in image_refs]
        for image_id in image_ids:
            if not image_id.strip() or any(ch.isspace() for ch in image_id):
                raise ConfigError(f"invalid --image-id '{image_id}': an image id has no whitespace")
            targets.append(Target(label=image_id, image_id=image_id))
        policy = discover_policy(policy_path)
        unscannable: list[str] = []
        if manifests:
            added, unscannable = _manifest_targets(manifests, policy, {t.label for t in targets})
            targets.extend(added)
    except CrgateError as error:
        _fail(error)

    emulator = None
    try:
        if use_emulator and targets:
            import dataclasses

            emulator = _start_emulator(emulator_data)
            connect = dataclasses.replace(connect, endpoint=emulator.address, insecure=True)
        report = _run_check(targets, policy, connect, masker, timeout, concurrency, progress, today, unscannable)
    except CrgateError as error:
        _fail(error)
    finally:
        if emulator is not None:
            emulator.stop()

    _emit(report, fmt, parsed_outputs, sarif_location)
    sys.exit(report.exit_code)


def _manifest_targets(paths: tuple[str, ...], policy: Policy, given: set[str]) -> tuple[list[Target], list[str]]:
    """The images of manifests ``paths`` not already ``given``, and those crgate cannot scan (outside
    Yandex Container Registry) as ``image (location)``; the policy's ``unscannable`` decides their fate."""
    from crgate.errors import ConfigError
    from crgate.manifests import read_manifests, unique
    from crgate.runner import Target

    uses = unique(read_manifests(paths, sys.stdin.buffer))
    if not uses:
        raise ConfigError(f"no container images found in {', '.join(paths)}: nothing would be gated")
    added = [Target(label=use.image, ref=use.ref) for use in uses if use.ref is not None and use.image not in given]
    outside = [use for use in uses if use.ref is None]
    click.echo(
        f"crgate: manifests name {len(uses)} image(s); {len(outside)} outside Yandex Container Registry "
        f"(policy unscannable: {policy.unscannable})",
        err=True,
    )
    for use in outside:
        click.echo(f"  not scanned: {use.image} ({use.location})", err=True)
    return added, [f"{use.image} ({use.location})" for use in outside]


def _start_emulator(data: str | None) -> Any:
    from crgate.emulator.scenario import demo_scenario, load_scenario
    from crgate.emulator.server import Emulator

    scenario = load_scenario(data) if data else demo_scenario()
    return Emulator(scenario, host="127.0.0.1", port=0).start()


def _run_check(
    targets: list[Any],
    policy: Policy,
    connect: ConnectOptions,
    masker: SecretMasker,
    timeout: float,
    concurrency: int,
    progress_mode: str,
    today: dt.datetime | None,
    unscannable: list[str],
) -> RunReport:
    import datetime as dt
    import threading

    from crgate.connect import open_session
    from crgate.runner import Run
    from crgate.scanner.client import ScannerClient
    from crgate.timing import Deadline
    from crgate.verdict import summarize

    started_at = dt.datetime.now(dt.timezone.utc)
    if not targets:  # every image came from manifests and lies outside Yandex Container Registry
        day = today.date() if today else dt.date.today()
        return summarize(policy, [], today=day, started_at=started_at, finished_at=started_at, unscannable=unscannable)
    deadline = Deadline(timeout)
    cancel = threading.Event()
    # Credentials first: a misconfiguration stops the run before any scan RPC, and on GitHub Actions
    # the token is masked before anything else is printed.
    session = open_session(connect, os.environ, deadline, observer=masker)
    connection = session.connection
    sink = _progress_sink(progress_mode)
    click.echo(f"crgate {__version__}: policy {policy.source}; {len(targets)} image(s)", err=True)
    if session.token_source is not None:
        click.echo(f"crgate: credentials: {session.token_source.description}", err=True)
    for note in session.notes:
        click.echo(f"crgate: warning: {note}", err=True)
    run = Run(
        targets,
        ScannerClient(connection, cancel=cancel),
        policy,
        deadline,
        concurrency=concurrency,
        progress=sink,
        cancel=cancel,
        # Every report explains which findings made an image fail, and the listed findings are checked
        # against the scan's own statistics: one more fail-closed check for a few unbilled calls.
        fetch_findings=True,
        today=today.date() if today else None,
    )
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    interrupted = False
    try:
        run.start()
        outcomes = run.wait()
    except KeyboardInterrupt:
        interrupted = True
        cancel.set()
        outcomes = run.outcomes()
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        sink.close()
        connection.close()
    if interrupted:
        _say_left_running(run)
    return summarize(
        policy,
        outcomes,
        today=run.today,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc),
        stale_ignores=() if interrupted else run.stale_ignore_rules(),
        baseline=run.baseline_info,
        interrupted=interrupted,
        unscannable=unscannable,
    )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say_left_running(run: Run) -> None:
    left = run.left_running()
    if not left:
        click.echo("crgate: interrupted; no scan was left running", err=True)
        return
    click.echo("crgate: interrupted; these scans were left running in Yandex Cloud:", err=True)
    for label, tracker in left:
        click.echo(
            f"  {label}: image {tracker.image_id}, scan result {tracker.scan_result_id or '(unknown)'}, "
            f"operation {tracker.operation_id}",
            err=True,
        )


def _progress_sink(mode: str) -> Any:
    from crgate.progress import LineProgress, LiveProgress, NullProgress

    if mode == "auto":
        mode = "live" if sys.stderr.isatty() else "lines"
    if mode == "live":
        return LiveProgress(sys.stderr)
    if mode == "lines":
        return LineProgress(sys.stderr)
    return NullProgress()


def _emit(
    report: RunReport, fmt: str, outputs: list[tuple[str, Path]], sarif_location: str = DEFAULT_SARIF_LOCATION
) -> None:
    from crgate.report import render

    click.echo(render(fmt, report, sarif_location=sarif_location), nl=False)
    if fmt != "text":  # humans still read the table when a machine format takes stdout
        click.echo(render("text", report), nl=False, err=True)
    for out_fmt, path in outputs:
        try:
            path.write_text(render(out_fmt, report, sarif_location=sarif_location), encoding="utf-8")
        except OSError as error:
            click.echo(f"crgate: error: could not write {out_fmt} report to {path}: {error.strerror}", err=True)
            sys.exit(int(ExitCode.USAGE))


def _masker() -> SecretMasker:
    from crgate.masking import SecretMasker

    return SecretMasker(os.environ, lambda line: click.echo(line, err=True))


def _configure_logging(verbose: int, masker: SecretMasker | None = None) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="crgate: %(levelname)s: %(message)s")
    if masker is not None:
        for handler in logging.getLogger().handlers:
            handler.addFilter(masker.log_filter())


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0 = pick a free one).")
@click.option(
    "--data",
    metavar="FILE",
    help="Scenario YAML (registries, images, findings, scan behaviour). Default: the demo data.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Serve TLS with a certificate of a CA generated at start; its path is the second line of stdout.",
)
def emulator(host: str, port: int, data: str | None, tls: bool) -> None:
    """Run a local Yandex Container Registry scanner emulator (gRPC) until Ctrl-C.

    Prints the address it listens on as the first line of stdout. Use it with
    `crgate check --endpoint ADDRESS --insecure ...`, or with --tls:
    `crgate check --endpoint ADDRESS --ca-file CA ...`.
    """
    import threading

    from crgate.emulator.scenario import demo_scenario, load_scenario
    from crgate.emulator.server import Emulator
    from crgate.errors import CrgateError

    try:
        scenario = load_scenario(data) if data else demo_scenario()
        server = Emulator(scenario, host=host, port=port, tls=tls).start()
    except CrgateError as error:
        _fail(error)
    click.echo(server.address)
    if tls:
        click.echo(server.ca_file)
    mode = f"TLS, CA certificate {server.ca_file}" if tls else "plaintext gRPC"
    click.echo(f"crgate emulator listening on {server.address} ({mode}); Ctrl-C stops it", err=True)
    if server.http is not None:
        click.echo(
            f"  token exchange {server.token_url}, metadata service {server.metadata_address} "
            f"(YC_METADATA_ADDR), GitHub OIDC {server.github_request_url}",
            err=True,
        )
    stop = threading.Event()
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        server.stop()


@cli.command()
@click.option(
    "--repository",
    metavar="REF",
    help="Check that the identity may list images of cr.yandex/<registry-id>/<repository> (an image ref works).",
)
@_connection_options
@click.option(
    "--timeout",
    type=_Seconds(),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Overall deadline for all checks.",
)
@click.option("-v", "--verbose", count=True, help="Log API calls to stderr (-vv for debug). Secrets are never logged.")
def doctor(repository: str | None, connect: ConnectOptions, timeout: float, verbose: int) -> None:
    """Check credentials, endpoints, reachability and permissions; never starts a scan.

    Shows which credential source crgate picks (never the secret), obtains a token, resolves the
    endpoints, connects to each, and with --repository lists its images. Exit codes as for check.
    """
    from crgate.doctor import run_doctor
    from crgate.errors import CrgateError, exit_code_for
    from crgate.images import parse_image_ref
    from crgate.timing import Deadline

    masker = _masker()
    _configure_logging(verbose, masker)
    try:
        ref = parse_image_ref(repository) if repository is not None else None
        steps = run_doctor(connect, os.environ, Deadline(timeout), ref, observer=masker)
    except CrgateError as error:
        _fail(error)
    # Printed only now: on GitHub Actions every token obtained was masked before this output.
    for step in steps:
        click.echo(f"{step.stage:<12} {step.status:<5} {step.detail}")
    failed = next((step for step in steps if step.error is not None), None)
    if failed is None or failed.error is None:
        click.echo("doctor: all checks passed (exit 0)")
        sys.exit(int(ExitCode.PASS))
    code = exit_code_for(failed.error)
    click.echo(f"doctor: {failed.stage} check failed (exit {int(code)})")
    sys.exit(int(code))


@cli.command()
@click.argument("report_file", metavar="RESULT.json")
@click.option("--policy", "policy_path", metavar="FILE", help="Policy to judge with (same lookup as check).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="text", show_default=True)
@click.option("--output", "outputs", multiple=True, metavar="FORMAT=PATH", help="Also write a report. Repeatable.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Judge expiry as of.")
def evaluate(
    report_file: str, policy_path: str | None, fmt: str, outputs: tuple[str, ...], today: dt.datetime | None
) -> None:
    """Re-judge a saved JSON report under a policy, offline (no API call, no scan).

    The way to try a policy change before committing it: save a run with
    `crgate check --output json=result.json ...`, then `crgate evaluate result.json --policy new.yaml`.
    """
    import datetime as dt

    from crgate.errors import CrgateError
    from crgate.policy import discover_policy
    from crgate.saved_report import load_saved_report, rejudge
    from crgate.verdict import summarize

    parsed_outputs = _parse_outputs(outputs)
    started_at = dt.datetime.now(dt.timezone.utc)
    day = today.date() if today else dt.date.today()
    try:
        policy = discover_policy(policy_path)
        saved = load_saved_report(report_file)
        outcomes, stale = rejudge(policy, saved, today=day)
    except CrgateError as error:
        _fail(error)
    report = summarize(
        policy,
        outcomes,
        today=day,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc),
        stale_ignores=stale,
        baseline=saved.baseline_info if policy.baseline else None,
    )
    _emit(report, fmt, parsed_outputs)
    sys.exit(report.exit_code)


@cli.group("policy")
def policy_group() -> None:
    """Work with policy files."""


@policy_group.command("validate")
@click.argument("file", metavar="FILE")
def policy_validate(file: str) -> None:
    """Check a policy file strictly; exit 0 when valid, 2 with file, line and key when not."""
    from crgate.errors import CrgateError
    from crgate.policy import describe_policy, load_policy

    try:
        policy = load_policy(file)
    except CrgateError as error:
        _fail(error)
    click.echo(f"{file}: valid crgate policy, version {policy.version}: {describe_policy(policy)}")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point: click parses, crgate decides every exit code (click's own would map Ctrl-C to 1)."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="crgate", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(int(ExitCode.USAGE))
    except (click.Abort, KeyboardInterrupt):
        click.echo("crgate: interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        os._exit(int(ExitCode.SCAN_ERROR))
    except Exception as error:  # a bug must still fail closed, without a traceback for the user
        click.echo(f"crgate: internal error ({type(error).__name__}): {error}; please report it", err=True)
        sys.exit(int(ExitCode.SCAN_ERROR))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
