"""The README's promises hold: its help blocks match the CLI, its commands are what CI and users run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_cli

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
CRGATE = [sys.executable, "-m", "crgate.cli"]


def readme_block(marker: str) -> str:
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```\n(.*?)\n```", README, re.S)
    assert match, f"README has no block after <!-- {marker} -->"
    return match.group(1)


@pytest.mark.parametrize(
    ("marker", "args"),
    [("help:crgate", ["--help"]), ("help:check", ["check", "--help"]), ("help:audit", ["audit", "--help"])],
)
def test_readme_help_matches_the_cli(marker, args):
    result = run_cli(args, env={"COLUMNS": "80"})
    assert result.code == 0
    assert result.stdout.rstrip() == readme_block(marker), "run the CLI with COLUMNS=80 and paste into README"


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


def test_readme_test_command_is_what_ci_runs():
    test_command = shell_blocks()[1]
    # Two pytest-xdist workers (a test extra), each module whole on one (a module-scoped fixture, such as the
    # GitLab job runs, is built once, not once per worker).
    pytest_command = ".venv/bin/python -m pytest -n 2 --dist loadscope"
    assert test_command.endswith(" && " + pytest_command)
    # The emulator is its own distribution: the test extra names it, the same pip command gives its path.
    assert ".venv/bin/pip install -e '.[test]' -e ./emulator &&" in test_command
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pip install --quiet -e '.[test]' -e ./emulator\n" in ci
    assert ci.rstrip().splitlines()[-1] == pytest_command


def test_quick_start_installs_crgate_with_its_emulator():
    quick_start = shell_blocks()[0]
    assert ".venv/bin/pip install . ./emulator &&" in quick_start and "--emulator" in quick_start


def test_quick_start_demo_exits_1_with_a_table_for_each_image(tmp_path):
    quick_start = shell_blocks()[0]
    args = quick_start.split(".venv/bin/crgate ", 1)[1].split()
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("YC_IAM_TOKEN", None)
    done = subprocess.run(
        [*CRGATE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "cr.yandex/crpdemo/app:clean  PASS" in done.stdout
    assert "cr.yandex/crpdemo/app:vulnerable  FAIL" in done.stdout
    assert "FAIL: 1 of 2 images violates the policy" in done.stdout
    assert "policy: built-in default" in done.stdout


def test_cli_start_up_path_imports_no_grpc():
    code = "import sys, crgate.cli\nprint([m for m in ('grpc', 'yandex', 'google.protobuf') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_version_runs_without_grpc():
    code = (
        "import sys\nfrom crgate.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('grpc' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["crgate 0.1.0", "False"]


def test_every_documented_exit_code_is_in_the_enum():
    from crgate.exitcodes import ExitCode

    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", README, re.M)}
    assert documented == {int(code) for code in ExitCode}


def test_policy_examples_in_readme_are_valid(tmp_path):
    block = re.search(r"```yaml\n(.*?)\n```", README, re.S)
    assert block
    path = tmp_path / "p.yaml"
    path.write_text(block.group(1))
    result = run_cli(["policy", "validate", str(path)])
    assert result.code == 0, result.output
    assert "valid crgate policy" in result.stdout


def test_readme_mentions_the_paths_it_documents():
    for path in re.findall(r"`((?:src|emulator|policy|bench|docs)/[\w./-]+)`", README):
        assert (REPO_ROOT / path).exists(), path
    assert Path(REPO_ROOT / "action.yml").exists()
