"""Helpers for tests that need tools outside Python (gitlab-ci-local, rsync, check-jsonschema).

Locally such a test skips with the reason; in CI (``CRGATE_REQUIRE_INTEGRATION=1``, set by ``.ci/run``) a
missing tool is a failure, so CI can never pass without having run them.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

from conftest import REPO_ROOT

REQUIRED = os.environ.get("CRGATE_REQUIRE_INTEGRATION") == "1"


def need(available: object, reason: str) -> None:
    """Skip (locally) or fail (in CI) unless ``available`` is truthy."""
    if available:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (CRGATE_REQUIRE_INTEGRATION=1: .ci/run must install it)")
    pytest.skip(reason)


def venv_tool(name: str) -> str | None:
    """A console script installed beside this interpreter (the test venv), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def gitlab_ci_local() -> str | None:
    """gitlab-ci-local from ``.ci/node`` (where .ci/run installs it), else from PATH."""
    local = REPO_ROOT / ".ci" / "node" / "node_modules" / ".bin" / "gitlab-ci-local"
    return str(local) if local.exists() else shutil.which("gitlab-ci-local")


def sdk_installed() -> bool:
    """The official ``yandexcloud`` SDK is installed (looked up, not imported: its stubs and crgate's own
    cannot share a process)."""
    try:
        metadata.distribution("yandexcloud")
    except metadata.PackageNotFoundError:
        return False
    return True
