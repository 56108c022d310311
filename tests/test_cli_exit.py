"""The CLI's one exit path for what ends a command from outside: a reader that goes away."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_is_exit_3_without_a_traceback():
    """``crgate check ... | head -c0``: the report was not delivered, so the step must not pass."""
    command = [sys.executable, "-m", "crgate.cli", "check", "--emulator", "cr.yandex/crpdemo/app:clean"]
    process = subprocess.Popen(
        [*command, "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before crgate writes its report
    try:
        stderr = process.stderr.read()
        code = process.wait(timeout=120)
    finally:
        process.kill()
    assert code == 3, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert "crgate: error: the output was closed before all of it was written (exit 3)" in stderr
