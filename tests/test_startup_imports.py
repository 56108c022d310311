"""The ``--help`` and ``--version`` paths load click, a few of crgate's own small modules and nothing more.

Each check runs the command in a fresh interpreter (the one running the tests) and compares the
modules it ended with against those of ``python -c "import click"`` in the same interpreter: what click
loads at import is the anchor's, not ours. Everything beyond it must be on the allow-lists below, so a
new import on the start-up path fails here until someone decides it is worth every CI job's time
(``bench/startup.py`` measures it; ``docs/performance.md`` records the numbers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CRGATE_MODULES = frozenset(
    {
        "crgate",
        "crgate.cli",
        "crgate.defaults",  # the defaults --help shows
        "crgate.exitcodes",  # the ExitCode every command returns
        "crgate.report",  # FORMATS for --format's choices (its own imports are the standard library's)
        "crgate.terminal",  # the help width, so that click does not import shutil for it
    }
)
"""crgate's modules allowed at start-up, by full name: a new module of ours is a new decision."""

STDLIB_MODULES = frozenset(
    {
        "gc",  # built into the interpreter (no file read); crgate.report pauses collection while writing
        # click translates its own strings through gettext as commands are declared (the --version and
        # --help options) and while help is written; gettext's first lookup imports locale.
        "locale",
        "_locale",
    }
)
"""Standard-library modules allowed beyond click's import on every path."""

HELP_MODULES = frozenset(
    {
        "textwrap",
        "click._textwrap",
        # `crgate --help` lists `emulator` only when the emulator distribution is installed: find_spec
        # looks for it without importing it (or gRPC).
        "importlib.util",
        "importlib._abc",
    }
)
"""Allowed for help screens only: click wraps help text with them (and imports them then, not before)."""

NEVER = ("grpc", "google.protobuf", "yandex")
"""Packages the start-up path must never load (they take longer to import than all of click)."""

_PROBE = """
import json, sys
sys.argv = ["crgate", *sys.argv[2:]]
from crgate.cli import main
try:
    main()
except SystemExit:
    pass
with open(MODULES_FILE, "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def modules_after(code: str, args: list[str], tmp_path: Path) -> set[str]:
    """The names in ``sys.modules`` when ``code`` (which writes them to MODULES_FILE) has run."""
    out = tmp_path / "modules.json"
    program = f"MODULES_FILE = {str(out)!r}\n{code}"
    subprocess.run([sys.executable, "-c", program, "-", *args], check=True, capture_output=True, text=True)
    return set(json.loads(out.read_text()))


def click_modules(tmp_path: Path) -> set[str]:
    code = "import json, sys, click\nwith open(MODULES_FILE, 'w') as out:\n    json.dump(sorted(sys.modules), out)"
    return modules_after(code, [], tmp_path)


def _never_loaded(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if any(name == p or name.startswith(p + ".") for p in NEVER))


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--version"], CRGATE_MODULES | STDLIB_MODULES),
        (["--help"], CRGATE_MODULES | STDLIB_MODULES | HELP_MODULES),
        (["check", "--help"], CRGATE_MODULES | STDLIB_MODULES | HELP_MODULES),
        (["doctor", "--help"], CRGATE_MODULES | STDLIB_MODULES | HELP_MODULES),
        (["audit", "--help"], CRGATE_MODULES | STDLIB_MODULES | HELP_MODULES),
    ],
    # Ids from the arguments alone: a set's order changes with each interpreter's hash seed, and
    # pytest-xdist's workers must collect the same ids in the same order.
    ids=["--version", "--help", "check --help", "doctor --help", "audit --help"],
)
def test_start_up_loads_only_allowed_modules_beyond_click(args, allowed, tmp_path):
    anchor = click_modules(tmp_path)
    loaded = modules_after(_PROBE, args, tmp_path)
    assert "crgate.cli" in loaded and "click" in anchor  # the probe ran the command and saw its modules
    assert _never_loaded(loaded) == []
    extra = loaded - anchor - allowed
    assert not extra, (
        f"`crgate {' '.join(args)}` now imports {sorted(extra)} beyond `import click`: import it inside the "
        "function that needs it, or add it to an allow-list in this file with the reason"
    )


def test_the_probe_sees_what_a_command_loads(tmp_path):
    """A command that does load more is caught: the comparison is not vacuous."""
    loaded = modules_after(_PROBE, ["policy", "validate", "/nonexistent/policy.yaml"], tmp_path)
    assert loaded - click_modules(tmp_path) - CRGATE_MODULES - STDLIB_MODULES - HELP_MODULES


def test_the_http_client_loads_ssl_and_urllib_request_only_when_it_makes_a_request(tmp_path):
    """A run on a static token or against a loopback emulator (--insecure) never makes an HTTP request."""
    code = (
        "import json, sys\n"
        "import crgate.connect, crgate.scanner.credentials.choose, crgate.scanner.credentials.http\n"
        "with open(MODULES_FILE, 'w') as out:\n    json.dump(sorted(sys.modules), out)"
    )
    loaded = modules_after(code, [], tmp_path)
    assert "crgate.scanner.credentials.http" in loaded
    assert sorted({"ssl", "urllib.request", "urllib.error", "http.client"} & loaded) == []


@pytest.mark.parametrize("forced", [None, 80, 120])
@pytest.mark.parametrize("columns", [None, "30", "60", "79", "90", "101", "200", "0", "-5", "wide"])
def test_help_width_is_the_one_click_computes_with_shutil(columns, forced, monkeypatch):
    """crgate passes its own width so that click skips shutil; the help must wrap exactly as before.

    ``forced`` is click's ``FORCED_WIDTH``, which its CliRunner sets.
    """
    from click import formatting

    from crgate.terminal import HELP_MAX_WIDTH, help_width

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(formatting, "FORCED_WIDTH", forced)
    assert help_width(formatting.FORCED_WIDTH) == formatting.HelpFormatter(max_width=HELP_MAX_WIDTH).width
