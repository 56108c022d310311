"""Packaging metadata and the GitHub Action's dependency lock (action/requirements.lock) agree with
pyproject.toml: every dependency and the build backend pinned within crgate's own ranges, every pin
hashed, and none of the packages the action leaves out on purpose (crgate carries its own Yandex stubs:
no yandexcloud at run time)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = re.search(r'^__version__ = "([^"]+)"$', (REPO_ROOT / "src/crgate/__init__.py").read_text(), re.M)[1]  # type: ignore[index]
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


def test_the_lock_holds_no_yandex_sdk_nor_what_only_its_sdk_half_imports():
    assert "yandexcloud" not in pins()
    assert not LEFT_OUT & set(pins())
    assert "action/refresh-lock.sh" in LOCK.splitlines()[1]


def test_the_lock_covers_every_supported_python():
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    classifiers = [c.rsplit(" ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if "Python :: 3." in c]
    assert classifiers and all(requires.contains(version) for version in classifiers)
    # One lock for every interpreter: pins that differ by Python version carry markers (pycparser here).
    assert "python_full_version < '3.11'" in LOCK


# -- crgate and its emulator: two distributions ------------------------------------------------------

EMULATOR_PYPROJECT = tomllib.loads((REPO_ROOT / "emulator" / "pyproject.toml").read_text(encoding="utf-8"))
WITHOUT_EMULATOR = """
import sys
sys.modules["crgate_emulator"] = None  # the import system's view of an install without crgate-emulator
sys.argv = ["crgate", *sys.argv[1:]]
from crgate.cli import main
main()
"""
MISSING = "needs crgate's emulator, which is not installed: pip install 'crgate[emulator]' (from a crgate "
MISSING_END = "checkout: pip install ./emulator)"


def test_crgates_version_has_one_source():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "crgate.__version__"}
    import crgate

    assert crgate.__version__ == VERSION
    for script in ("install.sh", "gitlab_job.py"):  # the integrations name no version of their own
        assert VERSION not in (REPO_ROOT / "action" / script).read_text(encoding="utf-8"), script


def test_the_changelog_keeps_a_changelog_and_names_this_version():
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "[Keep a Changelog](https://keepachangelog.com/" in changelog
    assert "\n## [Unreleased]\n" in changelog and f"\n## [{VERSION}]" in changelog
    assert f"\n[{VERSION}]: https://github.com/crgate/crgate/releases/tag/v{VERSION}\n" in changelog


def test_the_emulator_is_released_with_crgate_and_named_by_its_extras():
    version = VERSION
    assert EMULATOR_PYPROJECT["project"]["name"] == "crgate-emulator"
    assert EMULATOR_PYPROJECT["project"]["version"] == version
    assert f"crgate=={version}" in EMULATOR_PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["emulator"] == [f"crgate-emulator=={version}"]
    assert f"crgate-emulator=={version}" in extras["test"]
    assert not any(Requirement(r).name == "crgate-emulator" for r in PYPROJECT["project"]["dependencies"])


def test_the_emulators_dependencies_are_pinned_by_the_actions_lock():
    """The action installs the emulator of its checkout with --no-deps beside the lock (emulator: true)."""
    locked = pins()
    for text in EMULATOR_PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.name == "crgate":
            continue
        versions = locked.get(canonical(requirement.name))
        assert versions, f"{requirement.name} is not in action/requirements.lock (run action/refresh-lock.sh)"
        assert all(requirement.specifier.contains(v, prereleases=True) for v in versions), requirement.name


def _build_wheels(tmp_path: Path) -> dict[str, zipfile.ZipFile]:
    """crgate's and the emulator's wheels, built from a copy of the checkout (no build files in it)."""
    tree = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in ("src", "emulator"):
        shutil.copytree(REPO_ROOT / name, tree / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, tree / name)
    out = tmp_path / "wheels"
    for project in (tree, tree / "emulator"):
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
            + ["--wheel-dir", str(out), str(project)],
            check=True,
            capture_output=True,
            text=True,
        )
    wheels = {path.name.split("-")[0]: zipfile.ZipFile(path) for path in out.glob("*.whl")}
    assert sorted(wheels) == ["crgate", "crgate_emulator"]
    return wheels


def test_the_crgate_wheel_holds_no_emulator_and_the_emulator_wheel_holds_it(tmp_path):
    wheels = _build_wheels(tmp_path)
    crgate = wheels["crgate"].namelist()
    assert "crgate/cli.py" in crgate and "crgate/report/report.schema.json" in crgate
    emulated = [name for name in crgate if "emulator" in name.split(".dist-info/")[0] or name.endswith(".yaml")]
    assert emulated == []
    assert all(name.startswith(("crgate/", "crgate-")) for name in crgate), crgate
    metadata = wheels["crgate"].read(next(n for n in crgate if n.endswith(".dist-info/METADATA"))).decode()
    assert "Provides-Extra: emulator" in metadata
    assert f'Requires-Dist: crgate-emulator=={VERSION}; extra == "emulator"' in metadata
    emulator = wheels["crgate_emulator"].namelist()
    assert {"crgate_emulator/server.py", "crgate_emulator/demo.yaml", "crgate_emulator/py.typed"} <= set(emulator)
    assert all(name.startswith(("crgate_emulator/", "crgate_emulator-")) for name in emulator), emulator
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in emulator)
    metadata = wheels["crgate_emulator"].read(next(n for n in emulator if n.endswith("METADATA"))).decode()
    assert f"Requires-Dist: crgate=={VERSION}" in metadata


def test_the_crgate_wheel_holds_its_stubs_and_no_tests_benches_or_tools(tmp_path):
    wheel = _build_wheels(tmp_path)["crgate"]
    names = wheel.namelist()
    assert not [n for n in names if n.split("/")[0] in ("tests", "bench", "tools", "emulator", "action")]
    stubs = "crgate/_proto/yandex/cloud/containerregistry/v1/scanner_service_pb2"
    assert {f"{stubs}.py", f"{stubs}.pyi", f"{stubs}_grpc.py", "crgate/_proto/LICENSE-cloudapi"} <= set(names)
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"\nVersion: {VERSION}\n" in metadata
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: yandexcloud")]
    assert required and all('extra == "test"' in line for line in required), required


def _fresh_venv_with_the_wheels(tmp_path: Path) -> Path:
    """A new venv holding only the two built wheels; their dependencies are borrowed from this test venv.

    No network in tests: a ``.pth`` line puts this venv's site-packages *after* the fresh venv's own, so
    ``crgate`` and ``crgate_emulator`` come from the wheels (the editable installs' ``.pth`` hooks of this
    venv are not run from there), and grpcio, protobuf, click... from here. ``bench/floors.py`` installs
    the dependencies too, from the index.
    """
    _build_wheels(tmp_path)
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    theirs = subprocess.run([str(python), "-c", purelib], check=True, capture_output=True, text=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", purelib], check=True, capture_output=True, text=True).stdout.strip()
    (Path(theirs) / "borrowed-dependencies.pth").write_text(ours + "\n", encoding="utf-8")
    wheels = sorted(str(path) for path in (tmp_path / "wheels").glob("*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            *wheels,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return venv


def test_the_built_wheels_install_and_gate_in_a_fresh_venv(tmp_path):
    venv = _fresh_venv_with_the_wheels(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRGATE_", "YC_", "PYTHONPATH"))}
    where = "import crgate, crgate_emulator; print(crgate.__file__); print(crgate_emulator.__file__)"
    files = subprocess.run([str(venv / "bin" / "python"), "-c", where], env=env, capture_output=True, text=True)
    assert files.returncode == 0, files.stderr
    assert all(line.startswith(str(venv)) for line in files.stdout.splitlines()), files.stdout
    crgate = str(venv / "bin" / "crgate")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([crgate, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"crgate {VERSION}\n"), version.stderr
    helped = run("check", "--help")
    assert helped.returncode == 0 and "--policy" in helped.stdout, helped.stderr
    clean = run("check", "--emulator", "--progress=none", "cr.yandex/crpdemo/app:clean")
    assert clean.returncode == 0, clean.stderr
    vulnerable = run("check", "--emulator", "--progress=none", "cr.yandex/crpdemo/app:vulnerable")
    assert vulnerable.returncode == 1, vulnerable.stderr
    assert "Traceback" not in clean.stderr + vulnerable.stderr


def run_without_emulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EMULATOR, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["emulator"], "crgate emulator"),
        (["emulator", "--port", "0", "--tls"], "crgate emulator"),
        (["check", "--emulator", "cr.yandex/crpdemo/app:clean"], "--emulator"),
        (["doctor", "--emulator"], "--emulator"),
    ],
    ids=" ".join,
)
def test_without_the_emulator_its_commands_say_what_to_install(args, what):
    done = run_without_emulator(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.replace("\n", " ").count(f"crgate: error: {what} {MISSING}{MISSING_END}") == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_without_the_emulator_help_lists_no_emulator_command():
    without = run_without_emulator("--help")
    assert without.returncode == 0, without.stderr
    commands = without.stdout.split("Commands:", 1)[1].split()
    assert "check" in commands and "emulator" not in commands
    with_it = subprocess.run([sys.executable, "-m", "crgate.cli", "--help"], capture_output=True, text=True, check=True)
    assert "emulator" in with_it.stdout.split("Commands:", 1)[1].split()


def test_yandexcloud_is_a_test_dependency_only():
    runtime = {canonical(Requirement(text).name) for text in PYPROJECT["project"]["dependencies"]}
    test = {canonical(Requirement(text).name) for text in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert "yandexcloud" not in runtime and "yandexcloud" in test
    assert {"grpcio", "protobuf", "googleapis-common-protos"} <= runtime


def test_the_emulator_needs_no_sdk_and_takes_crgates_ranges_for_the_stubs():
    """It serves crgate's generated stubs, so what they need it needs within the same ranges."""
    ours = {canonical(Requirement(t).name): Requirement(t) for t in PYPROJECT["project"]["dependencies"]}
    emulator = {canonical(Requirement(t).name): Requirement(t) for t in EMULATOR_PYPROJECT["project"]["dependencies"]}
    assert "yandexcloud" not in emulator
    for name in ("grpcio", "protobuf", "googleapis-common-protos"):
        assert name in emulator, name
        assert emulator[name].specifier == ours[name].specifier, name
