"""GitHub Actions glue for crgate: from crgate's JSON report, write the step's outputs to
``$GITHUB_OUTPUT`` (heredoc syntax with a random delimiter), append the Markdown summary to
``$GITHUB_STEP_SUMMARY`` and print ``::error`` / ``::warning`` annotations.

When crgate stopped before writing a report (a usage error, exit 2), the outputs still say so:
``verdict=error`` and the exit code, so a later step never reads an empty verdict as a pass; and the
summary and comment files are written with that error, so a sticky PR comment fed from
``comment-file`` never keeps showing the previous run's verdict.

``pinned-images``: one ``<host>/<registry-id>/<repository>@sha256:...`` a line, what each gated
reference resolved to: the report's ``references[].pinned`` when it lists them (for an index, the
index's digest), else for each single-manifest image row (``platform`` null) its reference with the
row's ``digest``. Every line is checked to be exactly that form; nothing else is ever printed there.

The report holds text from users, manifests and the registry. Annotation titles and messages are made
printable by crgate's one sanitizer (``crgate.textsafe``, standard library only; run-check.sh puts
this checkout's ``src/`` first on ``PYTHONPATH``, so it is the action's own even when the ``version``
input installs another crgate) and then encoded as workflow-command values; the summary is made
printable line by line. Outputs stay exact: the heredoc delimiter never occurs in a value.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crgate.errors import ImageRefError
from crgate.images import parse_image_ref
from crgate.textsafe import github_data, github_property, safe, safe_text

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "undefined")
MAX_ANNOTATIONS = 50  # GitHub shows at most 10 errors and 10 warnings per step; keep the log short too
REF_LIMIT = 200  # a reference in an annotation title
MESSAGE_LIMIT = 2000  # one annotation message
SUMMARY_LINE_LIMIT = 20_000  # one line of the Markdown summary (a table row)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
PINNED = re.compile(r"[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}")  # as crgate.pinning writes
MAX_PINNED = 10_000


def annotation(level: str, title: str, message: str) -> str:
    """One workflow command; ``title`` and ``message`` are encoded exactly (the runner decodes them)."""
    return f"::{level} title={github_property(title)}::{github_data(message)}"


def _title(ref: str) -> str:
    return f"crgate: {safe(ref, REF_LIMIT)}"


def _message(text: str) -> str:
    return safe(text, MESSAGE_LIMIT)


def output_block(name: str, value: str) -> str:
    """``name<<DELIM`` / value / ``DELIM`` with a delimiter that cannot occur in the value."""
    while True:
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        if delimiter not in value:
            return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def pinned_images(report: dict[str, Any]) -> list[str]:
    """The pinned form of every gated reference, in report order, each once (see the module doc)."""
    found: list[object] = []
    references = report.get("references")
    if isinstance(references, list):
        found = [entry.get("pinned") for entry in references if isinstance(entry, dict)]
    else:
        for image in report["images"]:
            digest, ref = image.get("digest"), image.get("ref")
            if image.get("platform") is not None or not isinstance(digest, str) or not isinstance(ref, str):
                continue
            try:
                parsed = parse_image_ref(ref)
            except ImageRefError:
                continue  # an --image-id row or a labelled child: no reference to pin
            if DIGEST.fullmatch(digest) and parsed.digest in (None, digest):
                found.append(f"{parsed.host}/{parsed.registry_id}/{parsed.repository}@{digest}")
    unique = list(dict.fromkeys(value for value in found if isinstance(value, str) and PINNED.fullmatch(value)))
    return unique[:MAX_PINNED]


def expected_exit_code(report: dict[str, Any]) -> int:
    """What crgate exits with for this report: its code, but 0 for violations alone under --report-only."""
    code = int(report["exit_code"])
    return 0 if report.get("report_only") is True and code == 1 else code


def outputs(report: dict[str, Any] | None, exit_code: int, files: dict[str, str], sarif_file: str) -> dict[str, str]:
    """Every output of the action (strings; counts summed over the images that have a result).

    ``files``: the paths of report-json, markdown-file and comment-file (each set only when it exists).
    """
    present = {name: path if path and Path(path).is_file() else "" for name, path in files.items()}
    if report is None:
        values = {"verdict": "error", "exit-code": str(exit_code), "scan-result-ids": ""}
        values.update(dict.fromkeys((*SEVERITIES, "total"), "0"))
        values.update({"report-json": "", "sarif-file": "", "pinned-images": ""})
        values.update({name: path for name, path in present.items() if name != "report-json"})
        return values
    totals = dict.fromkeys(SEVERITIES, 0)
    for image in report["images"]:
        for severity, count in (image.get("counts") or {}).items():
            totals[severity] += count
    values = {"verdict": report["verdict"], "exit-code": str(exit_code)}
    values.update({severity: str(count) for severity, count in totals.items()})
    values["total"] = str(sum(totals.values()))
    values["scan-result-ids"] = " ".join(i["scan_result_id"] for i in report["images"] if i.get("scan_result_id"))
    values.update(present)
    values["sarif-file"] = sarif_file if sarif_file and Path(sarif_file).is_file() else ""
    values["pinned-images"] = "\n".join(pinned_images(report))
    return values


def annotation_lines(report: dict[str, Any] | None, exit_code: int) -> list[str]:
    if report is None:
        message = f"crgate stopped before gating any image (exit {exit_code}); see the log"
        return [annotation("error", "crgate", message)]
    lines = []
    report_only = report.get("report_only") is True
    for image in report["images"]:
        title = _title(str(image["ref"]))
        if image["error"] is not None:
            lines.append(annotation("error", title, _message(f"could not be checked: {image['error']['message']}")))
        elif image["violations"]:
            exceeded = ", ".join(f"{v['severity']} {v['count']} > {v['limit']}" for v in image["violations"])
            # Under fail-build: false the step passes, so a violation is a warning, still named in full.
            level, suffix = ("warning", " (report-only: the build goes on)") if report_only else ("error", "")
            lines.append(annotation(level, title, _message(f"violates the policy: {exceeded}{suffix}")))
        lines.extend(annotation("warning", title, _message(str(warning))) for warning in image.get("warnings", ()))
    lines.extend(annotation("warning", "crgate", _message(str(warning))) for warning in report["warnings"])
    if expected_exit_code(report) != exit_code:  # crgate always agrees with its report; say so if not
        lines.append(annotation("error", "crgate", f"exit code {exit_code} differs from the report's"))
    if len(lines) > MAX_ANNOTATIONS:
        rest = len(lines) - MAX_ANNOTATIONS
        lines = [*lines[:MAX_ANNOTATIONS], annotation("warning", "crgate", f"{rest} more annotations in the report")]
    return lines


def append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            document: dict[str, Any] = json.load(handle)
    except FileNotFoundError:
        return None
    return document


def error_markdown(exit_code: int) -> str:
    return f"## crgate: ⚠️ ERROR (exit {exit_code})\n\ncrgate stopped before gating any image; see the job's log.\n"


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--report", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--comment", default="")
    parser.add_argument("--exit-code", type=int, required=True)
    parser.add_argument("--sarif-file", default="")
    args = parser.parse_args(list(argv) if argv is not None else None)

    report = load(args.report)
    for path in (args.summary, args.comment):  # crgate wrote neither: say why, never leave an old verdict
        if path and not Path(path).is_file():
            Path(path).write_text(error_markdown(args.exit_code), encoding="utf-8")
    files = {"report-json": args.report if report else "", "markdown-file": args.summary, "comment-file": args.comment}
    values = outputs(report, args.exit_code, files, args.sarif_file)
    append(os.environ.get("GITHUB_OUTPUT"), "".join(output_block(name, value) for name, value in values.items()))
    with open(args.summary, encoding="utf-8", newline="") as handle:  # a stray "\r" is shown, not a line break
        summary = handle.read()
    append(os.environ.get("GITHUB_STEP_SUMMARY"), safe_text(summary, SUMMARY_LINE_LIMIT))
    for line in annotation_lines(report, args.exit_code):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
