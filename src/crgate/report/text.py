"""The human report: a table per image, the findings behind each violation, and a one-line verdict."""

from __future__ import annotations

from crgate.model import SEVERITIES, THRESHOLD_KEYS, ImageOutcome, JudgedFinding, Policy, RunReport

MAX_LISTED_FINDINGS = 10
MAX_LISTED_IGNORED = 5
_SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def describe_limits(policy: Policy) -> str:
    """``critical <= 0, high <= 0 (fixable only)`` (the limits that are set, in severity order)."""
    limits = []
    for key in THRESHOLD_KEYS:
        if key in policy.thresholds:
            fixable = " (fixable only)" if policy.counts_fixable_only(key) else ""
            limits.append(f"{key} <= {policy.thresholds[key]}{fixable}")
    return ", ".join(limits) or "no limits"


def render(report: RunReport) -> str:
    lines = [f"crgate {report.tool_version} · policy: {report.policy.source} ({describe_limits(report.policy)})", ""]
    for outcome in report.images:
        lines.extend(_image_block(outcome, report.policy))
        lines.append("")
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    lines.append(_verdict_line(report))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _image_block(outcome: ImageOutcome, policy: Policy) -> list[str]:
    head = f"{outcome.ref}  {outcome.verdict.upper()}"
    ids = []
    if outcome.image_id:
        ids.append(f"image {outcome.image_id}")
    if outcome.scan_result_id:
        ids.append(f"scan result {outcome.scan_result_id}")
    if outcome.result is not None and outcome.result.scanned_at is not None:
        ids.append(f"scanned {outcome.result.scanned_at.strftime('%Y-%m-%d %H:%M:%SZ')}")
    if outcome.result is not None and outcome.origin != "scanned":
        ids.append(outcome.origin)
    lines = [head]
    if ids:
        lines.append("  " + ", ".join(ids))
    lines.extend(f"  note: {warning}" for warning in outcome.warnings)
    if outcome.error is not None:
        lines.append(f"  error (exit {outcome.error.exit_code}): {outcome.error.message}")
        return lines
    if outcome.result is None:
        return lines
    exceeded = {violation.severity for violation in outcome.violations}
    # The "found" column only when the policy set some findings aside (otherwise it repeats the count).
    judged = outcome.findings is not None and any(j.decision != "counted" for j in outcome.findings)
    counted = outcome.counted or {key: outcome.result.counts.get(key) for key in THRESHOLD_KEYS}
    header = f"  {'severity':<11}{'count':>7}{'limit':>7}  status"
    lines.append(header + ("    (found)" if judged else ""))
    for key in THRESHOLD_KEYS:
        limit = policy.thresholds.get(key)
        status = "FAIL" if key in exceeded else "ok"
        limit_text = "-" if limit is None else str(limit)
        count = counted[key]
        found = f"    ({outcome.result.counts.get(key)})" if judged else ""
        lines.append(f"  {key:<11}{count:>7}{limit_text:>7}  {status:<6}{found}")
    if outcome.findings:
        lines.extend(_findings_section(outcome.findings, exceeded))
    return lines


def _findings_section(findings: tuple[JudgedFinding, ...], exceeded: set[str]) -> list[str]:
    lines: list[str] = []
    violating = sorted(
        (j for j in findings if j.decision == "counted" and (j.finding.severity in exceeded or "total" in exceeded)),
        key=lambda j: (_SEVERITY_RANK[j.finding.severity], j.finding.cve, j.finding.package),
    )
    if violating:
        lines.append("  findings behind the violations:")
        for judged in violating[:MAX_LISTED_FINDINGS]:
            f = judged.finding
            fix = f"-> {f.fixed_by}" if f.fixed_by else "(no fix yet)"
            lines.append(f"    {f.severity:<10} {f.cve:<20} {f.package} {f.version} {fix}")
        if len(violating) > MAX_LISTED_FINDINGS:
            lines.append(f"    ... and {len(violating) - MAX_LISTED_FINDINGS} more (see --format json)")
    ignored = [j for j in findings if j.decision == "ignored"]
    if ignored:
        lines.append(f"  ignored ({len(ignored)}):")
        for judged in ignored[:MAX_LISTED_IGNORED]:
            lines.append(f"    {judged.finding.cve} in {judged.finding.package}: rule {judged.rule}")
        if len(ignored) > MAX_LISTED_IGNORED:
            lines.append(f"    ... and {len(ignored) - MAX_LISTED_IGNORED} more")
    others = {
        decision: sum(1 for j in findings if j.decision == decision) for decision in ("not_fixable", "in_baseline")
    }
    parts = [f"{count} {decision.replace('_', ' ')}" for decision, count in others.items() if count]
    if parts:
        lines.append(f"  not counted: {', '.join(parts)}")
    return lines


def _verdict_line(report: RunReport) -> str:
    images = report.images
    n = len(images)
    plural = "image" if n == 1 else "images"
    errors = [o for o in images if o.error is not None]
    failed = [o for o in images if o.error is None and o.violations]
    if report.exit_code == 0:
        skipped = f"; {len(report.unscannable)} not scannable" if report.unscannable else ""
        return f"PASS: {n} {plural} within policy {report.policy.source}{skipped} (exit 0)"
    parts = []
    if failed:
        detail = "; ".join(
            f"{o.ref}: " + ", ".join(f"{v.severity} {v.count} > {v.limit}" for v in o.violations) for o in failed
        )
        parts.append(f"{len(failed)} of {n} {plural} violate the policy ({detail})")
    if errors:
        parts.append(f"{len(errors)} of {n} {plural} could not be checked")
    if report.stale_ignores and report.policy.fail_on_stale_ignores:
        parts.append(f"{len(report.stale_ignores)} stale ignore rule(s) (fail_on_stale_ignores)")
    if report.unscannable and report.policy.unscannable == "fail":
        parts.append(f"{len(report.unscannable)} image(s) outside Yandex Container Registry (unscannable: fail)")
    label = "FAIL" if report.exit_code == 1 else "ERROR"
    return f"{label}: {'; '.join(parts) or 'no verdict'} (exit {report.exit_code})"
