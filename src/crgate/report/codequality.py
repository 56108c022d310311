"""GitLab Code Quality report (``artifacts: reports: codequality``): findings in the merge-request widget.

GitLab reads a subset of the CodeClimate issue format: a JSON array of objects with ``description``,
``check_name``, ``fingerprint``, ``severity`` (``info``, ``minor``, ``major``, ``critical``,
``blocker``) and ``location.path`` + ``location.lines.begin``. Unlike the container-scanning report
(Ultimate only), the widget shows these on every tier. Schema: ``schemas/codequality.schema.json``.

- One entry per finding that counts against the policy (decision ``counted``), most severe first per
  image; findings the policy sets aside (ignored, taken out by VEX, in the baseline, not fixable) are
  left out, except a finding in the KEV catalog that still counts against ``kev.max`` (in the baseline
  or not fixable): it is listed, as ``critical``, with its KEV entry.
- One ``blocker`` entry per image that could not be checked, so a run that failed to scan never looks
  clean in the widget.
- Severity, from Yandex's: critical -> ``critical``, high -> ``major``, medium -> ``minor``,
  low and negligible -> ``info``; undefined (the scanner's "other") -> ``minor``, so a finding of
  unknown severity is not filed among informational notes.
- ``fingerprint`` is stable across runs: a hash of the image repository (the reference without its
  tag or digest, so a rebuild under a new tag keeps it), the platform of an index's image (so each
  platform's finding is fixed on its own), the CVE id and the package, which is how
  GitLab tells new findings from resolved ones between the merge request and its target branch. The
  same (repository, CVE, package) twice in one run gets a counter, keeping fingerprints unique.
- ``location.path`` is ``--sarif-location`` (default ``Dockerfile``), line 1, as in SARIF.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import chain
from typing import TextIO

from crgate.model import FindingDecision, JudgedFinding
from crgate.report.common import Context, clip, describe_finding, image_identity, kev_findings, kev_note
from crgate.report.jsonout import Splice, string
from crgate.textsafe import visible

SEVERITY = {
    "critical": "critical",
    "high": "major",
    "medium": "minor",
    "low": "info",
    "negligible": "info",
    "undefined": "minor",
}
IMAGE_ERROR_CHECK = "crgate/image-not-checked"
_TEXT = 2_000  # characters of a description


def write(context: Context, out: TextIO) -> None:
    splice = Splice()
    entries = splice.array(_entries(context))
    splice.write(out, entries, indent=None, ensure_ascii=False)


def _entries(context: Context) -> Iterator[str]:
    location = f'"location": {{"path": {string(context.location)}, "lines": {{"begin": 1}}}}'
    seen: dict[bytes, int] = {}
    for outcome in context.report.images:
        ref = outcome.ref
        identity = image_identity(outcome)
        # The platform joins the repository when there is one: a single image's fingerprints stay as they were.
        repository = f"{identity.repository}\x1f{identity.platform}" if identity.platform else identity.repository
        if outcome.error is not None:
            description = visible(f"crgate could not check image {ref}: {outcome.error.message}", lines=True)
            key = _unique(seen, repository, IMAGE_ERROR_CHECK, "")
            yield _entry(description, IMAGE_ERROR_CHECK, key, "blocker", location)
        groups = context.grouped(outcome).by_decision
        # The counted findings, and the KEV-listed ones that count against kev.max though another decision
        # (baseline, not fixable) left them out of the severity counts; VEX and ignored findings are left out.
        kev_only: list[JudgedFinding] = []
        if context.report.policy.kev is not None:
            kev_only = [
                j for j in kev_findings(context.sorted_findings(outcome)) if j.decision != FindingDecision.COUNTED
            ]
        for judged in chain(groups[FindingDecision.COUNTED], kev_only):
            finding = judged.finding
            cve = visible(finding.cve if 0 < len(finding.cve) <= 200 else clip(finding.cve, 200) or "UNKNOWN")
            key = _unique(seen, repository, finding.cve, finding.package)
            # Every text a person reads is visible: no control or bidi character reaches the widget.
            description = f"{cve} ({finding.severity}) in {describe_finding(finding)} of image {ref}"
            severity = SEVERITY.get(finding.severity, "minor")
            if judged.kev is not None:
                description += f"; {kev_note(judged.kev)}"
                severity = "critical"
            yield _entry(visible(description), cve, key, severity, location)


def _entry(description: str, check: str, fingerprint: str, severity: str, location: str) -> str:
    if len(description) > _TEXT:
        description = clip(description, _TEXT)
    return (
        f'{{"type": "issue", "categories": ["Security"], "check_name": {string(check)}, '
        f'"description": {string(description)}, "fingerprint": "{fingerprint}", '
        f'"severity": "{severity}", {location}}}'
    )


def fingerprint(*parts: str) -> str:
    """32 hex digits naming ``parts`` (BLAKE2b, 128 bits): the same parts always give the same text."""
    return _digest(parts).hex()


def _digest(parts: tuple[str, ...]) -> bytes:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()


def _unique(seen: dict[bytes, int], repository: str, check: str, package: str) -> str:
    """The fingerprint of (repository, check, package), with a counter from its second occurrence on."""
    first = _digest((repository, check, package))
    occurrence = seen.get(first, 0) + 1
    seen[first] = occurrence
    return first.hex() if occurrence == 1 else fingerprint(repository, check, package, str(occurrence))
