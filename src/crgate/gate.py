"""crgate's core entry points, usable without the CLI: gate images, or re-judge a saved report.

``run`` starts a run, waits for it, turns Ctrl-C (or a set ``cancel``) into an orderly stop, and
returns the finished ``RunReport`` with the scans that may still be running. The CLI only parses
options, opens the connection, installs signal handlers and prints (pip-audit's ``Auditor.audit``
and pypa/build's ``ProjectBuilder`` are the model).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crgate import __version__
from crgate.defaults import DEFAULT_CONCURRENCY
from crgate.errors import ConfigError
from crgate.interface import ProgressSink, Registry, Scanner
from crgate.model import Policy, RunReport, Target
from crgate.progress import NullProgress
from crgate.provenance import FileDigest, Loosening, evaluation_provenance
from crgate.registry.index import Platform
from crgate.runner import LeftRunning, Run
from crgate.saved_report import SavedReport, rejudge
from crgate.timing import Deadline
from crgate.verdict import summarize


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class RunOptions:
    """How a run gates, besides what it gates; all settled before any network call."""

    platforms: tuple[Platform, ...] = ()
    """Restricts a multi-platform index to these platforms (``--platform``)."""
    concurrency: int = DEFAULT_CONCURRENCY
    today: dt.date | None = None
    """The day ignore-rule expiry is judged on (``--today``); None: today."""
    unscannable: tuple[str, ...] = ()
    """Images of the manifests outside the registry (``image (where)``); the policy decides their fate."""
    report_only: bool = False


@dataclass(frozen=True)
class GateResult:
    """A finished run: the report every format renders, and what an interruption left behind."""

    report: RunReport
    interrupted: bool = False
    left_running: tuple[LeftRunning, ...] = ()
    """Scans that may still be running in Yandex Cloud (only when interrupted)."""


def run(
    targets: Sequence[Target],
    scanner: Scanner | None,
    policy: Policy,
    deadline: Deadline,
    *,
    registry: Registry | None = None,
    options: RunOptions = RunOptions(),  # noqa: B008 - frozen, so one shared default is safe
    progress: ProgressSink | None = None,
    cancel: threading.Event | None = None,
    now: Callable[[], dt.datetime] = _utc_now,
) -> GateResult:
    """Gate ``targets`` with ``scanner`` under ``policy``, all within ``deadline``.

    ``scanner`` may be None only when there is nothing to scan (every image of the manifests lies
    outside Yandex Container Registry). ``registry`` reads the manifest behind every reference (needed
    as soon as there is one). Setting ``cancel`` (or Ctrl-C in the calling thread) stops the run:
    unfinished images become ``interrupted`` and the run exits 130. ``options.report_only`` marks the
    report so (its ``process_exit_code`` lets violations alone pass the step).
    """
    day = options.today or now().date()
    unscannable, report_only = options.unscannable, options.report_only
    started_at = now()
    if not targets:
        report = summarize(
            policy,
            [],
            today=day,
            started_at=started_at,
            finished_at=now(),
            unscannable=unscannable,
            report_only=report_only,
        )
        return GateResult(report)
    if scanner is None:
        raise ValueError("a scanner is needed to gate images")
    cancel = cancel or threading.Event()
    gate = Run(
        targets,
        scanner,
        policy,
        deadline,
        registry=registry,
        platforms=options.platforms,
        concurrency=options.concurrency,
        progress=progress or NullProgress(),
        cancel=cancel,
        today=day,
        now=now,
    )
    try:
        gate.start()
        gate.wait()
    except KeyboardInterrupt:
        cancel.set()
    interrupted = cancel.is_set()
    report = summarize(
        policy,
        gate.outcomes(),
        today=day,
        started_at=started_at,
        finished_at=now(),
        stale_ignores=() if interrupted else gate.stale_ignore_rules(),
        stale_vex=() if interrupted else gate.stale_vex_statements(),
        baseline=gate.baseline,
        interrupted=interrupted,
        unscannable=unscannable,
        report_only=report_only,
    )
    return GateResult(report, interrupted, tuple(gate.left_running()) if interrupted else ())


def interruption_lines(left_running: Sequence[LeftRunning]) -> list[str]:
    """What to tell people after an interruption: exactly which scans may still run (and bill)."""
    if not left_running:
        return ["interrupted; no scan was left running"]
    confirmed = [left for left in left_running if left.scan.confirmed]
    lines = ["interrupted; these scans were left running in Yandex Cloud:"] if confirmed else []
    lines += [f"  {left.describe()}" for left in confirmed]
    lines += [
        f"interrupted while asking for a scan: {left.describe()}" for left in left_running if left not in confirmed
    ]
    return lines


def evaluate_saved(
    saved: SavedReport,
    policy: Policy,
    *,
    today: dt.date,
    now: Callable[[], dt.datetime] = _utc_now,
    explicit_policy: bool = False,
    loosenings: Sequence[Loosening] = (),
) -> RunReport:
    """Judge a saved report's results again under ``policy``: offline, no API call, no scan.

    The report's provenance carries the saved run's ``emulated`` and loosenings (a saved report without
    provenance counts as emulated) and names the saved file and its digest: re-judging never turns an
    emulated result into one that looks real. ``loosenings``: the caller's own (``--today``). ConfigError
    (exit 2) when the saved baseline is one of the saved images (the baseline is the image under test)."""
    if policy.baseline is not None and saved.baseline is not None:
        same = [image.ref for image in saved.images if image.image_id == saved.baseline.image_id]
        if same:
            raise ConfigError(
                f"the baseline is the image under test: the saved baseline {saved.baseline.ref} is image "
                f"{saved.baseline.image_id}, which {saved.source} also gates as {same[0]}; a baseline of the image "
                "itself counts none of its findings"
            )
    started_at = now()
    outcomes, stale, stale_vex = rejudge(policy, saved, today=today)
    provenance = evaluation_provenance(
        policy,
        __version__,
        saved=FileDigest(saved.source, saved.sha256),
        saved_emulated=saved.run.emulated,
        saved_recorded=saved.run.recorded,
        saved_loosenings=saved.run.loosenings,
        explicit_policy=explicit_policy,
        extra=loosenings,
    )
    report = summarize(
        policy,
        outcomes,
        today=today,
        started_at=started_at,
        finished_at=now(),
        stale_ignores=stale,
        stale_vex=stale_vex,
        baseline=saved.baseline if policy.baseline else None,
    )
    return dataclasses.replace(report, provenance=provenance)
