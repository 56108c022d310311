"""The report formats' tables cover crgate's whole vocabulary: a new decision, verdict or severity
cannot reach a format that has no word for it."""

from __future__ import annotations

from crgate.model import SEVERITIES, FindingDecision, Verdict
from crgate.report import codequality, comment, gitlab, markdown, sarif
from crgate.report.common import SEVERITY_RANK, finding_order
from reportdata import judged


def test_every_decision_has_its_note_in_gitlab_and_sarif():
    assert set(gitlab._DECISION_NOTE) == set(FindingDecision)
    assert set(sarif._DECISION_NOTE) == set(FindingDecision)
    # Only a finding that is not counted carries a note.
    assert not gitlab._DECISION_NOTE[FindingDecision.COUNTED] and not sarif._DECISION_NOTE[FindingDecision.COUNTED]
    others = set(FindingDecision) - {FindingDecision.COUNTED}
    assert all(gitlab._DECISION_NOTE[d] and sarif._DECISION_NOTE[d] for d in others)


def test_the_comment_names_every_decision_that_is_not_counted_once():
    decisions = [decision for decision, _ in comment._NOT_COUNTED]
    assert sorted(decisions) == sorted(set(FindingDecision) - {FindingDecision.COUNTED})


def test_every_verdict_has_an_icon():
    assert set(markdown.ICON) == set(Verdict)


def test_every_severity_has_its_word_in_each_format():
    for table in (sarif.SECURITY_SEVERITY, gitlab._SEVERITY, codequality.SEVERITY):
        assert tuple(table) == SEVERITIES


def test_one_severity_rank_orders_every_format():
    assert [severity for severity, _ in sorted(SEVERITY_RANK.items(), key=lambda item: item[1])] == list(SEVERITIES)
    findings = [judged(f"CVE-2024-{n}", severity) for n, severity in enumerate(reversed(SEVERITIES))]
    assert [j.finding.severity for j in sorted(findings, key=finding_order)] == list(SEVERITIES)
