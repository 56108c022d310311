"""Commands other than ``check``: ``emulator`` as a process, and usage errors (``policy validate`` is in
test_policy_validate.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import run_cli

CRGATE = [sys.executable, "-m", "crgate.cli"]


def test_emulator_command_prints_its_address_and_serves_the_demo():
    env = {k: v for k, v in os.environ.items() if k != "YC_IAM_TOKEN"}
    server = subprocess.Popen(
        [*CRGATE, "emulator", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        address = server.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        registry = server.stdout.readline().strip()
        assert registry.startswith("http://127.0.0.1:"), registry
        result = run_cli(
            ["check", "--endpoint", address, "--registry-url", registry, "--insecure", "--progress", "none"]
            + ["cr.yandex/crpdemo/app:clean"]
        )
        assert result.code == 0, result.output
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0
    finally:
        server.kill()


def test_emulator_with_bad_data_file_is_exit_2(tmp_path):
    data = tmp_path / "scenario.yaml"
    data.write_text("registries:\n  - id: crpx\n    repositorie: []\n")
    result = run_cli(["emulator", "--data", str(data)])
    assert result.code == 2
    assert str(data) in result.stderr and "repositorie" in result.stderr


def test_check_with_emulator_data_file(tmp_path):
    data = tmp_path / "scenario.yaml"
    data.write_text(
        "registries:\n"
        "  - id: crpmine\n"
        "    repositories:\n"
        "      - name: svc\n"
        "        images:\n"
        "          - id: crpimage1\n"
        "            tags: [v1]\n"
        "            findings:\n"
        "              - {name: CVE-2024-1, severity: HIGH, package: zlib}\n"
        "            scan: {duration: 0.1}\n"
    )
    result = run_cli(
        ["check", "--emulator", "--emulator-data", str(data), "--progress", "none", "cr.yandex/crpmine/svc:v1"]
    )
    assert result.code == 1, result.output
    assert "high 1 > 0" in result.stdout


def test_unknown_option_is_exit_2_with_click_message():
    result = run_cli(["check", "--no-such-flag"])
    assert result.code == 2
    assert "No such option" in result.stderr


def test_timeout_must_be_positive():
    result = run_cli(["check", "--emulator", "--timeout", "0", "cr.yandex/crpdemo/app:clean"])
    assert result.code == 2
    assert "--timeout" in result.stderr


def test_help_and_version_exit_0():
    assert run_cli(["--help"]).code == 0
    version = run_cli(["--version"])
    assert version.code == 0 and version.stdout.startswith("crgate ")
