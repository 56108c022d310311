"""Finding-level cost: fetch, judge and render an image of 20,000 findings (20 pages) vs 100 findings.

Target (issue: finding-level policy): at most 50 microseconds per finding beyond the fixed cost of a
100-finding image, with a policy of 200 ignore rules (indexed by CVE, so no rules x findings globbing),
and memory proportional to the findings. The run goes through the real client, a real emulator on
loopback and both renderers (text and JSON), exactly as ``crgate check --format json`` does.

Run: ``python bench/findings.py [--repeat 3]``. Prints a Markdown table; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from crgate import gate
from crgate.emulator.scenario import scenario_from_dict
from crgate.emulator.server import Emulator
from crgate.model import IgnoreRule, Policy, Target
from crgate.report import render
from crgate.scanner.client import ScannerClient
from crgate.scanner.transport import Connection, ConnectionSettings
from crgate.timing import Deadline

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED")


def findings(count: int) -> list[dict]:
    return [
        {
            "name": f"CVE-2024-{n:05d}",
            "severity": SEVERITIES[n % len(SEVERITIES)],
            "package": f"package-{n % 500}",
            "version": "1.0.0",
            "fixed_by": "1.0.1" if n % 3 else "",
            "link": f"https://nvd.nist.gov/vuln/detail/CVE-2024-{n:05d}",
            "origin": "os" if n % 4 else "lang",
            "type": "debian" if n % 4 else "python-pkg",
            "source": "trivy",
        }
        for n in range(count)
    ]


def policy() -> Policy:
    # 200 rules: half match real findings (with package globs), half match nothing.
    rules = tuple(
        IgnoreRule(id=f"CVE-2024-{n * 97 % 40000:05d}", reason="bench", package="package-*" if n % 2 else None)
        for n in range(200)
    )
    return Policy(
        version=1,
        thresholds={"critical": 0, "high": 0, "total": 100},
        source="bench",
        fixable_only=frozenset({"high"}),
        ignore=rules,
    )


def one_run(address: str, image_id: str, gate_policy: Policy, trace: bool) -> tuple[float, int, int]:
    """Seconds for resolve-free gate + text + JSON render; peak traced bytes (when traced); output size.

    Tracing memory slows allocation severalfold, so timed runs and the memory run are separate.
    """
    connection = Connection(ConnectionSettings(endpoint=address, insecure=True))
    try:
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        targets = [Target(label=f"cr.yandex/crpbench/app:{image_id}", image_id=image_id)]
        report = gate.run(targets, ScannerClient(connection), gate_policy, Deadline(300), concurrency=1).report
        outcomes = report.images
        size = len(render("text", report)) + len(render("json", report))
        elapsed = time.perf_counter() - started
        peak = 0
        if trace:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert outcomes[0].error is None, outcomes[0].error
        return elapsed, peak, size
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = (100, 20_000)
    images = [
        {
            "id": f"crpbench{size}",
            "tags": [str(size)],
            "digest": "sha256:" + f"{size:064x}",
            "findings": findings(size),
            "scan": {"duration": 0.0},
        }
        for size in sizes
    ]
    data = {"registries": [{"id": "crpbench", "repositories": [{"name": "app", "images": images}]}]}
    gate_policy = policy()
    with Emulator(scenario_from_dict(data, source="bench")) as emulator:
        rows = {}
        for size in sizes:
            samples = [one_run(emulator.address, f"crpbench{size}", gate_policy, False) for _ in range(args.repeat)]
            _, peak, out = one_run(emulator.address, f"crpbench{size}", gate_policy, True)
            rows[size] = (statistics.median(s[0] for s in samples), peak, out)
    small, large = rows[sizes[0]], rows[sizes[1]]
    per_finding_us = (large[0] - small[0]) / (sizes[1] - sizes[0]) * 1e6
    per_finding_bytes = (large[1] - small[1]) / (sizes[1] - sizes[0])
    print("| findings | wall (median) | peak traced memory | text+JSON output |")
    print("| --- | --- | --- | --- |")
    for size in sizes:
        wall, peak, out = rows[size]
        print(f"| {size:,} | {wall * 1000:.1f} ms | {peak / 1e6:.1f} MB | {out / 1e6:.2f} MB |")
    print(
        f"\nper finding beyond the 100-finding image: {per_finding_us:.1f} us (target <= 50 us), "
        f"{per_finding_bytes:.0f} bytes of peak memory"
    )


if __name__ == "__main__":
    main()
