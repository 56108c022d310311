"""A busy scan quota: how long crgate takes to judge images when the cloud's concurrent-scan quota is the
limit, and what it cost in refused ``Scan`` calls.

Two runs of the installed ``crgate check`` (a subprocess, exactly as CI runs it) against an emulator on
loopback whose quota is enforced per cloud:

- ``wide``: N images (default 30) at ``--concurrency N`` against a quota of 10; every scan takes D seconds
  (default 3). The quota allows ceil(N / 10) waves, so the ideal wall time is ceil(N / 10) * D.
- ``held``: 2 images while other clients hold all 10 slots for H seconds (default 45); ideal H + D.

Target (issue: the real cloud around the scan): every image judged, each scanned once (one ``started``
entry per image in the emulator's scan log), in little more than the quota allows.

Run: ``python bench/quota.py [--images 30] [--duration 3] [--hold 45]``. Prints a Markdown table; not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator


def scenario(count: int, duration: float, quota: dict[str, Any]) -> dict[str, Any]:
    images = [{"id": f"crpquota{n}", "tags": [f"t{n}"], "scan": {"duration": duration}} for n in range(count)]
    return {"quota": quota, "registries": [{"id": "crpbench", "repositories": [{"name": "app", "images": images}]}]}


def run(name: str, data: dict[str, Any], count: int, ideal: float, timeout: float) -> dict[str, Any]:
    crgate = shutil.which("crgate") or sys.exit("crgate is not installed in this environment")
    refs = [f"cr.yandex/crpbench/app:t{n}" for n in range(count)]
    with Emulator(scenario_from_dict(data, source=name)) as emu:
        args = [crgate, "check", "--endpoint", emu.address, "--registry-url", emu.registry_url, "--insecure"]
        args += ["--progress", "none", "--format", "json"]
        args += ["--concurrency", str(count), "--timeout", f"{timeout:g}", *refs]
        started = time.monotonic()
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        log = emu.stats.scan_log()
    outcomes = Counter(entry.outcome for entry in log)
    started_images = Counter(entry.image_id for entry in log if entry.outcome == "started")
    try:
        judged = sum(1 for image in json.loads(done.stdout)["images"] if image["verdict"] in ("pass", "fail"))
    except (ValueError, KeyError):
        judged = 0
    return {
        "run": name,
        "exit": done.returncode,
        "judged": f"{judged}/{count}",
        "scanned once": all(started_images[f"crpquota{n}"] == 1 for n in range(count)),
        "wall": wall,
        "ideal": ideal,
        "Scan calls": len(log),
        "refused": outcomes["refused"],
        "peak slots": max((entry.in_use for entry in log), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds every scan takes")
    parser.add_argument("--hold", type=float, default=45.0, help="seconds other clients hold the whole quota")
    args = parser.parse_args()
    rows = [
        run(
            "wide",
            scenario(args.images, args.duration, {"limit": 10}),
            args.images,
            math.ceil(args.images / 10) * args.duration,
            timeout=600,
        ),
        run(
            "held",
            scenario(2, args.duration, {"limit": 10, "others": {"count": 10, "for": args.hold}}),
            2,
            args.hold + args.duration,
            timeout=600,
        ),
    ]
    print("| run | exit | judged | each scanned once | wall | ideal | over ideal | Scan calls | refused | peak slots |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        over = (row["wall"] / row["ideal"] - 1) * 100
        print(
            f"| {row['run']} | {row['exit']} | {row['judged']} | {'yes' if row['scanned once'] else 'no'} "
            f"| {row['wall']:.1f} s | {row['ideal']:.1f} s | {over:+.0f}% | {row['Scan calls']} | {row['refused']} "
            f"| {row['peak slots']} |"
        )


if __name__ == "__main__":
    main()
