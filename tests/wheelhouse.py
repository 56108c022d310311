"""A local wheelhouse for the integration tests, built once per test session: the lock's wheels for this
interpreter (action/requirements.lock, downloaded by pip with --require-hashes: the same files the
Action and the component install) and crgate's and its emulator's wheels built from this checkout;
served as a PEP 503 index over loopback HTTP, with the long-lived ``Cache-Control`` a real index sends
for its files, so pip keeps them in its HTTP cache (which the planted-cache tests need).

Also: ``planted_wheel`` makes the wheel an attacker would plant (a crgate whose ``crgate`` prints
PASS and exits 0), ``SwappableIndex`` serves the wheelhouse with crgate's wheel swapped for another
file, and ``prime_pip_cache`` has pip write an answer into a pip cache.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import REPO_ROOT

LOCK = REPO_ROOT / "action" / "requirements.lock"
BASE_PYTHON = str(Path(getattr(sys, "_base_executable", sys.executable)).resolve())
PLANTED_MARK = "PASS: planted crgate"


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path  # files/ (the wheels) and simple/ (the index)
    index_url: str  # http://127.0.0.1:PORT/simple/
    crgate_wheel: Path
    emulator_wheel: Path

    @classmethod
    def make(cls, directory: Path) -> Wheelhouse:
        """Build the wheelhouse in ``directory`` and serve it on loopback for the rest of the session."""
        _, wheel, emulator = build(directory)
        return cls(directory, serve(directory), wheel, emulator)

    @property
    def crgate_requirement(self) -> str:
        """The component's ``install`` input (and the Action's ``version``) for this checkout's wheel."""
        from crgate import __version__

        return f"crgate=={__version__} --hash=sha256:{sha256(self.crgate_wheel)}"

    @property
    def emulator_requirement(self) -> str:
        """The component's ``emulator-install`` input for this checkout's emulator wheel."""
        version = self.emulator_wheel.name.split("-")[1]
        return f"crgate-emulator=={version} --hash=sha256:{sha256(self.emulator_wheel)}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        if self.path.startswith("/files/"):
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")  # as PyPI's file host
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def _run(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _source_copy(root: Path, target: Path) -> Path:
    """The files a wheel is built from, outside the checkout (no build/ or egg-info left in it)."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(root / "src", target / "src", ignore=ignore)
    return target


def _index(directory: Path) -> None:
    files = sorted((directory / "files").iterdir())
    projects: dict[str, list[Path]] = {}
    for wheel in files:
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()
        projects.setdefault(project, []).append(wheel)
    for project, wheels in projects.items():
        page = directory / "simple" / project
        page.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/{html.escape(w.name)}#sha256={sha256(w)}">{html.escape(w.name)}</a>\n'
            for w in wheels
        )
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


def build(directory: Path) -> tuple[Path, Path, Path]:
    """The lock's wheels, crgate's and the emulator's in ``directory/files``, the index in ``directory/simple``."""
    files = directory / "files"
    files.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run(*pip, "download", "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", str(LOCK), "-d", str(files))
    # Built by the test venv's own setuptools (the test extra pins one >= 77), both in one pip call.
    sources = [
        _source_copy(root, directory / name)
        for root, name in ((REPO_ROOT, "source"), (REPO_ROOT / "emulator", "emulator-source"))
    ]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(files), *map(str, sources))
    for source in sources:
        shutil.rmtree(source)
    (wheel,) = files.glob("crgate-[0-9]*.whl")
    (emulator,) = files.glob("crgate_emulator-*.whl")
    _index(directory)
    return files, wheel, emulator


def serve(directory: Path) -> str:
    """Serve ``directory`` on 127.0.0.1 from a daemon thread; the index URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/simple/"


def planted_wheel(like: Path, target: Path) -> Path:
    """A wheel with ``like``'s file name whose ``crgate`` prints PASS and exits 0: what an attacker plants."""
    name, version = like.name.split("-")[:2]
    dist = f"{name}-{version}.dist-info"
    members = {
        "crgate/__init__.py": f'__version__ = "{version}"\n',
        "crgate/cli.py": f"def main():\n    print({PLANTED_MARK!r})\n    raise SystemExit(0)\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: planted\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\ncrgate = crgate.cli:main\n",
    }
    record = []
    for member, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{member},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    target.mkdir(parents=True, exist_ok=True)
    path = target / like.name
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in members.items():
            archive.writestr(member, text)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


class SwappableIndex:
    """A private index for one test: the session's wheelhouse (its lock wheels linked, not copied) served
    by its own loopback server, whose crgate wheel the test can swap for another file under the same
    name and URL (``serve_crgate``): a mirror that answers with a planted file, or, while a cache is
    primed, the answer a pip cache entry would hold."""

    def __init__(self, wheelhouse: Wheelhouse, directory: Path) -> None:
        self.wheelhouse = wheelhouse
        self.directory = directory
        files = directory / "files"
        files.mkdir(parents=True)
        for wheel in (wheelhouse.directory / "files").iterdir():
            (files / wheel.name).symlink_to(wheel)
        self.index_url = serve(directory)
        self.wheel_url = self.index_url.replace("/simple/", f"/files/{wheelhouse.crgate_wheel.name}")
        self.serve_crgate(wheelhouse.crgate_wheel)

    def serve_crgate(self, wheel: Path) -> None:
        """From now on crgate's wheel URL answers with ``wheel``'s bytes (and the index lists its hash)."""
        target = self.directory / "files" / self.wheelhouse.crgate_wheel.name
        target.unlink(missing_ok=True)
        shutil.copy(wheel, target)
        shutil.rmtree(self.directory / "simple", ignore_errors=True)
        _index(self.directory)


def prime_pip_cache(cache: Path, url: str, work: Path) -> Path:
    """Fill ``cache`` with ``url``'s answer the way pip does (pip itself downloads it, with the pip of a
    venv made by the interpreter the jobs use, so the entry is in that pip's own format); that venv's
    python. pip caches plain-HTTP answers only from a ``--trusted-host``, so the primer names loopback."""
    venv = work / "primer-venv"
    _run(BASE_PYTHON, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    _run(
        str(python), "-m", "pip", "--isolated", "--disable-pip-version-check", "--quiet", "download", "--no-deps",
        "--cache-dir", str(cache), "--trusted-host", "127.0.0.1", "-d", str(work / "primer-download"), url,
    )  # fmt: skip
    return python


def image_venv(wheelhouse: Wheelhouse, target: Path) -> Path:
    """A venv with crgate and its emulator, as a trusted image would carry it (built once, from the
    wheelhouse, by hash: the lock's wheels and this checkout's two), outside every test's checkout."""
    _run(BASE_PYTHON, "-m", "venv", str(target))
    pins = target.parent / f"{target.name}-requirements.txt"
    pins.write_text(f"{wheelhouse.crgate_requirement}\n{wheelhouse.emulator_requirement}\n")
    _run(
        str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-index",
        "--find-links", str(wheelhouse.directory / "files"), "-r", str(LOCK), "-r", str(pins),
    )  # fmt: skip
    return target
