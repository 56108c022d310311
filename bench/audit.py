"""An audit of a large registry: how long ``crgate audit`` takes for 10,000 images, and that it starts no scan.

One run of the installed ``crgate audit`` (a subprocess, exactly as a scheduled pipeline runs it) against
an emulator on loopback serving one registry of R repositories (default 100) holding N images (default
10,000): 70% with a fresh READY result, 15% stale (10 days old), 10% never scanned and 5% failing (one
critical finding). Every image is listed (ImageService.List, 1000 a page) and its last result read
(GetLast); a counts-only policy needs no ListVulnerabilities, ``--policy-findings`` uses a policy with an
ignore rule so that every READY result's findings are listed too.

Target (issue 23): every image audited with its right state, no Scan call, within the run's deadline.

Run: ``python bench/audit.py [--images 10000] [--repositories 100] [--concurrency 16] [--policy-findings]``.
Prints a Markdown table row; not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator

DAY = 86400
CRITICAL = {"name": "CVE-2024-1111", "severity": "CRITICAL", "package": "openssl", "version": "1.0"}
MEDIUM = {"name": "CVE-2024-2222", "severity": "MEDIUM", "package": "zlib1g", "version": "1.0"}
POLICY = "version: 1\nthresholds: {critical: 0, high: 0}\nignore:\n  - {id: CVE-2000-0001, reason: bench}\n"


def kind_of(n: int) -> str:
    share = n % 20
    return "fresh" if share < 14 else "stale" if share < 17 else "never_scanned" if share < 19 else "failing"


def image(n: int) -> dict[str, Any]:
    kind = kind_of(n)
    scan: dict[str, Any] = {}
    if kind != "never_scanned":
        scan["last_result"] = {"status": "READY", "age_seconds": 10 * DAY if kind == "stale" else 3600}
    findings = [CRITICAL] if kind == "failing" else [MEDIUM]
    return {"id": f"crpaud{n:07d}", "tags": [f"v{n}"], "findings": findings, "scan": scan}


def scenario(count: int, repositories: int) -> dict[str, Any]:
    repos: list[dict[str, Any]] = [{"name": f"svc{r:03d}", "images": []} for r in range(repositories)]
    for n in range(count):
        repos[n % repositories]["images"].append(image(n))
    return {"registries": [{"id": "crpbench", "repositories": repos}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--policy-findings", action="store_true")
    options = parser.parse_args()
    crgate = shutil.which("crgate") or sys.exit("crgate is not installed in this environment")
    started = time.monotonic()
    data = scenario_from_dict(scenario(options.images, options.repositories), source="bench")
    setup = time.monotonic() - started
    with tempfile.TemporaryDirectory() as tmp, Emulator(data) as emu:
        args = [crgate, "audit", "--endpoint", emu.address, "--registry-url", emu.registry_url, "--insecure"]
        args += ["--registry", "crpbench", "--progress", "none", "--format", "json", "--timeout", "900"]
        args += ["--concurrency", str(options.concurrency)]
        if options.policy_findings:
            policy = Path(tmp) / "policy.yaml"
            policy.write_text(POLICY, encoding="utf-8")
            args += ["--policy", str(policy)]
        started = time.monotonic()
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        calls = dict(emu.stats.calls)
    report = json.loads(done.stdout)
    states = Counter(entry["state"] for entry in report["images"])
    right = sum(1 for entry in report["images"] if entry["state"] == kind_of(int(entry["image_id"][6:])))
    print("| images | repositories | policy | concurrency | exit | right state | Scan calls | wall | images/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    policy_name = "ignore rule (findings listed)" if options.policy_findings else "counts only"
    print(
        f"| {options.images} | {options.repositories} | {policy_name} | {options.concurrency} | {done.returncode} | "
        f"{right}/{options.images} | {calls.get('ScannerService.Scan', 0)} | {wall:.1f} s | "
        f"{options.images / wall:.0f} |"
    )
    print(f"\nstates: {dict(states)}; calls: {calls}; scenario set-up {setup:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
