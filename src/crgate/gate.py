"""crgate's core entry points, usable without the CLI: gate images, or re-judge a saved report.

``run`` starts a run, waits for it, turns Ctrl-C (or a set ``cancel``) into an orderly stop, and
returns the finished ``RunReport`` with the scans that may still be running. The CLI only parses
options, opens the connection, installs signal handlers and prints (pip-audit's ``Auditor.audit``
and pypa/build's ``ProjectBuilder`` are the model).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crgate.defaults import DEFAULT_CONCURRENCY
from crgate.interface import ProgressSink, Scanner
from crgate.model import Policy, RunReport, Target
from crgate.progress import NullProgress
from crgate.runner import LeftRunning, Run
from crgate.saved_report import SavedReport, rejudge
from crgate.timing import Deadline
from crgate.verdict import summarize


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


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
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressSink | None = None,
    cancel: threading.Event | None = None,
    today: dt.date | None = None,
    unscannable: Sequence[str] = (),
    report_only: bool = False,
    now: Callable[[], dt.datetime] = _utc_now,
) -> GateResult:
    """Gate ``targets`` with ``scanner`` under ``policy``, all within ``deadline``.

    ``scanner`` may be None only when there is nothing to scan (every image of the manifests lies
    outside Yandex Container Registry). ``unscannable`` names those images (``image (where)``); the
    policy's ``unscannable`` decides whether they fail the run. Setting ``cancel`` (or Ctrl-C in the
    calling thread) stops the run: unfinished images become ``interrupted`` and the run exits 130.
    ``report_only`` marks the report so (its ``process_exit_code`` lets violations alone pass the step).
    """
    day = today or now().date()
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
        concurrency=concurrency,
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
        baseline=gate.baseline,
        interrupted=interrupted,
        unscannable=unscannable,
        report_only=report_only,
    )
    return GateResult(report, interrupted, tuple(gate.left_running()) if interrupted else ())


def evaluate_saved(
    saved: SavedReport, policy: Policy, *, today: dt.date, now: Callable[[], dt.datetime] = _utc_now
) -> RunReport:
    """Judge a saved report's results again under ``policy``: offline, no API call, no scan."""
    started_at = now()
    outcomes, stale = rejudge(policy, saved, today=today)
    return summarize(
        policy,
        outcomes,
        today=today,
        started_at=started_at,
        finished_at=now(),
        stale_ignores=stale,
        baseline=saved.baseline if policy.baseline else None,
    )
