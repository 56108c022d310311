"""The run's verdict: worst image code, plus run-wide policy checks (stale rules, unscannable images)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from crgate.model import ErrorInfo, ImageOutcome, Policy
from crgate.verdict import summarize

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
POLICY = Policy(version=1, thresholds={"critical": 0}, source="t")


def run(policy: Policy, outcomes=(), **extra):
    return summarize(policy, list(outcomes), today=NOW.date(), started_at=NOW, finished_at=NOW, **extra)


def error(code: int) -> ImageOutcome:
    return ImageOutcome(ref="e", error=ErrorInfo(kind="scan", message="m", exit_code=code))


@pytest.mark.parametrize(
    ("mode", "code", "warned"), [("warn", 0, True), ("skip", 0, False), ("fail", 1, True), ("bogus", 1, True)]
)
def test_unscannable_images_follow_the_policy_and_unknown_modes_fail(mode, code, warned):
    report = run(replace(POLICY, unscannable=mode), unscannable=["nginx:1 (pod.yaml, line 3)"])
    assert report.exit_code == code
    assert any("nginx:1" in w for w in report.warnings) == warned
    assert report.unscannable == ("nginx:1 (pod.yaml, line 3)",)


def test_stale_rules_fail_only_when_asked():
    assert run(POLICY, stale_ignores=["CVE-1"]).exit_code == 0
    assert run(replace(POLICY, fail_on_stale_ignores=True), stale_ignores=["CVE-1"]).exit_code == 1


def test_errors_outrank_run_wide_violations():
    report = run(replace(POLICY, fail_on_stale_ignores=True), [error(4)], stale_ignores=["CVE-1"])
    assert report.exit_code == 4


def test_interrupted_is_130_whatever_else():
    assert run(POLICY, [error(3)], interrupted=True).exit_code == 130
