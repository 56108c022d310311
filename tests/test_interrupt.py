"""Ctrl-C and SIGTERM stop a run promptly with exit 130 and name the scans left running."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import DIGEST_A, DIGEST_B, image, scenario


def read_lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line)
    sink.put(None)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_run_and_names_running_scans(start_emulator, tmp_path, sig):
    emu = start_emulator(
        scenario(image("crpslow", "slow", DIGEST_A, duration=120), image("crpslow2", "slow2", DIGEST_B, duration=120))
    )
    report = tmp_path / "report.json"
    env = {**os.environ}
    env.pop("YC_IAM_TOKEN", None)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "crgate.cli", "check", "--endpoint", emu.address, "--insecure",
            "--registry-url", emu.registry_url,
            "--progress", "lines", "--output", f"json={report}",
            "cr.yandex/crptest/app:slow", "cr.yandex/crptest/app:slow2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stderr, lines), daemon=True).start()
    scanning = set()
    stderr_seen = []
    while len(scanning) < 2:
        line = lines.get(timeout=30)
        assert line is not None, "crgate ended before both scans were running:\n" + "".join(stderr_seen)
        stderr_seen.append(line)
        if ": scanning" in line:
            scanning.add(line.split(": scanning")[0].split("] ")[1])
    process.send_signal(sig)
    try:
        process.wait(timeout=10)  # "promptly": far less than the 120 s scans or the 20 s per-call deadline
    finally:
        process.kill()
    rest = []
    while (line := lines.get(timeout=5)) is not None:
        rest.append(line)
    stderr = "".join(stderr_seen + rest)
    assert process.returncode == 130, stderr
    assert "these scans were left running" in stderr
    for ref in ("cr.yandex/crptest/app:slow", "cr.yandex/crptest/app:slow2"):
        assert any(ref in line and "scan result crgsr" in line for line in rest), stderr
    doc = json.loads(report.read_text())
    assert doc["exit_code"] == 130 and doc["verdict"] == "error"
    assert {i["error"]["kind"] for i in doc["images"]} == {"interrupted"}
    assert all(i["scan_result_id"] for i in doc["images"])


def test_an_interruption_while_scan_is_being_asked_says_a_scan_may_have_been_started(start_emulator):
    """Issue 10: never 'no scan was left running' when a Scan call was in flight: it may have started one."""
    data = scenario(image("crpslow", "slow", DIGEST_A, duration=120))
    data["chaos"] = {"seed": 1, "rate": 1.0, "kinds": ["stall"], "methods": ["ScannerService.Scan"]}
    data["chaos"]["stall_seconds"] = 60  # the Scan call hangs: its answer has not come when Ctrl-C does
    emu = start_emulator(data)
    env = {k: v for k, v in os.environ.items() if k != "YC_IAM_TOKEN"}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "crgate.cli", "check", "--endpoint", emu.address, "--insecure",
            "--registry-url", emu.registry_url, "--progress", "lines", "cr.yandex/crptest/app:slow",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stderr, lines), daemon=True).start()
    seen = []
    while not any(": starting" in line for line in seen):
        line = lines.get(timeout=30)
        assert line is not None, "".join(seen)
        seen.append(line)
    deadline = time.monotonic() + 10
    while emu.stats.calls["ScannerService.Scan"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the Scan call has reached the server and hangs there
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    finally:
        process.kill()
    while (line := lines.get(timeout=5)) is not None:
        seen.append(line)
    stderr = "".join(seen)
    assert process.returncode == 130, stderr
    assert "no scan was left running" not in stderr
    assert "a scan may have been started for image crpslow (cr.yandex/crptest/app:slow)" in stderr
