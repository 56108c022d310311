"""The cosign vulnerability attestation predicate (``https://cosign.sigstore.dev/attestation/vuln/v1``).

For ``cosign attest --type vuln --predicate FILE IMAGE@DIGEST`` and admission policies that check it
(Kyverno ``verifyImages`` attestations, sigstore policy-controller). The predicate follows cosign's
``CosignVulnPredicate``: ``invocation`` (``parameters``, ``uri``, ``event_id``, ``builder.id``),
``scanner`` (``uri``, ``version``, ``db`` {``uri``, ``version``}, ``result``) and ``metadata``
(``scanStartedOn``, ``scanFinishedOn``). ``scanner.result`` is crgate's JSON report of the run (its
schema: ``report.schema.json``): the verdict (``scanner.result.verdict``), the policy, its provenance
(``scanner.result.provenance``: policy digest, loosenings, endpoints, ``emulated``), and per image its
counts, violations and every finding with the policy's decision. An emulated run names the emulator as
the scanner (``scanner.uri`` ``pkg:pypi/crgate-emulator@VERSION``, ``scanner.version``
``VERSION-emulator``), so a verifier that expects crgate itself rejects it. Schema of the whole
predicate: ``schemas/cosign-vuln.schema.json``.

One predicate per run. ``cosign attest`` attests one image, so the usual use is a run per image digest;
a run of several images writes one predicate about all of them whose ``scanner.result.verdict`` is the
run's (``pass`` only when every image passed). Attaching it to each gated digest therefore never makes
an image look better than the run judged it, and each image's own verdict is in
``scanner.result.images[]`` (matched by ``ref``).

The predicate is a layer in the registry that every admission check downloads, so its embedded result is
bounded: the verdict, counts, violations and errors of every image always, and at most
``FINDINGS_MAX`` findings over all images (counted ones first, then by severity), each image saying how
many of its findings it left out (``findings_omitted``); crgate's JSON report keeps every finding.

``metadata.scanFinishedOn`` is when the oldest scan result in the predicate was produced (a reused
result keeps its age), so an admission check of freshness cannot be fooled by ``reuse``;
``scanStartedOn`` is the run's start, or that time when it is earlier.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from crgate.model import FindingDecision, ImageOutcome, RunReport
from crgate.report import json_report
from crgate.report.common import SEVERITY_RANK, Context, is_web_link
from crgate.report.jsonout import Splice
from crgate.report.provenance import is_emulated

PREDICATE_TYPE = "https://cosign.sigstore.dev/attestation/vuln/v1"
SCANNER_DB_URI = "https://yandex.cloud/en/docs/container-registry/concepts/vulnerability-scanner"
EMULATOR_URI = "pkg:pypi/crgate-emulator@{version}"
"""``scanner.uri`` of an emulated run: a verifier that expects ``pkg:pypi/crgate@`` rejects it."""
EMULATOR_DB_URI = "crgate-emulator:scenario"


FINDINGS_MAX = 2000
"""Findings in ``scanner.result`` over all images (about 300 bytes each: the predicate stays near 1 MB)."""


def write(context: Context, out: TextIO) -> None:
    splice = Splice()
    kept = kept_findings(context.report, FINDINGS_MAX)

    def findings_of(outcome: ImageOutcome) -> Any:
        if outcome.findings is None:
            return None
        keep = kept.get(id(outcome), frozenset())
        lines = (json_report.finding_line(j) for position, j in enumerate(outcome.findings) if position in keep)
        return splice.array(lines)

    result = json_report.document(context.report, findings_of)
    for image, outcome in zip(result["images"], context.report.images, strict=True):
        if outcome.findings is not None:
            image["findings_omitted"] = len(outcome.findings) - len(kept.get(id(outcome), ()))
    splice.write(out, predicate(context.report, result, context.invocation), indent=2, ensure_ascii=True)


def kept_findings(report: RunReport, limit: int) -> dict[int, frozenset[int]]:
    """For each image (by ``id``), the positions of its findings the predicate keeps: the ``limit`` most
    important of the run (counted before any other decision, then by severity, then in report order)."""

    def ranked() -> Iterator[tuple[int, int, int, int]]:
        for index, outcome in enumerate(report.images):
            for position, judged in enumerate(outcome.findings or ()):
                counted = 0 if judged.decision == FindingDecision.COUNTED else 1
                yield counted, SEVERITY_RANK.get(judged.finding.severity, len(SEVERITY_RANK)), index, position

    best = heapq.nsmallest(limit, ranked())
    kept: dict[int, set[int]] = {}
    for _, _, index, position in best:
        kept.setdefault(id(report.images[index]), set()).add(position)
    return {key: frozenset(value) for key, value in kept.items()}


def predicate(report: RunReport, result: Any, invocation: Mapping[str, str]) -> dict[str, Any]:
    """The predicate around ``result`` (crgate's JSON report document, or a placeholder for it)."""
    started, finished = scan_times(report)
    return {
        "invocation": {
            "parameters": None,
            "uri": _uri(invocation.get("uri", "")),
            "event_id": invocation.get("event_id", ""),
            "builder.id": invocation.get("builder.id", ""),
        },
        "scanner": _scanner(report, result),
        "metadata": {"scanStartedOn": _time(started), "scanFinishedOn": _time(finished)},
    }


def _scanner(report: RunReport, result: Any) -> dict[str, Any]:
    """crgate with Yandex's scanner behind it, or, for an emulated run, the emulator by name."""
    version = report.tool_version
    if is_emulated(report):
        uri, db, version = EMULATOR_URI.format(version=version), EMULATOR_DB_URI, f"{version}-emulator"
        return {"uri": uri, "version": version, "db": {"uri": db, "version": ""}, "result": result}
    uri = f"pkg:pypi/crgate@{version}"
    return {"uri": uri, "version": version, "db": {"uri": SCANNER_DB_URI, "version": ""}, "result": result}


def scan_times(report: RunReport) -> tuple[dt.datetime, dt.datetime]:
    """(started, finished): the run's start and the oldest result's scan time (else the run's end)."""
    scanned = [o.result.scanned_at for o in report.images if o.result is not None and o.result.scanned_at is not None]
    finished = min(scanned) if scanned else report.finished_at
    return min(report.started_at, finished), finished


def invocation_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The CI run that attests, from GitHub Actions' or GitLab CI's variables (empty elsewhere).

    Only the run's public identity: its URL, id and the CI system; never arguments or variables that
    could carry a secret.
    """
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repository = env.get("GITHUB_REPOSITORY", "")
        uri = f"{server}/{repository}/actions/runs/{env['GITHUB_RUN_ID']}" if repository else ""
        return {"uri": uri, "event_id": env["GITHUB_RUN_ID"], "builder.id": "GitHub Actions"}
    if env.get("GITLAB_CI") == "true" and env.get("CI_JOB_ID"):
        return {"uri": env.get("CI_JOB_URL", ""), "event_id": env["CI_JOB_ID"], "builder.id": "GitLab CI"}
    return {}


def _uri(value: str) -> str:
    """The CI run's URL when it is a valid http(s) URI, else empty: it comes from pipeline variables."""
    return value if is_web_link(value) else ""


def _time(value: dt.datetime) -> str:
    """RFC 3339 in UTC, as Go's ``time.Time`` (cosign, Kyverno) reads it."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
