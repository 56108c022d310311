"""The human report: a table per image and a one-line verdict."""

from __future__ import annotations

from crgate.model import THRESHOLD_KEYS, ImageOutcome, Policy, RunReport


def describe_limits(policy: Policy) -> str:
    """``critical <= 0, high <= 0`` (the limits that are set, in severity order)."""
    limits = [f"{key} <= {policy.thresholds[key]}" for key in THRESHOLD_KEYS if key in policy.thresholds]
    return ", ".join(limits) or "no limits"


def render(report: RunReport) -> str:
    lines = [f"crgate {report.tool_version} · policy: {report.policy.source} ({describe_limits(report.policy)})", ""]
    for outcome in report.images:
        lines.extend(_image_block(outcome, report.policy))
        lines.append("")
    lines.extend(f"warning: {warning}" for warning in report.warnings)
    lines.append(_verdict_line(report))
    return "\n".join(lines) + "\n"


def _image_block(outcome: ImageOutcome, policy: Policy) -> list[str]:
    head = f"{outcome.ref}  {outcome.verdict.upper()}"
    ids = []
    if outcome.image_id:
        ids.append(f"image {outcome.image_id}")
    if outcome.scan_result_id:
        ids.append(f"scan result {outcome.scan_result_id}")
    if outcome.result is not None and outcome.result.scanned_at is not None:
        ids.append(f"scanned {outcome.result.scanned_at.strftime('%Y-%m-%d %H:%M:%SZ')}")
    lines = [head]
    if ids:
        lines.append("  " + ", ".join(ids))
    if outcome.error is not None:
        lines.append(f"  error (exit {outcome.error.exit_code}): {outcome.error.message}")
        return lines
    if outcome.result is None:
        return lines
    exceeded = {violation.severity for violation in outcome.violations}
    lines.append(f"  {'severity':<11}{'count':>7}{'limit':>7}  status")
    for key in THRESHOLD_KEYS:
        limit = policy.thresholds.get(key)
        status = "FAIL" if key in exceeded else "ok"
        limit_text = "-" if limit is None else str(limit)
        lines.append(f"  {key:<11}{outcome.result.counts.get(key):>7}{limit_text:>7}  {status}")
    return lines


def _verdict_line(report: RunReport) -> str:
    images = report.images
    n = len(images)
    plural = "image" if n == 1 else "images"
    errors = [o for o in images if o.error is not None]
    failed = [o for o in images if o.error is None and o.violations]
    if report.exit_code == 0:
        return f"PASS: {n} {plural} within policy {report.policy.source} (exit 0)"
    parts = []
    if failed:
        detail = "; ".join(
            f"{o.ref}: " + ", ".join(f"{v.severity} {v.count} > {v.limit}" for v in o.violations) for o in failed
        )
        parts.append(f"{len(failed)} of {n} {plural} violate the policy ({detail})")
    if errors:
        parts.append(f"{len(errors)} of {n} {plural} could not be checked")
    label = "FAIL" if report.exit_code == 1 else "ERROR"
    return f"{label}: {'; '.join(parts) or 'no verdict'} (exit {report.exit_code})"
