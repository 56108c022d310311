"""Packaging metadata and the GitHub Action's dependency lock (action/requirements.lock) agree with
pyproject.toml: every dependency and the build backend pinned within crgate's own ranges, every pin
hashed, and none of the packages the action leaves out on purpose."""

from __future__ import annotations

import re
import sys

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = (REPO_ROOT / "action" / "requirements.lock").read_text(encoding="utf-8")
LEFT_OUT = {"grpcio-tools", "requests", "six", "deprecated", "wrapt", "urllib3", "certifi", "idna"}
PIN = re.compile(r"^([a-z0-9][a-z0-9._-]*)==([^\s;]+)(?: ; ([^\\]+?))? \\$", re.M)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, version, _marker in PIN.findall(LOCK):
        found.setdefault(canonical(name), []).append(version)
    return found


def test_license_is_an_spdx_expression_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert all((REPO_ROOT / path).is_file() for path in project["license-files"])
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    # The string form and license-files need setuptools 77 (PEP 639).
    (backend,) = (Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert not backend.specifier.contains("76.9") and backend.specifier.contains("77.0")


def test_every_dependency_and_the_build_backend_are_pinned_within_range():
    locked = pins()
    wanted = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for text in wanted:
        requirement = Requirement(text)
        versions = locked.get(canonical(requirement.name))
        assert versions, f"{requirement.name} is not in action/requirements.lock (run action/refresh-lock.sh)"
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name}=={version}"


def test_every_pin_is_hashed_and_nothing_is_left_unpinned():
    entries = re.split(r"\n(?=[a-z0-9])", LOCK.split("\n", 2)[2].strip())
    assert entries
    for entry in entries:
        assert PIN.match(entry + "\n"), entry.splitlines()[0]
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]
    assert "-e " not in LOCK and "git+" not in LOCK and "file:" not in LOCK


def test_the_lock_leaves_out_what_only_the_sdk_half_of_yandexcloud_imports():
    assert not LEFT_OUT & set(pins())
    assert "action/refresh-lock.sh" in LOCK.splitlines()[1]


def test_the_lock_covers_every_supported_python():
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    classifiers = [c.rsplit(" ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if "Python :: 3." in c]
    assert classifiers and all(requires.contains(version) for version in classifiers)
    # One lock for every interpreter: pins that differ by Python version carry markers (pycparser here).
    assert "python_full_version < '3.11'" in LOCK
