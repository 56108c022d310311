"""GitHub Actions glue for crgate: from crgate's JSON report, write the step's outputs to
``$GITHUB_OUTPUT`` (heredoc syntax with a random delimiter), append the Markdown summary to
``$GITHUB_STEP_SUMMARY`` and print ``::error`` / ``::warning`` annotations.

When crgate stopped before writing a report (a usage error, exit 2), the outputs still say so:
``verdict=error`` and the exit code, so a later step never reads an empty verdict as a pass.

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
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crgate.textsafe import github_data, github_property, safe, safe_text

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "undefined")
MAX_ANNOTATIONS = 50  # GitHub shows at most 10 errors and 10 warnings per step; keep the log short too
REF_LIMIT = 200  # a reference in an annotation title
MESSAGE_LIMIT = 2000  # one annotation message
SUMMARY_LINE_LIMIT = 20_000  # one line of the Markdown summary (a table row)


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


def outputs(report: dict[str, Any] | None, exit_code: int, report_path: str, sarif_file: str) -> dict[str, str]:
    """Every output of the action (strings; counts summed over the images that have a result)."""
    if report is None:
        values = {"verdict": "error", "exit-code": str(exit_code), "scan-result-ids": ""}
        values.update(dict.fromkeys((*SEVERITIES, "total"), "0"))
        values.update({"report-json": "", "sarif-file": ""})
        return values
    totals = dict.fromkeys(SEVERITIES, 0)
    for image in report["images"]:
        for severity, count in (image.get("counts") or {}).items():
            totals[severity] += count
    values = {"verdict": report["verdict"], "exit-code": str(exit_code)}
    values.update({severity: str(count) for severity, count in totals.items()})
    values["total"] = str(sum(totals.values()))
    values["scan-result-ids"] = " ".join(i["scan_result_id"] for i in report["images"] if i.get("scan_result_id"))
    values["report-json"] = report_path
    values["sarif-file"] = sarif_file if sarif_file and Path(sarif_file).is_file() else ""
    return values


def annotation_lines(report: dict[str, Any] | None, exit_code: int) -> list[str]:
    if report is None:
        message = f"crgate stopped before gating any image (exit {exit_code}); see the log"
        return [annotation("error", "crgate", message)]
    lines = []
    for image in report["images"]:
        title = _title(str(image["ref"]))
        if image["error"] is not None:
            lines.append(annotation("error", title, _message(f"could not be checked: {image['error']['message']}")))
        elif image["violations"]:
            exceeded = ", ".join(f"{v['severity']} {v['count']} > {v['limit']}" for v in image["violations"])
            lines.append(annotation("error", title, _message(f"violates the policy: {exceeded}")))
        lines.extend(annotation("warning", title, _message(str(warning))) for warning in image.get("warnings", ()))
    lines.extend(annotation("warning", "crgate", _message(str(warning))) for warning in report["warnings"])
    if report["exit_code"] != exit_code:  # crgate always agrees with its report; say so if not
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


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--report", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--exit-code", type=int, required=True)
    parser.add_argument("--sarif-file", default="")
    args = parser.parse_args(list(argv) if argv is not None else None)

    report = load(args.report)
    values = outputs(report, args.exit_code, args.report if report else "", args.sarif_file)
    append(os.environ.get("GITHUB_OUTPUT"), "".join(output_block(name, value) for name, value in values.items()))
    summary_path = Path(args.summary)
    if summary_path.is_file():
        with open(summary_path, encoding="utf-8", newline="") as handle:  # a stray "\r" is shown, not a line break
            summary = handle.read()
    else:
        summary = (
            f"## crgate: ⚠️ ERROR (exit {args.exit_code})\n\ncrgate stopped before gating any image; see the log.\n"
        )
    append(os.environ.get("GITHUB_STEP_SUMMARY"), safe_text(summary, SUMMARY_LINE_LIMIT))
    for line in annotation_lines(report, args.exit_code):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
