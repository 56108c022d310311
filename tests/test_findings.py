"""The pure finding-level judgement: decisions, precedence, counting, rule index, stale rules."""

from __future__ import annotations

import datetime as dt
import fnmatch

from crgate.findings import judge, recount, rule_warnings, stale_rules
from crgate.model import Finding, IgnoreRule, Policy

TODAY = dt.date(2027, 1, 1)


def f(cve: str, severity: str = "high", package: str = "openssl", fixed_by: str = "") -> Finding:
    return Finding(cve=cve, severity=severity, package=package, fixed_by=fixed_by)


def policy(**fields) -> Policy:
    return Policy(version=1, thresholds={"critical": 0, "high": 0, "total": 0}, source="t", **fields)


def test_precedence_is_ignored_then_baseline_then_not_fixable():
    findings = [f("CVE-1"), f("CVE-2"), f("CVE-3"), f("CVE-4", fixed_by="2")]
    rules = (IgnoreRule(id="CVE-1", reason="r"),)
    judged, counts = judge(
        policy(ignore=rules, fixable_only=frozenset({"high"})),
        "img",
        findings,
        today=TODAY,
        baseline=frozenset({("CVE-1", "openssl"), ("CVE-2", "openssl")}),
    )
    assert [j.decision for j in judged] == ["ignored", "in_baseline", "not_fixable", "counted"]
    assert counts["high"] == 1
    assert counts["total"] == 2  # total is not fixable-only: the not-fixable finding still counts there


def test_fixable_only_total_counts_only_fixable():
    judged, counts = judge(
        policy(fixable_only=frozenset({"total"})), "img", [f("CVE-1"), f("CVE-2", fixed_by="1")], today=TODAY
    )
    assert [j.decision for j in judged] == ["counted", "counted"]
    assert counts["high"] == 2 and counts["total"] == 1


def test_only_fixed_applies_everywhere():
    _, counts = judge(policy(only_fixed=True), "img", [f("CVE-1"), f("CVE-2", "critical", fixed_by="1")], today=TODAY)
    assert counts == {"critical": 1, "high": 0, "medium": 0, "low": 0, "negligible": 0, "undefined": 0, "total": 1}


def test_image_globs_and_expiry_decide_whether_a_rule_is_in_force():
    rules = (
        IgnoreRule(id="CVE-1", reason="r", images=("cr.yandex/*/api:*",)),
        IgnoreRule(id="CVE-2", reason="r", expires=dt.date(2026, 12, 31)),
        IgnoreRule(id="CVE-3", reason="r", expires=TODAY),
    )
    judged, _ = judge(policy(ignore=rules), "cr.yandex/crp/web:1", [f("CVE-1"), f("CVE-2"), f("CVE-3")], today=TODAY)
    assert [j.decision for j in judged] == ["counted", "counted", "ignored"]
    warnings = rule_warnings(rules, TODAY)
    assert any("CVE-2" in w and "expired on 2026-12-31" in w for w in warnings)
    assert any("CVE-3" in w and "expires today" in w for w in warnings)


def test_two_hundred_rules_do_not_glob_every_finding(monkeypatch):
    calls = 0
    real = fnmatch.fnmatchcase

    def counting(name: str, pattern: str) -> bool:
        nonlocal calls
        calls += 1
        return real(name, pattern)

    monkeypatch.setattr("crgate.findings.fnmatch.fnmatchcase", counting)
    rules = tuple(IgnoreRule(id=f"CVE-2024-{n:05d}", reason="r", package="pkg*") for n in range(200))
    findings = [f(f"CVE-2024-{n:05d}", package=f"pkg{n}") for n in range(20_000)]
    judged, _ = judge(policy(ignore=rules), "img", findings, today=TODAY)
    assert sum(j.decision == "ignored" for j in judged) == 200
    assert calls <= 200, calls  # one glob per finding whose CVE has a rule, not 200 x 20,000


def test_stale_rules_need_findings_for_every_image():
    rules = (IgnoreRule(id="CVE-1", reason="r"), IgnoreRule(id="CVE-9", reason="r"))
    judged, _ = judge(policy(ignore=rules), "img", [f("CVE-1")], today=TODAY)
    assert stale_rules(policy(ignore=rules), [judged], TODAY) == ["CVE-9"]
    assert stale_rules(policy(ignore=rules), [judged, None], TODAY) == []


def test_recount():
    assert recount([f("a"), f("b", "low")]).as_dict()["high"] == 1
