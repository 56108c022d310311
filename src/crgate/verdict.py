"""Assemble a run's outcomes into the ``RunReport`` every format renders (pure).

The run's exit code is the worst of its images' (errors outrank violations); stale ignore rules add
a violation when the policy says ``fail_on_stale_ignores``, unscannable images (manifests naming images
outside Yandex Container Registry) one when it says ``unscannable: fail``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from crgate import __version__
from crgate.exitcodes import ExitCode, worst
from crgate.findings import far_expiry_warnings, kev_warnings, rule_warnings
from crgate.image_rules import unscannable_mode
from crgate.model import BaselineInfo, ImageOutcome, Policy, RunReport


def summarize(
    policy: Policy,
    outcomes: Sequence[ImageOutcome],
    *,
    today: dt.date,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    stale_ignores: Sequence[str] = (),
    stale_vex: Sequence[str] = (),
    baseline: BaselineInfo | None = None,
    interrupted: bool = False,
    unscannable: Sequence[str] = (),
    report_only: bool = False,
) -> RunReport:
    """``unscannable``: images (from manifests) outside Yandex Container Registry, as ``image (where)``;
    ``stale_vex``: VEX statements that applied to no finding (a warning, never a violation)."""
    warnings = rule_warnings(policy.all_ignore, today) + far_expiry_warnings(policy, today)
    warnings.extend(kev_warnings(policy, today))
    modes = [(image, unscannable_mode(policy, image)) for image in unscannable]
    for image, mode in modes:
        if mode != "skip":
            warnings.append(
                f"{image} is not in Yandex Container Registry and was not scanned (policy unscannable: {mode})"
            )
    for label in stale_ignores:
        consequence = "a violation (fail_on_stale_ignores)" if policy.fail_on_stale_ignores else "remove it"
        warnings.append(f"ignore rule {label} matched no finding in this run (stale): {consequence}")
    for label in stale_vex:
        warnings.append(f"VEX {label} matched no finding in this run (stale)")
    codes = [outcome.exit_code for outcome in outcomes]
    if stale_ignores and policy.fail_on_stale_ignores:
        codes.append(ExitCode.VIOLATION)
    if any(mode not in ("warn", "skip") for _, mode in modes):  # "fail", and anything unknown
        codes.append(ExitCode.VIOLATION)
    code = ExitCode.INTERRUPTED if interrupted else worst(codes)
    return RunReport(
        policy=policy,
        images=tuple(outcomes),
        exit_code=code,
        tool_version=__version__,
        started_at=started_at,
        finished_at=finished_at,
        warnings=tuple(warnings),
        stale_ignores=tuple(stale_ignores),
        stale_vex=tuple(stale_vex),
        baseline=baseline,
        unscannable=tuple(unscannable),
        report_only=report_only,
    )
