"""The GitHub Action's ``crgate check`` command line, built from its inputs, then run in place of this
process (``os.execv``: crgate gets the step's signals and its exit code is the step's).

Inputs arrive as environment variables (action.yml maps each input to one); none is ever evaluated by a
shell. Lists (images, thresholds, platforms) are split on blanks (spaces, tabs, newlines; thresholds and
platforms on commas too), ``from-manifest`` takes one path a line, and ``args`` is split like a POSIX
shell splits words (``shlex``: quotes group, a backslash at a line's end continues the line, nothing is
expanded, substituted or globbed). Every value
goes to crgate as ``--option=value``, so a value that starts with ``-`` can never become an option.
crgate itself judges the values (``--max hihg=5`` is its exit 2 with a did-you-mean); this helper only
refuses what it must interpret: a boolean that is neither true nor false, an ``args`` it cannot split.
Those are exit 2 with an ``::error`` annotation naming the input.

``fail-build: false`` and ``emulator: true`` become ``--report-only`` and ``--emulator``, which crgate
itself names in its loosenings block (a ``::warning::`` annotation on GitHub) and records in every
report. What crgate cannot see is passed as ``--declare-loosening``: a ``version`` input (crgate installed
from somewhere else than the action's own checkout). A crgate without that option (an older ``version``)
runs without it, and this helper says so. crgate runs as ``python -I``: no
``PYTHONPATH`` or other ``PYTHON*`` variable an earlier step put into ``$GITHUB_ENV`` reaches it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))  # this checkout's crgate.textsafe

from crgate.textsafe import github_data, safe  # noqa: E402

BLANKS = re.compile(r"[ \t\r\n]+")
BLANKS_OR_COMMAS = re.compile(r"[ \t\r\n,]+")
USAGE = 2
DECLARE = "--declare-loosening="


class InputError(Exception):
    """An input this helper cannot turn into crgate options; the message names the input."""


def boolean(env: Mapping[str, str], variable: str, name: str, default: bool) -> bool:
    value = env.get(variable, "").strip()
    if not value:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"input {name} must be true or false, not '{safe(value, 100)}'")


def words(env: Mapping[str, str], variable: str, separators: re.Pattern[str] = BLANKS) -> list[str]:
    return [word for word in separators.split(env.get(variable, "")) if word]


def lines(env: Mapping[str, str], variable: str) -> list[str]:
    return [line.strip() for line in env.get(variable, "").splitlines() if line.strip()]


def extra_args(env: Mapping[str, str]) -> list[str]:
    # A backslash ending a line joins it with the next, as a shell's line continuation (here everywhere,
    # quotes included); shlex alone would keep it as an escaped newline, a word of its own.
    text = env.get("CRGATE_ARGS", "").replace("\\\r\n", "").replace("\\\n", "")
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as error:  # "No closing quotation", "No escaped character"
        hint = "quote like a POSIX shell; nothing is expanded"
        raise InputError(f"input args cannot be split: {error} ({hint})") from None


def loosenings(env: Mapping[str, str]) -> list[str]:
    """What the inputs change that crgate cannot see, in words for its loosenings block (``fail-build`` and
    ``emulator`` reach it as flags it names itself)."""
    found = []
    if env.get("CRGATE_VERSION", "").strip():
        found.append(f"version: {safe(env['CRGATE_VERSION'].strip(), 100)} (GitHub Action): crgate installed from it")
    return found


def command(env: Mapping[str, str], crgate: str, report: str, summary: str, comment: str) -> list[str]:
    """The full argv: crgate check, the inputs' options, the extra ``args``, ``--``, the images."""
    argv = [crgate, "check", "--progress=lines", f"--timeout={env.get('CRGATE_TIMEOUT') or '900'}"]
    argv += [f"--output=json={report}", f"--output=markdown={summary}", f"--output=comment={comment}"]
    if env.get("CRGATE_POLICY"):
        argv.append(f"--policy={env['CRGATE_POLICY']}")
    if env.get("CRGATE_PIN_POLICY_SHA256", "").strip():
        argv.append(f"--policy-sha256={env['CRGATE_PIN_POLICY_SHA256'].strip()}")
    if not boolean(env, "CRGATE_FAIL_BUILD", "fail-build", True):
        argv.append("--report-only")
    argv += [f"--max={limit}" for limit in words(env, "CRGATE_THRESHOLDS", BLANKS_OR_COMMAS)]
    if boolean(env, "CRGATE_ONLY_FIXED", "only-fixed", False):
        argv.append("--only-fixed")
    argv += [f"--from-manifest={path}" for path in lines(env, "CRGATE_FROM_MANIFEST")]
    argv += [f"--platform={platform}" for platform in words(env, "CRGATE_PLATFORM", BLANKS_OR_COMMAS)]
    for variable, option in (
        ("CRGATE_API_ENDPOINT", "--api-endpoint"),
        ("CRGATE_CONCURRENCY", "--concurrency"),
        ("CRGATE_OIDC_AUDIENCE", "--oidc-audience"),
    ):
        if env.get(variable, "").strip():
            argv.append(f"{option}={env[variable].strip()}")
    if boolean(env, "CRGATE_EMULATOR", "emulator", False):
        argv.append("--emulator")
    if env.get("CRGATE_SARIF_FILE"):
        argv.append(f"--output=sarif={env['CRGATE_SARIF_FILE']}")
        argv.append(f"--sarif-location={env.get('CRGATE_SARIF_LOCATION') or 'Dockerfile'}")
        if env.get("CRGATE_SARIF_CATEGORY", "").strip():
            argv.append(f"--sarif-category={env['CRGATE_SARIF_CATEGORY'].strip()}")
    argv += [f"{DECLARE}{text}" for text in loosenings(env)]
    argv += extra_args(env)
    return [*argv, "--", *words(env, "CRGATE_IMAGES")]


def without_unknown_declarations(full: list[str]) -> list[str]:
    """``full`` as is if its crgate knows ``--declare-loosening``, else without those options (said)."""
    if not any(word.startswith(DECLARE) for word in full[: full.index("--")]):
        return full
    probe = [sys.executable, "-I", full[0], "check", "--help"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    if done.returncode == 0 and DECLARE.rstrip("=") in done.stdout:
        return full
    print("crgate: this crgate cannot record the action's loosenings in its reports (no --declare-loosening)")
    end = full.index("--")
    return [word for word in full[:end] if not word.startswith(DECLARE)] + full[end:]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crgate", required=True, help="the crgate executable of the action's venv")
    parser.add_argument("--report", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--comment", required=True)
    parser.add_argument("--print", action="store_true", help="print the command, one word a line; do not run it")
    args = parser.parse_args(argv)
    environment = os.environ if env is None else env
    try:
        full = command(environment, args.crgate, args.report, args.summary, args.comment)
    except InputError as error:
        print(f"::error title=crgate::{github_data(str(error))}", flush=True)
        return USAGE
    if args.print:
        print("\n".join(full))
        return 0
    full = without_unknown_declarations(full)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-I", *full])  # the venv's python runs the crgate script
    return USAGE  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main())
