"""crgate: a CI gate for Yandex Cloud Container Registry vulnerability scans."""

__version__ = "0.1.0"
"""The one version source: pyproject.toml reads it. What must repeat it is checked against it by tests: the
emulator's version and pins and CHANGELOG.md (test_packaging.py), the component's tags (test_gitlab_job.py)."""
