"""The command line: the only place that picks concrete parts and turns errors into exit codes.

Start-up stays light: only click and crgate's tiny modules are imported at module level, so
``crgate --help`` and ``crgate --version`` never load gRPC or the Yandex stubs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from crgate import __version__
from crgate.exitcodes import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    from crgate.model import Policy, RunReport
    from crgate.runner import Run, Target

FORMAT_CHOICES = ("text", "json", "sarif", "gitlab", "junit", "markdown")
# Formats that list individual findings: asking for one makes crgate fetch ListVulnerabilities.
FINDINGS_FORMATS = frozenset({"json", "sarif", "gitlab", "junit", "markdown"})
DEFAULT_TIMEOUT = 900.0
DEFAULT_CONCURRENCY = 10  # Yandex's quota: 10 concurrent scans per cloud


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
@click.option(
    "--endpoint",
    metavar="HOST:PORT",
    help="One address for every API service (an emulator or a proxy). "
    "Default: Yandex Cloud production endpoints over TLS.",
)
@click.option("--insecure", is_flag=True, help="Plaintext gRPC; allowed only to loopback addresses.")
@click.option(
    "--iam-token",
    envvar="YC_IAM_TOKEN",
    metavar="TOKEN",
    help="IAM token for Yandex Cloud (env YC_IAM_TOKEN). Never printed.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
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
    default="Dockerfile",
    show_default=True,
    metavar="PATH",
    help="Repository path that SARIF results point at (line 1).",
)
@click.option("-v", "--verbose", count=True, help="Log API calls to stderr (-vv for debug). Secrets are never logged.")
def check(
    image_refs: tuple[str, ...],
    image_ids: tuple[str, ...],
    policy_path: str | None,
    endpoint: str | None,
    insecure: bool,
    iam_token: str | None,
    timeout: float,
    concurrency: int,
    fmt: str,
    outputs: tuple[str, ...],
    progress: str,
    use_emulator: bool,
    emulator_data: str | None,
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

    _configure_logging(verbose)
    parsed_outputs = _parse_outputs(outputs)
    if not image_refs and not image_ids and not manifests:
        raise click.UsageError("no images given: pass IMAGE_REF arguments, --image-id ID or --from-manifest FILE")
    if not sarif_location.strip() or any(ch in sarif_location for ch in "\r\n"):
        raise click.BadParameter("give a repository-relative file path", param_hint="--sarif-location")
    if use_emulator and endpoint:
        raise click.UsageError("--emulator and --endpoint exclude each other: --emulator picks its own address")
    if emulator_data and not use_emulator:
        raise click.UsageError("--emulator-data needs --emulator")
    try:
        targets = [Target(label=raw, ref=parse_image_ref(raw)) for raw in image_refs]
        for image_id in image_ids:
            if not image_id.strip() or any(ch.isspace() for ch in image_id):
                raise ConfigError(f"invalid --image-id '{image_id}': an image id has no whitespace")
            targets.append(Target(label=image_id, image_id=image_id))
        policy = discover_policy(policy_path)
        notes: list[str] = []
        outside_fails = False
        if manifests:
            added, notes, outside_fails = _manifest_targets(manifests, policy, {t.label for t in targets})
            targets.extend(added)
    except CrgateError as error:
        _fail(error)

    emulator = None
    try:
        fetch_findings = bool(FINDINGS_FORMATS & ({fmt} | {out_fmt for out_fmt, _ in parsed_outputs}))
        if not targets:  # every image came from manifests and lies outside Yandex Container Registry
            report = _empty_report(policy)
        else:
            if use_emulator:
                emulator = _start_emulator(emulator_data)
                endpoint, insecure = emulator.address, True
            if not insecure and not iam_token:
                raise ConfigError(
                    "no credentials: pass --iam-token or set YC_IAM_TOKEN (yc iam create-token), "
                    "or use --emulator / --endpoint HOST:PORT --insecure for a local emulator"
                )
            report = _run_check(
                targets, policy, endpoint, insecure, iam_token, timeout, concurrency, progress, fetch_findings
            )
    except CrgateError as error:
        _fail(error)
    finally:
        if emulator is not None:
            emulator.stop()

    if manifests:
        report = _with_unscannable(report, notes, outside_fails)
    _emit(report, fmt, parsed_outputs, sarif_location)
    sys.exit(report.exit_code)


def _manifest_targets(paths: tuple[str, ...], policy: Policy, given: set[str]) -> tuple[list[Target], list[str], bool]:
    """The images of manifests ``paths`` not already ``given``; the warnings about images crgate cannot
    scan, and whether those make the run fail (policy ``unscannable: fail``)."""
    from crgate.errors import ConfigError
    from crgate.manifests import read_manifests, unique, unscannable_warnings
    from crgate.runner import Target

    uses = unique(read_manifests(paths, sys.stdin.buffer))
    if not uses:
        raise ConfigError(f"no container images found in {', '.join(paths)}: nothing would be gated")
    added = [Target(label=use.image, ref=use.ref) for use in uses if use.ref is not None and use.image not in given]
    outside = [use for use in uses if use.ref is None]
    notes = unscannable_warnings(outside, policy.unscannable)
    click.echo(
        f"crgate: manifests name {len(uses)} image(s); {len(outside)} outside Yandex Container Registry "
        f"(policy unscannable: {policy.unscannable})",
        err=True,
    )
    for use in outside:
        click.echo(f"  not scanned: {use.image} ({use.location})", err=True)
    return added, notes, bool(outside) and policy.unscannable == "fail"


def _empty_report(policy: Policy) -> RunReport:
    import datetime as dt

    from crgate.model import RunReport

    now = dt.datetime.now(dt.timezone.utc)
    return RunReport(policy=policy, images=(), exit_code=0, tool_version=__version__, started_at=now, finished_at=now)


def _with_unscannable(report: RunReport, notes: list[str], fail: bool) -> RunReport:
    """The report with the unscannable images' warnings; exit 1 when the policy says they fail."""
    import dataclasses

    from crgate.exitcodes import worst

    code = ExitCode(report.exit_code)
    if fail:
        code = worst([code, ExitCode.VIOLATION])
        click.echo("crgate: FAIL: images outside Yandex Container Registry (policy unscannable: fail)", err=True)
    return dataclasses.replace(report, warnings=(*report.warnings, *notes), exit_code=int(code))


def _start_emulator(data: str | None) -> Any:
    from crgate.emulator.scenario import demo_scenario, load_scenario
    from crgate.emulator.server import Emulator

    scenario = load_scenario(data) if data else demo_scenario()
    return Emulator(scenario, host="127.0.0.1", port=0).start()


def _run_check(
    targets: list[Any],
    policy: Policy,
    endpoint: str | None,
    insecure: bool,
    iam_token: str | None,
    timeout: float,
    concurrency: int,
    progress_mode: str,
    fetch_findings: bool,
) -> RunReport:
    import datetime as dt
    import threading

    from crgate.exitcodes import worst
    from crgate.model import RunReport
    from crgate.runner import Run
    from crgate.scanner.client import ScannerClient
    from crgate.scanner.policies import Deadline
    from crgate.scanner.transport import Connection, ConnectionSettings

    started_at = dt.datetime.now(dt.timezone.utc)
    deadline = Deadline(timeout)
    cancel = threading.Event()
    connection = Connection(ConnectionSettings(endpoint=endpoint, insecure=insecure, iam_token=iam_token))
    sink = _progress_sink(progress_mode)
    click.echo(f"crgate {__version__}: policy {policy.source}; {len(targets)} image(s)", err=True)
    run = Run(
        targets,
        ScannerClient(connection, cancel=cancel),
        policy,
        deadline,
        concurrency=concurrency,
        progress=sink,
        cancel=cancel,
        fetch_findings=fetch_findings,
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
    code = ExitCode.INTERRUPTED if interrupted else worst([ExitCode(o.exit_code) for o in outcomes])
    return RunReport(
        policy=policy,
        images=tuple(outcomes),
        exit_code=int(code),
        tool_version=__version__,
        started_at=started_at,
        finished_at=dt.datetime.now(dt.timezone.utc),
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


def _emit(report: RunReport, fmt: str, outputs: list[tuple[str, Path]], sarif_location: str) -> None:
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


def _configure_logging(verbose: int) -> None:
    import logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="crgate: %(levelname)s: %(message)s")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0 = pick a free one).")
@click.option(
    "--data",
    metavar="FILE",
    help="Scenario YAML (registries, images, findings, scan behaviour). Default: the demo data.",
)
def emulator(host: str, port: int, data: str | None) -> None:
    """Run a local Yandex Container Registry scanner emulator (gRPC) until Ctrl-C.

    Prints the address it listens on as the first line of stdout. Use it with
    `crgate check --endpoint ADDRESS --insecure ...`.
    """
    import threading

    from crgate.emulator.scenario import demo_scenario, load_scenario
    from crgate.emulator.server import Emulator
    from crgate.errors import CrgateError

    try:
        scenario = load_scenario(data) if data else demo_scenario()
        server = Emulator(scenario, host=host, port=port).start()
    except CrgateError as error:
        _fail(error)
    click.echo(server.address)
    click.echo(f"crgate emulator listening on {server.address} (plaintext gRPC); Ctrl-C stops it", err=True)
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
