"""Every place crgate prints text it did not write, fed hostile text: escapes (CSI, OSC), bidi overrides,
and newlines followed by GitHub Actions workflow commands and GitLab section markers.

Each output must come out with no terminal control and no line a CI runner would act on, except the
commands crgate itself means to send. Machine formats (JSON, SARIF, ...) stay lossless: they write such
characters and CI command patterns as JSON escapes, which parse back to the original text.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, run_cli
from crgate.errors import ConfigError
from crgate.masking import SafeRecords, SecretMasker
from crgate.progress import LineProgress, LiveProgress
from crgate.scanner.credentials.choose import CredentialOptions, build_token_source, choose_credentials
from crgate.scanner.credentials.sakey import load_service_account_key
from crgate.scanner.endpoints import check_address
from hostile import SEV, C, answer, check, fail, vuln, vulns_page, with_stats

HOSTILE = "app\x1b[2J\x1b]0;pwned\x07\u202eevil\n::warning::forged\r##[error]forged\nsection_start:1:evil\r\x1b[0K"
LINE_BREAKS = re.compile("\r\n|\n|\r|\x0b|\x0c|\x1c|\x1d|\x1e|\x85|\u2028|\u2029")
# .NET's Char.IsWhiteSpace: the GitHub runner trims these before looking for "::"
DOTNET_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)
NO_IO: dict = {"iam": None, "http": None, "deadline": None}  # these errors come before any call
SECTION_MARKER = re.compile(r"section_\s*(start|end)\s*:", re.IGNORECASE)


def acted_on(output: str) -> list[str]:
    """The lines of ``output`` that GitHub Actions (``::cmd``, ``##[cmd``) or GitLab (sections) act on."""
    return [
        line
        for line in LINE_BREAKS.split(output)
        if line.lstrip(DOTNET_WHITESPACE).startswith("::")
        or "##[" in line
        or "##vso[" in line.lower()
        or SECTION_MARKER.search(line)
    ]


def controls(output: str) -> list[str]:
    """Characters of ``output`` that drive a terminal or reorder text (newlines between lines aside)."""
    return [ch for ch in output if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


def assert_clean(output: str, *, commands: tuple[str, ...] = ()) -> None:
    """No control character, and no line a CI runner acts on but crgate's own (starting with ``commands``)."""
    assert controls(output) == [], output
    assert [line for line in acted_on(output) if not (commands and line.startswith(commands))] == [], output


# -- progress ----------------------------------------------------------------------------------------


def test_line_progress_shows_hostile_references_and_ids_inertly():
    stream = io.StringIO()
    progress = LineProgress(stream, clock=lambda: 0.0)
    progress.update(HOSTILE, "scanning", HOSTILE)
    progress.update("x" * 10_000, "queued")
    output = stream.getvalue()
    assert_clean(output)
    first, second = output.splitlines()
    assert first.startswith("[   0.0s] app\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\n::warning::forged")
    assert len(second) < 300  # the reference is bounded


def test_live_progress_draws_only_its_own_escapes():
    stream = io.StringIO()
    progress = LiveProgress(stream, clock=lambda: 0.0)
    try:
        progress.update(HOSTILE, "scanning", HOSTILE)
        progress.update("cr.yandex/crp1/app:v1", "queued")
    finally:
        progress.close()
    drawn = stream.getvalue()
    own = drawn.replace("\x1b[F", "").replace("\x1b[2K", "")  # cursor up, clear line: the table's own
    assert_clean(own)
    assert all(row.startswith("  ") for row in own.splitlines()), own  # no row split by a newline


# -- logging and masking -----------------------------------------------------------------------------


def log_output(record_filter: logging.Filter, emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("crgate: %(levelname)s: %(message)s"))
    handler.addFilter(record_filter)
    logger = logging.getLogger("crgate.test-untrusted")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_log_records_are_one_inert_line_and_tracebacks_stay_inert():
    def emit(logger: logging.Logger) -> None:
        logger.info("operation %s not found yet", HOSTILE)
        try:
            raise ValueError(HOSTILE)
        except ValueError:
            logger.debug("unexpected error while gating %s", HOSTILE, exc_info=True)
        logger.warning("bad format %s %s", "only one")  # a broken log call still prints, inertly

    output = log_output(SafeRecords(), emit)
    assert_clean(output)
    lines = output.splitlines()
    assert lines[0].startswith("crgate: INFO: operation app\\x1b[2J") and "\\n::warning::forged" in lines[0]
    assert any(line.startswith("Traceback") for line in lines)
    assert "bad format" in output


def test_masker_log_filter_redacts_then_sanitizes():
    lines: list[str] = []
    masker = SecretMasker({"GITHUB_ACTIONS": "true"}, lines.append)
    masker("t1.secret")
    output = log_output(masker.log_filter(), lambda logger: logger.info("token %s in %s", "t1.secret", HOSTILE))
    assert "t1.secret" not in output and "***" in output
    assert_clean(output)


def test_a_token_from_a_hostile_server_cannot_stop_workflow_commands():
    lines: list[str] = []
    masker = SecretMasker({"GITHUB_ACTIONS": "true"}, lines.append)
    token = "t1.x\n::stop-commands::pause\r\n::warning::forged"
    masker(token)
    output = "\n".join(lines) + "\n"
    assert all(line.startswith("::add-mask::") for line in output.splitlines()), output
    assert len(output.splitlines()) == len(lines) == 2  # the token, and the form crgate would print it in
    assert lines[0] == "::add-mask::t1.x%0A::stop-commands::pause%0D%0A::warning::forged"  # decodes to the token
    assert masker.redact(f"a {token} b") == "a *** b"


# -- the GitHub Action's helper: annotations, summary, outputs ---------------------------------------

HELPER = REPO_ROOT / "action" / "github_outputs.py"


def run_helper(tmp_path: Path, report: dict | None, summary: str | None) -> tuple[str, str, str]:
    report_path, summary_path = tmp_path / "report.json", tmp_path / "summary.md"
    if report is not None:
        report_path.write_text(json.dumps(report), encoding="utf-8")
    if summary is not None:
        summary_path.write_text(summary, encoding="utf-8")
    out, step_summary = tmp_path / "github_output", tmp_path / "step_summary"
    done = subprocess.run(
        [sys.executable, str(HELPER), "--report", str(report_path), "--summary", str(summary_path), "--exit-code", "3"],
        env={**os.environ, "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(step_summary)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with open(step_summary, encoding="utf-8", newline="") as appended:
        return done.stdout, appended.read(), out.read_text(encoding="utf-8")


def hostile_report() -> dict:
    image = {"counts": None, "scan_result_id": None, "violations": [], "warnings": [HOSTILE], "error": None}
    return {
        "verdict": "error",
        "exit_code": 3,
        "warnings": [HOSTILE],
        "images": [
            {**image, "ref": HOSTILE, "error": {"message": HOSTILE}},
            {**image, "ref": HOSTILE, "violations": [{"severity": HOSTILE, "count": 1, "limit": 0}]},
        ],
    }


def test_annotations_carry_hostile_report_text_inertly(tmp_path):
    stdout, _, _ = run_helper(tmp_path, hostile_report(), "")
    assert_clean(stdout, commands=("::error title=crgate%3A ", "::warning title=crgate"))
    annotations = stdout.splitlines()
    assert len(annotations) == 5  # error and warning, violation and warning, the run's warning: one line each
    assert annotations[0].startswith("::error title=crgate%3A app\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\n")
    assert "::could not be checked: app\\x1b[2J" in annotations[0]


def test_step_summary_is_made_printable_line_by_line(tmp_path):
    summary = f"## crgate: FAIL\n\n| image | verdict |\n| --- | --- |\n| {HOSTILE} | FAIL |\n"
    _, step_summary, _ = run_helper(tmp_path, hostile_report(), summary)
    assert_clean(step_summary)
    assert step_summary.splitlines()[:4] == summary.splitlines()[:4]  # crgate's own Markdown is kept
    assert step_summary.count("\n") == summary.count("\n")


def parse_outputs(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` read the way the runner reads it: ``name<<DELIM``, lines, a line equal to DELIM."""
    values, lines, at = {}, text.split("\n"), 0
    while at < len(lines) and lines[at]:
        name, delimiter = lines[at].split("<<", 1)
        end = lines.index(delimiter, at + 1)
        values[name] = "\n".join(lines[at + 1 : end])
        at = end + 1
    return values


def test_outputs_stay_exact_whatever_they_hold(tmp_path):
    report = hostile_report()
    report["images"][0]["scan_result_id"] = "ghadelimiter_x\nverdict<<EOF\npass"
    _, _, output = run_helper(tmp_path, report, "")
    values = parse_outputs(output)
    assert values["verdict"] == "error"
    assert values["scan-result-ids"] == "ghadelimiter_x\nverdict<<EOF\npass"


# -- the shell scripts -------------------------------------------------------------------------------


def test_pre_deploy_hook_prints_hostile_file_names_inertly(tmp_path):
    hook = REPO_ROOT / "action" / "hooks" / "pre-deploy"
    env = {"PATH": os.environ["PATH"], "CRGATE": "true"}
    done = subprocess.run(["sh", str(hook), str(tmp_path / HOSTILE)], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "cannot read manifest" in done.stderr
    assert_clean(done.stderr)
    done = subprocess.run(["sh", str(hook)], env={**env, "CRGATE": HOSTILE}, capture_output=True, text=True)
    assert done.returncode == 2 and "not found" in done.stderr
    assert_clean(done.stderr)


def gitlab_script(**inputs: str) -> str:
    """The component's script as GitLab renders it: each ``$[[ inputs.NAME ]]`` replaced by the input's
    value (given here, else its default; booleans as ``true``/``false``)."""
    header, jobs = yaml.safe_load_all((REPO_ROOT / "templates" / "crgate.yml").read_text(encoding="utf-8"))
    (job,) = [job for name, job in jobs.items() if not name.startswith(".")]  # hidden jobs: allow_failure
    values = {name: spec.get("default", "") for name, spec in header["spec"]["inputs"].items()}
    values.update({name.replace("_", "-"): value for name, value in inputs.items()})
    shown = {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in values.items()}
    return re.sub(r"\$\[\[ inputs\.([\w-]+) \]\]", lambda m: shown[m.group(1)], job["script"][0])


# The component's own markers: its warning colour and its collapsed settings section.
OWN_MARKERS = re.compile(
    r"\x1b\[0K(section_(start|end):\d+:crgate_settings(\[collapsed=true\])?)?|\x1b\[0;33m|\x1b\[0m"
)


def test_gitlab_job_does_not_echo_a_hostile_input_or_variable(tmp_path):
    env = {"PATH": os.environ["PATH"], "CI_PROJECT_DIR": str(tmp_path)}
    script = gitlab_script(iam_token_variable=HOSTILE)
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "must name CI/CD variables" in done.stderr
    assert_clean(OWN_MARKERS.sub("", done.stdout + done.stderr))
    # A variable with a hostile value is named in a warning, inertly (the kill switch ends the job right
    # after the warnings: exit 10, nothing installed). (A hostile variable name never reaches the helper:
    # GitLab allows only A-Z, a-z, 0-9 and _, and the job's shell drops other names; the helper would
    # print one through the same sanitizer.)
    env.update({"CRGATE_IMAGES": HOSTILE, "CRGATE_DISABLED": "true"})
    done = subprocess.run(["sh", "-c", gitlab_script()], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 10 and "the gate is DISABLED" in done.stdout, done.stdout + done.stderr
    assert "the CI/CD variable CRGATE_IMAGES='app?[2J" in done.stdout
    assert_clean(OWN_MARKERS.sub("", done.stdout + done.stderr))


def test_install_script_puts_a_hostile_python_inside_one_annotation(tmp_path):
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_ACTION_PATH": str(REPO_ROOT), "CRGATE_PYTHON": HOSTILE}
    script = REPO_ROOT / "action" / "install.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert_clean(done.stdout, commands=("::error title=crgate::crgate needs Python 3.10",))
    assert len(done.stdout.splitlines()) == 1


# -- configuration errors composed in the scanner package -----------------------------------------------


def config_error(build) -> str:
    with pytest.raises(ConfigError) as raised:
        build()
    return str(raised.value)


def test_hostile_settings_are_named_inertly_in_configuration_errors():
    metadata = choose_credentials(CredentialOptions(metadata=True), {}, loopback=False)
    federation = choose_credentials(CredentialOptions(federation_sa_id=HOSTILE), {}, loopback=False)
    messages = [
        config_error(lambda: check_address(HOSTILE, "--endpoint")),
        config_error(lambda: load_service_account_key(f"/keys/{HOSTILE}", "--sa-key")),
        config_error(lambda: build_token_source(metadata, CredentialOptions(), {"YC_METADATA_ADDR": HOSTILE}, **NO_IO)),
        config_error(lambda: build_token_source(federation, CredentialOptions(), {}, **NO_IO)),
    ]
    for message in messages:
        assert_clean(message)
        assert "\\x1b]0;pwned\\x07" in message  # the setting is still named, visibly


def test_key_material_given_where_a_path_belongs_is_never_echoed():
    pasted = '\'{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEsecret"}\''  # quoted: taken as a path
    message = config_error(lambda: load_service_account_key(pasted, "--sa-key"))
    assert "MIIEsecret" not in message and "PRIVATE KEY" not in message
    assert "--sa-key" in message


# -- a hostile server, end to end through the CLI ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_hostile_server_messages_reach_no_output_raw(server, fmt):
    # gRPC refuses control characters in headers, so a request id can only bring the markers
    request_id = "::warning::forged ##[error]forged section_start:1:evil"
    server.handlers["ScannerService.Scan"] = fail(C.FAILED_PRECONDITION, HOSTILE, (("x-request-id", request_id),))
    result = check(server, "-vv", fmt=fmt)
    assert result.code == 3, result.output
    assert_clean(result.output)
    assert "\\x1b]0;pwned\\x07" in result.output  # shown, visibly


def test_hostile_finding_text_reaches_no_output_raw(server):
    with_stats(server, critical=1)
    page = vulns_page(vuln(HOSTILE, SEV.CRITICAL, package=HOSTILE, fixed_by=HOSTILE, link=HOSTILE))
    server.handlers["ScannerService.ListVulnerabilities"] = answer(page)
    for fmt in ("text", "json", "markdown"):
        result = check(server, fmt=fmt)
        assert result.code == 1, result.output
        assert_clean(result.output)


# -- command-line and manifest input ----------------------------------------------------------------------


def test_a_hostile_reference_on_the_command_line_is_reported_inertly():
    result = run_cli(["check", "--emulator", "--progress", "lines", f"cr.yandex/crpdemo/{HOSTILE}"])
    assert result.code == 2
    assert_clean(result.output)


def test_a_hostile_image_in_a_manifest_forges_no_annotation(tmp_path):
    manifest = tmp_path / "pod.yaml"
    image = json.dumps(f"docker.io/library/{HOSTILE}")  # a JSON string is a YAML string
    manifest.write_text(f"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: {image}\n", encoding="utf-8")
    result = run_cli(["check", "--emulator", "--progress", "lines", "--from-manifest", str(manifest)])
    assert_clean(result.output)
