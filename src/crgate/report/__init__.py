"""Report formats. Each module writes the same ``RunReport``; ``write``/``write_all`` pick them by name lazily.

Every format streams to its destination (``module.write(context, out)``), so a report of 100,000
findings is never one string in memory; ``render`` wraps ``write`` for callers that want a string.
One ``write_all`` call shares a ``Context`` between its formats, so work such as sorting each image's
findings is done once for the whole run.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TextIO, Union

from crgate.defaults import DEFAULT_SARIF_LOCATION  # import-free, like this module

if TYPE_CHECKING:  # the CLI reads FORMATS at start-up: nothing beyond the standard library at import
    from crgate.model import RunReport
    from crgate.report.common import Context

_MODULES = {
    "text": "crgate.report.text",
    "json": "crgate.report.json_report",
    "sarif": "crgate.report.sarif",
    "gitlab": "crgate.report.gitlab",
    "junit": "crgate.report.junit",
    "markdown": "crgate.report.markdown",
    "codequality": "crgate.report.codequality",
    "cosign-vuln": "crgate.report.cosign_vuln",
    "comment": "crgate.report.comment",
    "dotenv": "crgate.report.dotenv",
}
FORMATS: tuple[str, ...] = tuple(_MODULES)
Destination = Union[TextIO, str, "os.PathLike[str]"]
"""An open text stream (written, not closed) or a file path (created or truncated, UTF-8)."""


def write(
    fmt: str,
    report: RunReport,
    out: TextIO,
    *,
    location: str = DEFAULT_SARIF_LOCATION,
    invocation: Mapping[str, str] | None = None,
    sarif_category: str = "crgate",
) -> None:
    """Write the report in format ``fmt`` (one of FORMATS) to ``out``, ending in a newline.

    The options are those of ``write_all``.
    """
    _write(fmt, _context(report, location, invocation, sarif_category), out)


def write_all(
    report: RunReport,
    destinations: Iterable[tuple[str, Destination]],
    *,
    location: str = DEFAULT_SARIF_LOCATION,
    invocation: Mapping[str, str] | None = None,
    sarif_category: str = "crgate",
) -> None:
    """Write every ``(format, destination)`` pair, in order, sharing one pass of preparation.

    ``location``: the repository path SARIF results and Code Quality entries point at (line 1).
    ``invocation``: the CI run the cosign-vuln predicate names (see ``cosign_vuln.invocation_from_env``).
    ``sarif_category``: the SARIF run's ``automationDetails.id`` prefix (one per matrix job).
    A path that cannot be written raises ``ConfigError`` naming the format and the path.
    """
    from crgate.bulk import without_cycle_collection
    from crgate.errors import ConfigError

    destinations = list(destinations)
    for fmt, _ in destinations:
        if fmt not in _MODULES:
            raise ConfigError(f"unknown report format '{fmt}': use one of {', '.join(FORMATS)}")
    shared = _context(report, location, invocation, sarif_category)
    formats = {fmt for fmt, _ in destinations}
    shared.keep_finding_lines = {"json", "cosign-vuln"} <= formats  # cosign-vuln embeds the JSON report
    with without_cycle_collection():  # see crgate.bulk: writing allocates millions of small objects
        for fmt, destination in destinations:
            if not isinstance(destination, (str, os.PathLike)):
                _write(fmt, shared, destination)
                continue
            try:
                with open(destination, "w", encoding="utf-8", newline="\n") as out:
                    _write(fmt, shared, out)
            except OSError as error:
                reason = error.strerror or str(error)
                raise ConfigError(f"could not write the {fmt} report to {os.fspath(destination)}: {reason}") from None


def render(fmt: str, report: RunReport, *, location: str = DEFAULT_SARIF_LOCATION) -> str:
    """The report in format ``fmt`` as one string ending in a newline (tests, small reports).

    ``location`` is the repository path SARIF and Code Quality entries point at.
    """
    import io

    buffer = io.StringIO()
    write(fmt, report, buffer, location=location)
    return buffer.getvalue()


def _context(
    report: RunReport, location: str, invocation: Mapping[str, str] | None, sarif_category: str = "crgate"
) -> Context:
    from crgate.report.common import Context

    return Context(report, location=location, invocation=dict(invocation or {}), sarif_category=sarif_category)


def _write(fmt: str, shared: Context, out: TextIO) -> None:
    importlib.import_module(_MODULES[fmt]).write(shared, out)
