"""Start-up cost: ``crgate --version`` against ``python -c "import click"`` (target ratio <= 1.3).

Run: ``python bench/startup.py [--runs 30]``. Prints medians and the ratio; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    # The console script users run (bin/crgate next to this interpreter), not ``python -m``.
    crgate = [str(Path(sys.executable).with_name("crgate")), "--version"]
    click_only = [sys.executable, "-c", "import click"]
    median_seconds(crgate, 3)  # warm the file cache and .pyc files
    base = median_seconds(click_only, args.runs)
    ours = median_seconds(crgate, args.runs)
    print(f"python -c 'import click': {base * 1000:.1f} ms (median of {args.runs})")
    print(f"crgate --version:         {ours * 1000:.1f} ms (median of {args.runs})")
    print(f"ratio: {ours / base:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
