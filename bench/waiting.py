"""Waiting: detection lag and operation polls for emulator scans of several durations.

For each nominal duration, ``--runs`` scans with durations spread over one second around it (real scans
do not end on whole seconds; 10.5 s gives 10.1, 10.3, ... 10.9 s) are waited on by crgate's real client
and, in the same run on identical images, by a fixed 1 s poller (what the ``yandexcloud`` SDK's waiter
does). Lag = wall time from Scan to result minus the scan's duration; the table shows its median (p50)
and 90th percentile (p90) and the median number of polls. Goals (issue 11): lag p50 <= 1.0 s at 10 s,
<= 1.5 s at 30 s and 60 s; at most 40 polls for a 60 s scan and at most 0.7x the fixed poller's polls.
All scans run concurrently, so the whole bench takes about as long as the longest scan.

Run: ``python bench/waiting.py [--durations 2.5 10.5 30.5 60.5 120.5] [--runs 5]``. Prints a Markdown
table; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_service_pb2, scanner_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc
from crgate.scanner.client import ScannerClient
from crgate.scanner.transport import Connection, ConnectionSettings
from crgate.timing import Deadline
from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator


def build_scenario(durations: list[float]) -> dict:
    images = []
    for index, duration in enumerate(durations):
        for kind in ("crgate", "fixed"):
            images.append(
                {
                    "id": f"crpbench{kind}{index}",
                    "tags": [f"{kind}-{index}"],
                    "digest": "sha256:" + f"{index:x}{len(kind):x}".ljust(64, "0"),
                    "findings": [],
                    "scan": {"duration": duration},
                }
            )
    # Every scan of the bench runs at once: no quota (Yandex allows 10 per cloud; the bench is not a cloud).
    return {
        "max_concurrent_scans": None,
        "registries": [{"id": "crpbench", "repositories": [{"name": "app", "images": images}]}],
    }


def crgate_wait(address: str, image_id: str) -> tuple[float, int]:
    connection = Connection(ConnectionSettings(endpoint=address, insecure=True))
    try:
        client = ScannerClient(connection)
        started = time.monotonic()
        deadline = Deadline(600)
        handle = client.start_scan(image_id, deadline)
        handle.result(deadline)
        return time.monotonic() - started, handle.polls
    finally:
        connection.close()


def fixed_poller_wait(address: str, image_id: str, interval: float = 1.0) -> tuple[float, int]:
    """The SDK waiter's strategy: Scan, then OperationService.Get every ``interval`` seconds."""
    with grpc.insecure_channel(address) as channel:
        scanner = scanner_service_pb2_grpc.ScannerServiceStub(channel)
        operations = operation_service_pb2_grpc.OperationServiceStub(channel)
        started = time.monotonic()
        op = scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id), timeout=20)
        polls = 0
        while not op.done:
            time.sleep(interval)
            polls += 1
            op = operations.Get(operation_service_pb2.GetOperationRequest(operation_id=op.id), timeout=20)
        return time.monotonic() - started, polls


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--durations", type=float, nargs="+", default=[2.5, 10.5, 30.5, 60.5, 120.5])
    parser.add_argument("--runs", type=int, default=5, help="scans per duration, spread over one second")
    args = parser.parse_args()
    nominal: list[float] = args.durations
    spread = [(i + 0.5) / args.runs - 0.5 for i in range(args.runs)]
    durations = [d + offset for d in nominal for offset in spread]
    scenario = scenario_from_dict(build_scenario(durations), source="bench")
    with Emulator(scenario) as emulator, ThreadPoolExecutor(max_workers=2 * len(durations)) as pool:
        ours = [pool.submit(crgate_wait, emulator.address, f"crpbenchcrgate{i}") for i in range(len(durations))]
        theirs = [pool.submit(fixed_poller_wait, emulator.address, f"crpbenchfixed{i}") for i in range(len(durations))]
        measured = [(d, a.result(), b.result()) for d, a, b in zip(durations, ours, theirs, strict=True)]
    print(f"{args.runs} scans per duration, spread over a second around it; lag p50 / p90, median polls")
    print()
    print("| scan | crgate lag p50 | p90 | crgate polls | fixed 1 s lag p50 | p90 | fixed 1 s polls | polls ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for index, duration in enumerate(nominal):
        rows = measured[index * args.runs : (index + 1) * args.runs]
        lag = [wall - d for d, (wall, _), _ in rows]
        polls = [p for _, (_, p), _ in rows]
        fixed_lag = [wall - d for d, _, (wall, _) in rows]
        fixed_polls = [p for _, _, (_, p) in rows]
        print(
            f"| {duration:g} s | {percentile(lag, 0.5):.2f} s | {percentile(lag, 0.9):.2f} s | "
            f"{statistics.median(polls):g} | {percentile(fixed_lag, 0.5):.2f} s | {percentile(fixed_lag, 0.9):.2f} s | "
            f"{statistics.median(fixed_polls):g} | {statistics.median(polls) / statistics.median(fixed_polls):.2f} |"
        )


if __name__ == "__main__":
    main()
