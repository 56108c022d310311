"""crgate: a CI gate for Yandex Cloud Container Registry vulnerability scans."""

__version__ = "0.1.0"
"""The one version source: pyproject.toml reads it, and tests/test_packaging.py checks every place that must
repeat it (the emulator's version and pins, the Action's and the component's tags, CHANGELOG.md)."""
