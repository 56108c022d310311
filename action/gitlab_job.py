"""crgate's GitLab CI/CD component after its first shell lines: report what the job's variables tried,
install crgate from the hashed lock into a job-private venv, and run the gate.

templates/crgate.yml embeds this file (``action/embed.py`` writes it there; edit this file, then run
``action/embed.py``). The job's shell unsets the dynamic loader's variables, resets PATH, makes a fresh
0700 directory under /tmp (``PRIVATE``) and writes into it, from quoted here-documents that no variable
can change: ``inputs/NAME`` (each input as the component's ``spec`` interpolated it) and
``requirements.lock`` (action/requirements.lock, the Action's lock). Then it runs
``PYTHON -I gitlab_job.py PRIVATE``: isolated mode reads no ``PYTHON*`` variable, no user site and
nothing from the current directory (the checkout).

What this trusts: the inputs (the security team's configuration: a pipeline execution policy's CI file,
or the including project's own file) and the job's image. What it does not: every CI/CD variable
(pipeline variables override project, group and even the job's own ``variables:``), the checkout and
the pip cache inside it. So:

- inputs reach crgate only from ``PRIVATE/inputs``; a ``CRGATE_*`` variable that used to carry one is
  ignored and said so at the top of the log (a collapsed section, warning lines above it);
- crgate runs from a venv this job created in ``PRIVATE`` (never one that already exists), installed
  with ``pip --require-hashes --only-binary=:all: --no-deps`` from the lock plus the ``install`` input's
  pinned, hashed crgate: a planted pip-cache entry or a mirror's answer whose hash is not in the lock is
  refused, and no setup code runs; or from the venv the ``venv`` input names, one the job's image
  provides (trusted as the image and its Python are; never inside the checkout, never a variable);
- pip runs with no secret in its environment (``--isolated``, only PATH, HOME, TMPDIR, a locale and
  the proxies), before any credential is exported; crgate runs with an allow-listed environment
  (the job's ``CI_*`` identity less its tokens, the proxies, the credentials the inputs name,
  ``CRGATE_POLICY_SHA256``), so ``PYTHONPATH``, ``LD_PRELOAD``, ``SSL_CERT_FILE``, ``GRPC_TRACE``,
  ``YC_TOKEN_ENDPOINT``, ``CRGATE_REGISTRY_URL`` or ``PIP_INDEX_URL`` from a variable change nothing
  (and each is named in the warning lines);
- the kill switch ``CRGATE_DISABLED`` is on for exactly ``true`` or ``1``; then the job says so and
  exits 10 (``allow_failure: exit_codes`` shows it as a warning), unless the ``allow-disable`` input is
  false, which makes the gate run anyway;
- what the inputs change that crgate cannot see (``allow-violations``: GitLab lets a violation pass;
  ``allow-disable: true``: a CI/CD variable could have switched the gate off) is named at the top of the
  log and passed to crgate as ``--declare-loosening``, so that its loosenings block and every report
  record it; ``emulator`` reaches crgate as ``--emulator``, which crgate names itself. A disabled gate
  runs no crgate and writes no report: its warning and exit 10 are the record.

``$NAME`` and ``${NAME}`` in the ``images`` and ``policy`` inputs are expanded from the job's variables
(as GitLab expanded them in ``variables:`` before): that is the including file's own choice of variable,
and the expanded value is printed.

The here-documents end at a line ``CRGATE_INPUT_END``: an input holding such a line would end its
document early, but inputs are written by whoever writes the including CI file, who could write any
script anyway; the values that are not trusted (variables) never reach the shell.

Exit codes: crgate's own (0 pass, 1 violation, 2 usage, 3 scan error, 4 timeout, 130 interrupted);
this script's failures are 2 (a bad input) or 3 (the install), never 1; 10 = disabled. With
``allow-violations`` the job's ``allow_failure: exit_codes: [1, 10]`` lets a violation pass as a warning.
Standard library only; Python 3.10+.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

USAGE, INSTALL, DISABLED = 2, 3, 10
REPORTS = {
    "json": "crgate-report.json",
    "gitlab": "gl-container-scanning-report.json",
    "codequality": "gl-code-quality-report.json",
    "junit": "crgate-junit.xml",
    "markdown": "crgate-summary.md",
    "dotenv": "crgate-pinned.env",  # artifacts:reports:dotenv: CRGATE_PINNED_IMAGES, CRGATE_VERDICT for later jobs
}
PIP_CACHE = ".crgate-pip-cache"  # in the checkout, as GitLab's cache: requires; hashes make it harmless
INPUTS = (
    "images", "policy", "policy-sha256", "thresholds", "only-fixed", "platform", "allow-violations",
    "allow-disable", "args", "timeout", "install", "emulator-install", "index-url", "iam-token-variable",
    "sa-key-variable", "federation-sa-id", "emulator", "python", "venv",
)  # fmt: skip
# The variables that carried inputs before they were interpolated (pipeline variables overrode them).
SHADOWS = {f"CRGATE_{name.upper().replace('-', '_')}": name for name in INPUTS} | {
    "CRGATE_FAIL_BUILD": "allow-violations",
}
# Variables crgate reads that a CI/CD variable may legitimately set.
PASSED_CRGATE = {"CRGATE_POLICY_SHA256", "CRGATE_DISABLED", "CRGATE_OIDC_TOKEN"}
PROXIES = {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "grpc_proxy"}
# Families that change how Python, pip, the loader, TLS or crgate behave: never passed on, always named.
WATCHED = re.compile(r"(CRGATE_|YC_|PYTHON|PIP_|LD_|GRPC_|SSL_CERT_|REQUESTS_CA_BUNDLE$|CURL_CA_BUNDLE$|BASH_ENV$)")
SECRET_CI = re.compile(r"(TOKEN|PASSWORD|JWT|SECRET|KEY)", re.I)
REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+( --hash=sha256:[0-9a-f]{64})+")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
REFERENCE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$))")
EXPANDED = ("images", "policy")  # the inputs whose $VARIABLES are expanded
UNPINNED = "0" * 64  # the install input's default before a release pins it
BLANKS_OR_COMMAS = re.compile(r"[ \t\r\n,]+")


def printable(text: str, limit: int = 200) -> str:
    """A value fit for one log line: printable ASCII (others as ``?``), GitLab's section markers and the
    ``##[`` / ``##vso[`` commands of other runners broken."""
    text = "".join(c if " " <= c <= "~" else "?" for c in text[: limit + 1])
    text = re.sub(r"(?i)(section)_", r"\1?", text)
    text = re.sub(r"(?i)#(?=#(\[|vso\[))", "?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Log:
    """The job log: warning lines first (visible), the details in a collapsed section."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.details: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def detail(self, text: str) -> None:
        self.details.append(text)

    def flush(self) -> None:
        out = sys.stdout
        for line in self.warnings:
            out.write(f"\x1b[0;33mWARNING: crgate: {line}\x1b[0m\n")
        now = int(time.time())
        title = f"crgate settings: {len(self.warnings)} warning(s)" if self.warnings else "crgate settings"
        out.write(f"\x1b[0Ksection_start:{now}:crgate_settings[collapsed=true]\r\x1b[0K{title}\n")
        for line in self.details:
            out.write(f"  {line}\n")
        out.write(f"\x1b[0Ksection_end:{now}:crgate_settings\r\x1b[0K\n")
        out.flush()


class InputError(Exception):
    """An input this script cannot use; the message names it."""


def read_inputs(private: Path) -> dict[str, str]:
    inputs = {}
    for name in INPUTS:
        text = (private / "inputs" / name).read_text(encoding="utf-8")
        inputs[name] = text[:-1] if text.endswith("\n") else text  # the here-document's own newline
    return inputs


def referenced(inputs: Mapping[str, str]) -> set[str]:
    """The variables the expanded inputs name."""
    return {m["braced"] or m["plain"] for name in EXPANDED for m in REFERENCE.finditer(inputs[name]) if not m["dollar"]}


def expand(inputs: dict[str, str], env: Mapping[str, str], log: Log) -> None:
    """``$NAME``, ``${NAME}`` (and ``$$`` for a dollar) in the expanded inputs, from the job's variables."""
    for name in EXPANDED:
        raw = inputs[name]
        value = REFERENCE.sub(lambda m: "$" if m["dollar"] else env.get(m["braced"] or m["plain"], ""), raw)
        if value != raw:
            shown = (printable(text.replace("\n", " ")) for text in (raw, value))
            log.detail("input {} expanded: {} -> {}".format(name, *shown))
        inputs[name] = value


def boolean(inputs: Mapping[str, str], name: str) -> bool:
    if inputs[name] not in ("true", "false"):
        raise InputError(f"input {name} must be true or false, not '{printable(inputs[name], 50)}'")
    return inputs[name] == "true"


def disabled(env: Mapping[str, str], inputs: Mapping[str, str], log: Log) -> bool:
    """The kill switch: exactly ``true`` or ``1`` disables; anything else is said and ignored."""
    value = env.get("CRGATE_DISABLED")
    if value is None or value == "":
        return False
    if value not in ("true", "1"):
        log.warn(f"CRGATE_DISABLED='{printable(value, 40)}' is not 'true' or '1': the gate runs")
        return False
    if not boolean(inputs, "allow-disable"):
        log.warn(f"CRGATE_DISABLED={value} is ignored: this gate may not be disabled (input allow-disable: false)")
        return False
    log.warn(f"the gate is DISABLED by the CI/CD variable CRGATE_DISABLED={value}: no image was gated")
    return True


def watched_variables(env: Mapping[str, str], inputs: Mapping[str, str], log: Log) -> None:
    """Name every variable that tried to steer the gate, pip or Python; none of them is passed on."""
    named = referenced(inputs)
    for name in sorted(env):
        if name in PASSED_CRGATE or name in named or not WATCHED.match(name):
            continue
        if name in ("YC_IAM_TOKEN", "YC_SERVICE_ACCOUNT_KEY_FILE", "YC_SA_ID") and name in {
            inputs["iam-token-variable"],
            inputs["sa-key-variable"],
        }:
            continue  # the default credential variables, read below by the name an input gives
        if name in SHADOWS:
            shown = "" if SECRET_CI.search(name) else f"='{printable(env[name], 80)}'"
            source = SHADOWS[name]
            told = f"input {source} decides ('{printable(inputs[source], 80)}')" if source in inputs else source
            log.warn(f"the CI/CD variable {name}{shown} is ignored: the {told}")
        else:
            shown_name = printable(name, 80)
            log.warn(f"the CI/CD variable {shown_name} is not passed to pip or crgate (set it through the inputs)")


def words(text: str) -> list[str]:
    return [word for word in BLANKS_OR_COMMAS.split(text) if word]


def extra_args(text: str) -> list[str]:
    try:
        return shlex.split(text.replace("\\\r\n", "").replace("\\\n", ""), comments=False, posix=True)
    except ValueError as error:
        raise InputError(f"input args cannot be split: {error} (quote like a POSIX shell)") from None


def loosenings(inputs: Mapping[str, str]) -> list[str]:
    """What the inputs make weaker than the policy file and crgate cannot see, for the log and the reports."""
    found = []
    if boolean(inputs, "allow-violations"):
        found.append("allow-violations: true (GitLab component): a policy violation does not fail the pipeline")
    if boolean(inputs, "allow-disable"):
        found.append(
            "allow-disable: true (GitLab component): the CI/CD variable CRGATE_DISABLED=true or 1 can switch "
            "this gate off (it did not in this run)"
        )
    return found


def check_argv(inputs: Mapping[str, str], declared: Sequence[str]) -> list[str]:
    """``crgate check`` and its options from the inputs, ``--`` and the images (no shell evaluates them)."""
    argv = ["check", "--progress=lines", f"--timeout={inputs['timeout']}"]
    argv += [f"--output={kind}={path}" for kind, path in REPORTS.items()]
    if inputs["policy"]:
        argv.append(f"--policy={inputs['policy']}")
    if inputs["policy-sha256"].strip():
        argv.append(f"--policy-sha256={inputs['policy-sha256'].strip()}")
    argv += [f"--max={limit}" for limit in words(inputs["thresholds"])]
    argv += [f"--platform={platform}" for platform in words(inputs["platform"])]
    if boolean(inputs, "only-fixed"):
        argv.append("--only-fixed")
    if boolean(inputs, "emulator"):
        argv.append("--emulator")
    if inputs["federation-sa-id"]:
        argv += ["--oidc-token-env", "CRGATE_OIDC_TOKEN"]
    argv += [f"--declare-loosening={text}" for text in declared]
    return [*argv, *extra_args(inputs["args"]), "--", *words(inputs["images"])]


def requirement_file(private: Path, name: str, text: str) -> Path:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not all(REQUIREMENT.fullmatch(line) for line in lines):
        raise InputError(f"input {name} must be NAME==VERSION --hash=sha256:HEX (one hash per file it may install)")
    if UNPINNED in text:
        raise InputError(
            f"input {name} is not pinned to a released file yet (its hash is all zeros): set it to "
            "crgate==VERSION --hash=sha256:<the release wheel's sha256>"
        )
    path = private / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def base_env(env: Mapping[str, str], private: Path) -> dict[str, str]:
    """What every child gets: a reset PATH, a private HOME and TMPDIR, a locale, the proxies."""
    clean = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(private / "home"),
        "TMPDIR": str(private / "tmp"),
        "LANG": env.get("LANG") or "C.UTF-8",
    }
    clean.update({name: env[name] for name in PROXIES if env.get(name)})
    return clean


def crgate_env(env: Mapping[str, str], inputs: Mapping[str, str], private: Path) -> dict[str, str]:
    """crgate's environment: the job's public CI identity, the credentials the inputs name, the pin."""
    clean = base_env(env, private)
    public = {name: value for name, value in env.items() if name.startswith(("CI_", "GITLAB_"))}
    clean.update({name: value for name, value in public.items() if not SECRET_CI.search(name)})
    clean.update({name: env[name] for name in ("CI", "GITLAB_CI", "CRGATE_POLICY_SHA256") if name in env})
    token = env.get(inputs["iam-token-variable"], "")
    key = env.get(inputs["sa-key-variable"], "")
    if token:
        clean["YC_IAM_TOKEN"] = token
    if key:
        clean["YC_SERVICE_ACCOUNT_KEY_FILE"] = key
    if inputs["federation-sa-id"]:
        clean["YC_SA_ID"] = inputs["federation-sa-id"]
        if env.get("CRGATE_OIDC_TOKEN"):
            clean["CRGATE_OIDC_TOKEN"] = env["CRGATE_OIDC_TOKEN"]
    return clean


def install(private: Path, inputs: Mapping[str, str], env: Mapping[str, str], emulator: bool) -> Path:
    """A fresh venv in PRIVATE with exactly the lock's files and the pinned crgate; its python."""
    venv = private / "venv"
    clean = base_env(env, private)
    requirements = ["-r", str(private / "requirements.lock")]
    requirements += ["-r", str(requirement_file(private, "install", inputs["install"]))]
    if emulator and inputs["emulator-install"].strip():
        requirements += ["-r", str(requirement_file(private, "emulator-install", inputs["emulator-install"]))]
    if subprocess.run([sys.executable, "-I", "-m", "venv", str(venv)], env=clean, check=False).returncode:
        raise OSError("could not create a venv (the image needs Python 3.10+ with venv)")
    python = venv / "bin" / "python"
    pip = [str(python), "-I", "-m", "pip", "install", "--isolated", "--no-input", "--disable-pip-version-check"]
    pip += ["--quiet", "--no-compile", "--no-deps", "--only-binary=:all:", "--require-hashes", "--progress-bar=off"]
    pip += ["--cache-dir", str(Path.cwd() / PIP_CACHE)]
    if inputs["index-url"].strip():
        pip += ["--index-url", inputs["index-url"].strip()]
    if subprocess.run([*pip, *requirements], env=clean, check=False).returncode:
        raise OSError(
            "could not install crgate from the hashed lock (pip's message above): pip refuses every file whose "
            "sha256 is not in the lock or the install input, a planted pip cache entry included"
        )
    return python


def supports_declared_loosenings(crgate: Sequence[str], env: dict[str, str]) -> bool:
    """Whether this crgate has ``check --declare-loosening`` (older releases do not)."""
    done = subprocess.run([*crgate, "check", "--help"], env=env, capture_output=True, text=True, check=False)
    return done.returncode == 0 and "--declare-loosening" in done.stdout


def image_venv(value: str, env: Mapping[str, str]) -> Path:
    """The ``venv`` input's directory: absolute, and nowhere the checkout (or another job's) lives."""
    if not value.startswith("/"):
        raise InputError(f"input venv must be an absolute path in the job's image, not '{printable(value, 100)}'")
    venv = Path(value).resolve()
    roots = {Path.cwd(), *(Path(env[name]) for name in ("CI_PROJECT_DIR", "CI_BUILDS_DIR") if env.get(name))}
    for root in roots:
        if venv == root.resolve() or root.resolve() in venv.parents:
            raise InputError(
                f"input venv names {printable(str(venv), 100)}, inside {printable(str(root), 100)}, where the "
                "checkout is: a merge request could plant it. Name a venv the job's image provides, or leave "
                "venv empty to install from the hashed lock"
            )
    return venv


def run(python: Path, inputs: Mapping[str, str], declared: Sequence[str], env: dict[str, str]) -> int:
    """crgate in the venv, isolated from the checkout (``-I``); its exit code is the job's."""
    crgate = [str(python), "-I", str(python.parent / "crgate")]
    if not python.is_file() or subprocess.run([*crgate, "--version"], env=env, check=False).returncode:
        print(f"crgate: crgate does not start in the venv {printable(str(python.parent.parent))}", file=sys.stderr)
        return INSTALL
    if declared and not supports_declared_loosenings(crgate, env):
        print("crgate: this crgate cannot record the loosenings above in its reports (no --declare-loosening)")
        declared = []
    try:
        argv = check_argv(inputs, declared)
    except InputError as error:
        print(f"crgate: {error}", file=sys.stderr)
        return USAGE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # crgate, in the same process group, handles it
    done = subprocess.run([*crgate, *argv], env=env, check=False)
    return done.returncode if done.returncode >= 0 else 128 - done.returncode


def main(argv: Sequence[str]) -> int:
    private = Path(argv[1])
    try:
        return gate(private)
    finally:
        shutil.rmtree(private, ignore_errors=True)  # the venv is this job's alone (shell runners keep /tmp)


def gate(private: Path) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - the job's image, not crgate's own interpreter
        print("crgate: the job's image needs Python 3.10 or newer", file=sys.stderr)
        return INSTALL
    env = dict(os.environ)
    log = Log()
    try:
        inputs = read_inputs(private)
        for name in ("iam-token-variable", "sa-key-variable"):
            if not VARIABLE_NAME.fullmatch(inputs[name]):
                raise InputError("iam-token-variable and sa-key-variable must name CI/CD variables (A-Z, 0-9, _)")
        watched_variables(env, inputs, log)
        if disabled(env, inputs, log):
            log.detail("CRGATE_DISABLED is true or 1: crgate did not run; the job exits 10 (allowed to fail)")
            log.flush()
            return DISABLED
        expand(inputs, env, log)
        venv = image_venv(inputs["venv"], env) if inputs["venv"] else None
        if boolean(inputs, "emulator") and not venv and not inputs["emulator-install"].strip():
            raise InputError(
                "input emulator: true needs the emulator installed beside crgate: set emulator-install to "
                "crgate-emulator==VERSION --hash=sha256:<its wheel's sha256> (it is a distribution of its own)"
            )
        declared = loosenings(inputs)
        for text in declared:
            log.warn(f"loosening: {text}")
        check_argv(inputs, declared)  # every input checked before the install
    except InputError as error:
        log.flush()
        print(f"crgate: {error}", file=sys.stderr)
        return USAGE
    for name in INPUTS:
        log.detail(f"input {name}: {printable(inputs[name].replace(chr(10), ' '))}")
    for directory in ("home", "tmp"):
        (private / directory).mkdir(mode=0o700)
    if venv:
        log.detail(f"venv: {venv} (input venv: the image's; nothing installed, install is not used)")
        log.flush()
        return run(venv / "bin" / "python", inputs, declared, crgate_env(env, inputs, private))
    log.detail(f"venv: {private / 'venv'} (made by this job; pip cache {PIP_CACHE}/, every file checked by hash)")
    log.flush()
    try:
        python = install(private, inputs, env, boolean(inputs, "emulator"))
    except InputError as error:
        print(f"crgate: {error}", file=sys.stderr)
        return USAGE
    except OSError as error:
        print(f"crgate: {error}", file=sys.stderr)
        return INSTALL
    return run(python, inputs, declared, crgate_env(env, inputs, private))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
