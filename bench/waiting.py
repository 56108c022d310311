"""Waiting: detection lag and operation polls for emulator scans of several durations.

For each duration crgate's real client scans one emulator image; lag = wall time from Scan to result
minus the scan's duration. In the same run a fixed 1 s poller (what the ``yandexcloud`` SDK's waiter
does) waits on an identical image. Targets: lag <= max(0.5 s, 20% of the duration); at most 25 polls
for a 60 s scan. All scans run concurrently, so the whole bench takes about as long as the longest.

Run: ``python bench/waiting.py [--durations 2 10 30 60]``. Prints a Markdown table; not a test.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from yandex.cloud.containerregistry.v1 import scanner_service_pb2, scanner_service_pb2_grpc
from yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc

from crgate.emulator.scenario import scenario_from_dict
from crgate.emulator.server import Emulator
from crgate.scanner.client import ScannerClient
from crgate.scanner.transport import Connection, ConnectionSettings
from crgate.timing import Deadline


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
    return {"registries": [{"id": "crpbench", "repositories": [{"name": "app", "images": images}]}]}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--durations", type=float, nargs="+", default=[2.0, 10.0, 30.0, 60.0])
    parser.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="added to every duration; whole-second scans flatter a 1 s poller (its ticks land on them)",
    )
    args = parser.parse_args()
    durations: list[float] = [d + args.offset for d in args.durations]
    scenario = scenario_from_dict(build_scenario(durations), source="bench")
    with Emulator(scenario) as emulator, ThreadPoolExecutor(max_workers=2 * len(durations)) as pool:
        ours = [pool.submit(crgate_wait, emulator.address, f"crpbenchcrgate{i}") for i in range(len(durations))]
        theirs = [pool.submit(fixed_poller_wait, emulator.address, f"crpbenchfixed{i}") for i in range(len(durations))]
        rows = []
        for duration, mine, fixed in zip(durations, ours, theirs, strict=True):
            (wall, polls), (fixed_wall, fixed_polls) = mine.result(), fixed.result()
            target = max(0.5, 0.2 * duration)
            rows.append(
                f"| {duration:g} s | {wall - duration:.2f} s | {target:.1f} s | {polls} | "
                f"{fixed_wall - duration:.2f} s | {fixed_polls} |"
            )
    print("| scan | crgate lag | lag target | crgate polls | fixed 1 s lag | fixed 1 s polls |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
