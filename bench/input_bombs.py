"""Hostile inputs through the real ``crgate`` command: each must end with exit 2, quickly.

Run: ``python bench/input_bombs.py [--runs 3]``. Prints the exit code and the median wall time of each
case (Python start-up and imports included); the numbers are recorded in docs/reliability.md. Not a
test: the tests (tests/test_input_bounds.py) check exit codes and messages, never time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def merge_bomb() -> str:
    """Eleven lines of merge keys, ten wide and nine deep, and no image at the bottom."""
    lines = ["a0: &a0 {build: .}"]
    lines += [f"a{d}: &a{d} {{<<: [{', '.join([f'*a{d - 1}'] * 10)}]}}" for d in range(1, 10)]
    return "\n".join(lines) + "\nservices:\n  web:\n    <<: *a9\n"


CASES: dict[str, tuple[str, str, list[str]]] = {
    # name: (file name, content, crgate arguments with {path})
    "manifest merge bomb": ("m.yaml", merge_bomb(), ["check", "--emulator", "--from-manifest", "{path}"]),
    "manifest self-merge": (
        "m.yaml",
        "base: &b\n  x: 1\n  <<: *b\nservices:\n  web:\n    <<: *b\n",
        ["check", "--emulator", "--from-manifest", "{path}"],
    ),
    "manifest nested 5,000 deep": (
        "m.yaml",
        "kind: Pod\nspec: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        ["check", "--emulator", "--from-manifest", "{path}"],
    ),
    "policy nested 100,000 deep": (
        "p.yaml",
        "version: 1\nthresholds: " + "[" * 100_000 + "]" * 100_000 + "\n",
        ["policy", "validate", "{path}"],
    ),
    "policy from /dev/zero": ("", "", ["policy", "validate", "/dev/zero"]),
    "scenario merge bomb": ("s.yaml", merge_bomb(), ["emulator", "--data", "{path}"]),
    "saved report nested 100,000 deep": ("r.json", "[" * 100_000 + "]" * 100_000, ["evaluate", "{path}"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    crgate = str(Path(sys.executable).with_name("crgate"))
    with tempfile.TemporaryDirectory() as directory:
        for name, (file_name, content, arguments) in CASES.items():
            path = Path(directory) / (file_name or "unused")
            path.write_text(content)
            command = [crgate, *(a.format(path=path) for a in arguments)]
            samples, codes = [], set()
            for _ in range(args.runs):
                started = time.perf_counter()
                done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
                samples.append(time.perf_counter() - started)
                codes.add(done.returncode)
            print(f"{name:36} exit {','.join(map(str, sorted(codes)))}  {statistics.median(samples):.2f} s")


if __name__ == "__main__":
    main()
