"""Report formats. Each module renders the same ``RunReport``; ``render`` picks one by name lazily."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads FORMATS at start-up: keep this module free of imports
    from crgate.model import RunReport

_MODULES = {
    "text": "crgate.report.text",
    "json": "crgate.report.json_report",
    "sarif": "crgate.report.sarif",
    "gitlab": "crgate.report.gitlab",
    "junit": "crgate.report.junit",
    "markdown": "crgate.report.markdown",
}
FORMATS: tuple[str, ...] = tuple(_MODULES)


def render(fmt: str, report: RunReport, *, sarif_location: str | None = None) -> str:
    """The report in format ``fmt`` (one of FORMATS) as text ending in a newline.

    ``sarif_location`` is the repository path SARIF results point at (default ``Dockerfile``).
    """
    module = importlib.import_module(_MODULES[fmt])
    if fmt == "sarif" and sarif_location is not None:
        return str(module.render(report, module.SarifOptions(location=sarif_location)))
    return str(module.render(report))
