"""What installing crgate costs in CI: cold (a fresh runner, empty pip cache) and cached (the GitHub
Action's venv restored from the Actions cache), in seconds and megabytes.

Run: ``python bench/install.py [--runs 3]`` (needs the network to PyPI and ``zstd``). Prints a Markdown
table for docs/performance.md; not a test. Each cold run uses a fresh venv and ``PIP_NO_CACHE_DIR=1``.

- ``unpinned``: ``pip install <checkout>``, the action's install before the lock: pip resolves
  yandexcloud's full dependency set (grpcio-tools, setuptools, requests, ...) and byte-compiles it.
- ``action``: ``action/install.sh install`` as the action runs it: the hashed lock with ``--no-deps``
  (no grpcio-tools, no SDK-only packages), ``--no-compile``, the checkout built with the locked setuptools,
  and the smoke import.
- ``sdk extras``: what the left-out packages would add on top of ``action`` (installed afterwards).
- ``cached``: restore as actions/cache does on Linux (a zstd tar of the venv extracted at the same path),
  then ``install.sh install`` finding it ready; the archive size is what the runner downloads.
- ``warm``: ``install.sh install`` when the venv is already there (the action used twice in a job).

After each ``action`` install the bench gates ``cr.yandex/crpdemo/app:clean`` against the emulator with
the installed crgate, so the stubs are shown to work without grpcio-tools.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "action" / "install.sh"
SDK_EXTRAS = ["grpcio-tools", "requests", "six", "deprecated"]


def megabytes(path: Path) -> float:
    """Disk usage, as ``du -s`` counts it (blocks, so many small files weigh what they cost)."""
    done = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True)
    return int(done.stdout.split()[0]) / 1024


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def action_env(runner_temp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRGATE_", "GITHUB_", "RUNNER_"))}
    env.update(
        {
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(runner_temp / "output"),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "PIP_NO_CACHE_DIR": "1",
            "CRGATE_PYTHON": sys.executable,
        }
    )
    return env


def unpinned(work: Path) -> tuple[float, float]:
    venv = work / "venv"
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    seconds = timed(lambda: (run([sys.executable, "-m", "venv", str(venv)]), run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        env,
    )))  # fmt: skip
    return seconds, megabytes(venv)


def gate_demo(venv: Path) -> None:
    """The installed crgate gates a demo image against its emulator: the stubs work as installed."""
    run([str(venv / "bin" / "crgate"), "check", "--emulator", "--progress=none", "cr.yandex/crpdemo/app:clean"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("zstd"):
        sys.exit("zstd is needed to play actions/cache (apt-get install zstd)")
    rows: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="crgate-install-") as scratch:
        root = Path(scratch)
        for number in range(args.runs):
            work = root / f"unpinned-{number}"
            work.mkdir()
            rows.setdefault("unpinned", []).append(unpinned(work))
            shutil.rmtree(work)

            runner_temp = root / f"action-{number}"
            runner_temp.mkdir()
            env = action_env(runner_temp)
            venv = runner_temp / "crgate-venv"
            seconds = timed(lambda env=env: run(["bash", str(INSTALL), "install"], env))
            rows.setdefault("action", []).append((seconds, megabytes(venv)))
            gate_demo(venv)

            archive = runner_temp / "cache.tzst"
            pack = ["tar", "--use-compress-program", "zstd -T0", "-cf", str(archive), "-C", str(runner_temp)]
            run([*pack, "crgate-venv"])
            archive_mb = archive.stat().st_size / 1_000_000
            shutil.rmtree(venv)
            seconds = timed(lambda env=env, archive=archive, runner_temp=runner_temp: (
                run(["tar", "--use-compress-program", "zstd -d", "-xf", str(archive), "-C", str(runner_temp)]),
                run(["bash", str(INSTALL), "install"], env),
            ))  # fmt: skip
            rows.setdefault("cached", []).append((seconds, archive_mb))
            gate_demo(venv)

            seconds = timed(lambda env=env: run(["bash", str(INSTALL), "install"], env))
            rows.setdefault("warm", []).append((seconds, 0.0))

            before = megabytes(venv)
            extras = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", *SDK_EXTRAS]
            seconds = timed(lambda env=env, extras=extras: run(extras, env))
            rows.setdefault("sdk extras", []).append((seconds, megabytes(venv) - before))
            shutil.rmtree(runner_temp)

    print(f"| install | median seconds (of {args.runs}) | size (du) |")
    print("| --- | --- | --- |")
    for name, samples in rows.items():
        seconds = statistics.median(s for s, _ in samples)
        size = statistics.median(m for _, m in samples)
        if name == "warm":
            print(f"| {name} | {seconds:.2f} s | |")
        else:
            unit = "MB archive" if name == "cached" else "MB"
            print(f"| {name} | {seconds:.1f} s | {size:.0f} {unit} |")


if __name__ == "__main__":
    main()
