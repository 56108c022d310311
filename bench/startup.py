"""Start-up cost: ``crgate --version`` and the help screens against ``python -c "import click"`` (target <= 1.25).

Run: ``python bench/startup.py [--runs 20]``. The anchor and every crgate command run interleaved, one
after another in each round, so a busy machine slows them alike; each line prints the median of its
runs and its ratio to the anchor's median. Not a test: the import allow-list in
``tests/test_startup_imports.py`` is what keeps the start-up path from growing.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.25
WARM_UP_ROUNDS = 3
"""Rounds run and thrown away first: the file cache and the .pyc files are warm before timing starts."""


def commands() -> dict[str, list[str]]:
    """The anchor first, then the crgate commands, each as the argv a user runs."""
    # The console script users run (bin/crgate next to this interpreter), not ``python -m``.
    crgate = str(Path(sys.executable).with_name("crgate"))
    return {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "crgate --version": [crgate, "--version"],
        "crgate --help": [crgate, "--help"],
        "crgate check --help": [crgate, "check", "--help"],
        "crgate doctor --help": [crgate, "doctor", "--help"],
    }


def run_once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def compile_crgate() -> None:
    """Write crgate's .pyc files, as installing the wheel does: click's are already there.

    Without them (an editable install under ``PYTHONDONTWRITEBYTECODE=1``) every run recompiles
    crgate's sources, and the bench would measure the compiler rather than start-up.
    """
    spec = importlib.util.find_spec("crgate")
    assert spec is not None and spec.submodule_search_locations, "crgate is not installed here"
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


def measure(table: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Seconds per run of every command, the commands interleaved round by round."""
    compile_crgate()
    for _ in range(WARM_UP_ROUNDS):
        for command in table.values():
            run_once(command)
    samples: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(runs):
        for name, command in table.items():
            samples[name].append(run_once(command))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="timed rounds (at least 5; default 20)")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5: a median of fewer is noise")
    samples = measure(commands(), args.runs)
    anchor, *ours = samples
    base = statistics.median(samples[anchor])
    width = max(len(name) for name in samples)
    print(f"median of {args.runs} interleaved runs each; target ratio <= {TARGET:.2f}")
    print(f"{anchor:<{width}}  {base * 1000:6.1f} ms")
    for name in ours:
        median = statistics.median(samples[name])
        ratio = median / base
        verdict = "ok" if ratio <= TARGET else "OVER"
        print(f"{name:<{width}}  {median * 1000:6.1f} ms  ratio {ratio:.2f}  {verdict}")


if __name__ == "__main__":
    main()
