"""Report formats. Each module renders the same ``RunReport``; ``render`` picks one by name lazily."""

from __future__ import annotations

import importlib

from crgate.model import RunReport

FORMATS: tuple[str, ...] = ("text", "json")
_MODULES = {"text": "crgate.report.text", "json": "crgate.report.json_report"}


def render(fmt: str, report: RunReport) -> str:
    """The report in format ``fmt`` (one of FORMATS) as text ending in a newline."""
    module = importlib.import_module(_MODULES[fmt])
    return str(module.render(report))
