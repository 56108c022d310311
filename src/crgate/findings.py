"""Finding-level judgement (pure): which findings count against the limits, and why the others do not.

Decisions, in precedence order: ``ignored`` (an ignore rule matched and has not expired), then ``vex``
(the VEX statement that applies, ``crgate.vexmatch``, says ``not_affected`` or ``fixed``), then
``in_baseline`` (the (CVE, package) pair is in the baseline image), then ``not_fixable`` (the limit of
the finding's severity counts only fixable findings and this one has no fix), else ``counted``.

Ignore rules are indexed by CVE id, so matching costs one dict lookup per finding plus glob checks
only for the rules of that CVE: 200 rules x 20,000 findings is 20,000 lookups, not 4 million globs.

A finding listed in the policy's KEV catalog counts against ``kev.max`` (the ``kev`` key of the counts)
unless it is ``ignored`` or ``vex``: the baseline and fixable-only limits do not take it out.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from crgate.bulk import without_cycle_collection
from crgate.model import (
    SEVERITIES,
    THRESHOLD_KEYS,
    Finding,
    FindingDecision,
    IgnoreRule,
    ImageOutcome,
    ImageSource,
    JudgedFinding,
    Policy,
    SeverityCounts,
    VexStatement,
)
from crgate.vexmatch import VexIndex, statement_key

EXPIRY_WARNING_DAYS = 14
FAR_EXPIRY_DAYS = 365
"""An ignore rule that runs longer than this is a permanent exception in disguise (``9999-12-31``): warned."""
BaselineKeys = frozenset[tuple[str, str]]


def finding_key(finding: Finding) -> tuple[str, str]:
    """What makes two findings "the same" across images: (CVE id, package)."""
    return finding.cve.upper(), finding.package


def recount(findings: Iterable[Finding]) -> SeverityCounts:
    """Counts per severity of a list of findings (no rule applied)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return SeverityCounts(**counts)


@dataclass(frozen=True)
class RuleIndex:
    """The ignore rules of a policy that are in force today, indexed by CVE id for one image."""

    by_cve: Mapping[str, tuple[IgnoreRule, ...]]

    @classmethod
    def build(cls, rules: Sequence[IgnoreRule], image_ref: str, today: dt.date) -> RuleIndex:
        by_cve: dict[str, list[IgnoreRule]] = defaultdict(list)
        for rule in rules:
            if rule_expired(rule, today):
                continue
            if rule.images and not any(fnmatch.fnmatchcase(image_ref, glob) for glob in rule.images):
                continue
            by_cve[rule.id.upper()].append(rule)
        return cls({cve: tuple(found) for cve, found in by_cve.items()})

    def match(self, finding: Finding) -> IgnoreRule | None:
        for rule in self.by_cve.get(finding.cve.upper(), ()):
            if rule.package is None or fnmatch.fnmatchcase(finding.package, rule.package):
                return rule
        return None


def rule_expired(rule: IgnoreRule, today: dt.date) -> bool:
    """A rule applies through its ``expires`` date and stops the day after."""
    return rule.expires is not None and today > rule.expires


def rule_warnings(rules: Sequence[IgnoreRule], today: dt.date) -> list[str]:
    """Warnings for expired rules and rules that expire within EXPIRY_WARNING_DAYS."""
    warnings = []
    for rule in rules:
        if rule.expires is None:
            continue
        days = (rule.expires - today).days
        if days < 0:
            warnings.append(f"ignore rule {rule.label} expired on {rule.expires.isoformat()} and no longer applies")
        elif days <= EXPIRY_WARNING_DAYS:
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            warnings.append(f"ignore rule {rule.label} expires {when} ({rule.expires.isoformat()})")
    return warnings


def far_expiry_warnings(policy: Policy, today: dt.date) -> list[str]:
    """Warnings for ignore rules that expire more than ``FAR_EXPIRY_DAYS`` after ``today``, naming the
    policy file, the rule and its line: a rule without review hides the finding from every later run."""
    warnings = []
    for rule in policy.all_ignore:
        if rule.expires is not None and (rule.expires - today).days > FAR_EXPIRY_DAYS:
            warnings.append(
                f"ignore rule {rule.label} in {policy.source} expires {rule.expires.isoformat()}, more than a year "
                "ahead: an exception that long is never reviewed; set 'expires' within a year and renew it then"
            )
    return warnings


def kev_warnings(policy: Policy, today: dt.date) -> list[str]:
    """A warning when the KEV catalog's release is older than ``kev.max_age`` (a stale catalog misses the
    newest known exploited vulnerabilities; the pipeline's download step is failing or skipped)."""
    kev = policy.kev
    if kev is None or kev.max_age is None:
        return []
    age = today - kev.catalog.released.date()
    if age <= kev.max_age:
        return []
    return [
        f"KEV catalog {kev.catalog.path} (version {kev.catalog.version}) was released "
        f"{kev.catalog.released.date().isoformat()}, {age.days} days ago, older than kev.max_age "
        f"({kev.max_age.days}d{'' if kev.max_age.seconds == 0 else ' and more'}): download it again"
    ]


def judge(
    policy: Policy,
    image_ref: str,
    findings: Sequence[Finding],
    *,
    today: dt.date,
    baseline: BaselineKeys | None = None,
    source: ImageSource | None = None,
    vex_applied: set[tuple[str, int]] | None = None,
) -> tuple[tuple[JudgedFinding, ...], dict[str, int]]:
    """Decide every finding; return the judged findings and the count per threshold key (and ``kev`` when
    the policy has a KEV catalog). ``source`` is what VEX products name (the image's digests, repository
    and tag); the (document, index) of every VEX statement that applied is added to ``vex_applied``."""
    index = RuleIndex.build(policy.ignore, image_ref, today)
    match = index.match if index.by_cve else None
    vex_index = VexIndex.build(policy.vex, source)
    vex_match = vex_index.match if vex_index.by_vulnerability else None
    kev_entries = policy.kev.catalog.entries if policy.kev is not None else None
    judged = []
    counts = dict.fromkeys(THRESHOLD_KEYS, 0)
    kev_count = 0
    total_fixable_only = policy.counts_fixable_only("total")
    # Asked once per severity rather than once per finding (this loop runs 100,000 times for a big image).
    fixable_only = {severity: policy.counts_fixable_only(severity) for severity in SEVERITIES}
    counted, not_fixable = FindingDecision.COUNTED, FindingDecision.NOT_FIXABLE
    with without_cycle_collection():
        for finding in findings:
            kev = kev_entries.get(finding.cve.upper()) if kev_entries else None
            rule = match(finding) if match is not None else None
            if rule is not None:
                judged.append(JudgedFinding(finding, FindingDecision.IGNORED, rule.label, kev=kev))
                continue
            statement: VexStatement | None = None
            if vex_match is not None:
                statement, applied = vex_match(finding)
                if vex_applied is not None:
                    vex_applied.update(map(statement_key, applied))
                if statement is not None and statement.status.excludes:
                    judged.append(JudgedFinding(finding, FindingDecision.VEX, vex=statement, kev=kev))
                    continue
            if kev is not None:
                kev_count += 1
            if baseline is not None and finding_key(finding) in baseline:
                judged.append(JudgedFinding(finding, FindingDecision.IN_BASELINE, vex=statement, kev=kev))
                continue
            severity, fixable = finding.severity, bool(finding.fixed_by)
            if not fixable and fixable_only.get(severity, policy.only_fixed):
                judged.append(JudgedFinding(finding, not_fixable, vex=statement, kev=kev))
            else:
                judged.append(JudgedFinding(finding, counted, vex=statement, kev=kev))
                counts[severity] += 1
            if fixable or not total_fixable_only:
                counts["total"] += 1
        if policy.kev is not None:
            counts["kev"] = kev_count
        return tuple(judged), counts


def stale_rules(
    policy: Policy, judged_per_image: Sequence[tuple[JudgedFinding, ...] | None], today: dt.date
) -> list[str]:
    """Labels of the ignore rules in force that matched no finding of any image.

    Empty when staleness cannot be told: some image has no findings (an error, or not fetched).
    """
    rules = policy.all_ignore  # the image rules' too: each is judged by the images its rule matched
    if not rules or any(judged is None for judged in judged_per_image):
        return []
    matched = {j.rule for judged in judged_per_image for j in judged or () if j.rule is not None}
    return [rule.label for rule in rules if rule.label not in matched and not rule_expired(rule, today)]


def stale_statements(policy: Policy, outcomes: Sequence[ImageOutcome]) -> list[str]:
    """Labels of the VEX statements in force that applied to no finding of any image; empty when that
    cannot be told (some image has no findings: an error, or not fetched)."""
    if not policy.all_vex or any(outcome.findings is None or outcome.error is not None for outcome in outcomes):
        return []
    applied = {key for outcome in outcomes for key in outcome.vex_applied}
    return [
        statement.label
        for document in policy.all_vex
        for statement in document.statements
        if statement_key(statement) not in applied
    ]
