"""Reports at scale: fetch, judge and write every report format for 20,000 and 100,000 findings.

One image of N findings (N/1000 pages of ``ListVulnerabilities``) is fetched through crgate's real client
from an emulator on loopback, judged under a policy of 200 ignore rules plus a fixable-only limit, and
written in every report format crgate has, each to its own file, as ``crgate check --output ...`` does.

Each measurement is a fresh subprocess, so its peak resident memory (``VmHWM``) belongs to that run
alone; the emulator serves from another process, so its own work does not share crgate's interpreter
(it still answers each page while crgate waits, so its paging cost is on the path: see
``docs/performance.md``). Wall time is the median of ``--repeat`` runs; the RSS is the largest seen.

Wall time depends on what else the machine runs; CPU time (``time.process_time``, all threads of the
measured process) much less, so both are printed.

Run: ``python bench/findings.py [--repeat 5] [--sizes 100,20000,100000] [--formats all|six|text,json,...]``:
``six`` is the six formats of the issue's goal (text, json, sarif, gitlab, junit, markdown), ``all``
every format crgate has (nine). The machine's load average is printed before and after.
The script also measures an older checkout (``PYTHONPATH=/work/main/src python bench/findings.py``): when
``crgate.report.write_all`` is absent it writes each format's ``render()`` string instead, which is what
the CLI did before. Prints a Markdown table; not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE", "UNDEFINED")
LANG_TYPES = ("jar", "gobinary", "python-pkg", "node-pkg")
SIX_FORMATS = ("text", "json", "sarif", "gitlab", "junit", "markdown")
"""The formats crgate had when the goals were set (issue 11): "all six formats"."""


def findings(count: int) -> list[dict[str, str]]:
    """Findings shaped like the real scanner's: ``source: trivy``, Debian ``TEMP-`` ids, language packages."""
    rows = []
    for n in range(count):
        lang = n % 5 == 0
        name = f"TEMP-{n:07d}-A1B2C3" if n % 17 == 0 else f"CVE-2024-{n:05d}"
        rows.append(
            {
                "name": name,
                "severity": SEVERITIES[n % len(SEVERITIES)],
                "package": f"github.com/example/module-{n % 500}" if lang else f"libpackage{n % 500}",
                "version": "1.0.0" if lang else "1.0.0-1+deb12u1",
                "fixed_by": ("1.0.1" if lang else "1.0.0-1+deb12u2") if n % 3 else "",
                "link": f"https://avd.aquasec.com/nvd/{name.lower()}",
                "source": "trivy",
                "origin": "lang" if lang else "os",
                "type": LANG_TYPES[n % len(LANG_TYPES)] if lang else "debian",
            }
        )
    return rows


def scenario(sizes: list[int]) -> dict[str, Any]:
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
    return {"registries": [{"id": "crpbench", "repositories": [{"name": "app", "images": images}]}]}


# -- the emulator process -----------------------------------------------------------------------------


def serve(data_path: str) -> None:
    """Serve the scenario until stdin closes; print the address first."""
    from crgate_emulator.scenario import scenario_from_dict
    from crgate_emulator.server import Emulator

    data = json.loads(Path(data_path).read_text(encoding="utf-8"))
    with Emulator(scenario_from_dict(data, source="bench")) as emulator:
        print(emulator.address, flush=True)
        sys.stdin.read()


# -- one measured run (a subprocess) -------------------------------------------------------------------


def _policy() -> Any:
    from crgate.model import IgnoreRule, Policy

    # 200 rules: half match real findings (with package globs), half match nothing.
    rules = tuple(
        IgnoreRule(id=f"CVE-2024-{n * 97 % 40000:05d}", reason="bench", package="lib*" if n % 2 else None)
        for n in range(200)
    )
    return Policy(
        version=1,
        thresholds={"critical": 0, "high": 0, "total": 100},
        source="bench",
        fixable_only=frozenset({"high"}),
        ignore=rules,
    )


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(address: str, image_id: str, formats: list[str], out_dir: str) -> None:
    """Fetch, judge and write ``formats``; print one JSON line of timings, peak RSS and output size."""
    import crgate.report
    from crgate import gate
    from crgate.model import Target
    from crgate.scanner.client import ScannerClient
    from crgate.scanner.transport import Connection, ConnectionSettings
    from crgate.timing import Deadline

    if os.environ.get("CRGATE_BENCH_NO_GC") == "1":  # what-if: the cycle collector paused for the whole run
        gc.disable()
    gate_policy = _policy()
    available = [fmt for fmt in formats if fmt in crgate.report.FORMATS]
    paths = {fmt: Path(out_dir) / f"report.{fmt}" for fmt in available}
    rss_before = _peak_rss_kb()
    connection = Connection(ConnectionSettings(endpoint=address, insecure=True))
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        report = gate.run(
            [Target(label=f"cr.yandex/crpbench/app:{image_id}", image_id=image_id)],
            ScannerClient(connection),
            gate_policy,
            Deadline(300),
            options=gate.RunOptions(concurrency=1),
        ).report
        assert report.images[0].error is None, report.images[0].error
        judged, cpu_judged = time.perf_counter(), time.process_time()
        rss_judged = _peak_rss_kb()
        if hasattr(crgate.report, "write_all"):
            crgate.report.write_all(report, [(fmt, str(path)) for fmt, path in paths.items()])
        else:  # an older checkout: one string per format, as its CLI wrote them
            for fmt, path in paths.items():
                path.write_text(crgate.report.render(fmt, report), encoding="utf-8")
        finished, cpu_finished = time.perf_counter(), time.process_time()
    finally:
        connection.close()
    print(
        json.dumps(
            {
                "seconds": finished - started,
                "fetch_judge_seconds": judged - started,
                "write_seconds": finished - judged,
                "cpu_seconds": cpu_finished - cpu_started,
                "write_cpu_seconds": cpu_finished - cpu_judged,
                "rss_start_kb": rss_before,
                "rss_judged_kb": rss_judged,
                "rss_peak_kb": _peak_rss_kb(),
                "bytes": sum(path.stat().st_size for path in paths.values()),
                "formats": available,
            }
        )
    )


# -- the driver -----------------------------------------------------------------------------------------


def _child_env(cache: str) -> dict[str, str]:
    """The measured runs import crgate from compiled bytecode, as an installed crgate does (pip compiles it
    at install): a shell with ``PYTHONDONTWRITEBYTECODE`` set would have every run compile crgate's modules
    from source again (about 0.3 s, mostly inside the "write" phase, where the formats are imported)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _child(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="100,20000,100000")
    parser.add_argument(
        "--formats", default="all", help="comma-separated formats, 'six' (the original six) or 'all' (default)"
    )
    parser.add_argument("--serve", metavar="DATA", help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=4, metavar=("ADDRESS", "IMAGE", "FORMATS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.measure:
        address, image_id, formats, out_dir = args.measure
        measure(address, image_id, formats.split(","), out_dir)
        return

    import crgate.report

    sizes = [int(size) for size in args.sizes.split(",")]
    named = {"all": crgate.report.FORMATS, "six": SIX_FORMATS}
    formats = list(named.get(args.formats, args.formats.split(",")))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="crgate-bench-") as tmp:
        data_path = os.path.join(tmp, "scenario.json")
        env = _child_env(os.path.join(tmp, "pycache"))
        Path(data_path).write_text(json.dumps(scenario(sizes)), encoding="utf-8")
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            address = server.stdout.readline().strip()
            rows = {}
            for size in sizes:
                run = ("--measure", address, f"crpbench{size}", ",".join(formats), tmp)
                _child(*run, env=env)  # warm the emulator's caches, and compile crgate's bytecode
                samples = [_child(*run, env=env) for _ in range(args.repeat)]
                rows[size] = samples
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)
    written = rows[sizes[0]][0]["formats"]
    load = " / ".join(f"{one:.2f}, {five:.2f}" for one, five, _ in (load_before, os.getloadavg()))
    print(f"formats: {', '.join(written)}; median of {args.repeat} runs; peak RSS = largest VmHWM of the runs")
    print(f"load average (1 min, 5 min) before / after: {load}\n")
    print("| findings | wall | fetch+judge | write | CPU (write) | peak RSS | RSS before run | output |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        samples = rows[size]
        wall = statistics.median(s["seconds"] for s in samples)
        fetch = statistics.median(s["fetch_judge_seconds"] for s in samples)
        write = statistics.median(s["write_seconds"] for s in samples)
        cpu = statistics.median(s["cpu_seconds"] for s in samples)
        cpu_write = statistics.median(s["write_cpu_seconds"] for s in samples)
        peak = max(s["rss_peak_kb"] for s in samples) / 1024
        start = max(s["rss_start_kb"] for s in samples) / 1024
        size_mb = samples[0]["bytes"] / 1e6
        print(
            f"| {size:,} | {wall:.2f} s | {fetch:.2f} s | {write:.2f} s | {cpu:.2f} s ({cpu_write:.2f} s) "
            f"| {peak:.0f} MB | {start:.0f} MB | {size_mb:.1f} MB |"
        )
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        grow = (max(s["rss_peak_kb"] for s in rows[large]) - max(s["rss_peak_kb"] for s in rows[small])) * 1024
        per_us = (
            statistics.median(s["seconds"] for s in rows[large]) - statistics.median(s["seconds"] for s in rows[small])
        ) / (large - small)
        print(
            f"\nper finding from {small:,} to {large:,}: {per_us * 1e6:.1f} us and "
            f"{grow / (large - small):.0f} bytes of peak RSS"
        )


if __name__ == "__main__":
    main()
