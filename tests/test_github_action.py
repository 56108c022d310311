"""The GitHub Action, run the way the runner runs a composite action: inputs rendered into each step's
``env``, every ``run:`` executed with ``bash --noprofile --norc -eo pipefail`` from a script file, with
``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` / ``GITHUB_ACTION_PATH`` / ``RUNNER_TEMP`` set to temp paths,
against crgate's built-in emulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import REPO_ROOT
from integration import REQUIRED, need, venv_tool

ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
HELPER = REPO_ROOT / "action" / "github_outputs.py"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
WORKFLOWS = [REPO_ROOT / ".github" / "workflows" / "self-test.yml", REPO_ROOT / "examples" / "github" / "workflow.yml"]


@dataclass
class ActionRun:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str
    steps: list[str] = field(default_factory=list)

    @property
    def annotations(self) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith(("::error", "::warning"))]


def evaluate(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    """Render the ``${{ }}`` expressions a composite action may use here (inputs and step outputs)."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if m := re.fullmatch(r"inputs\.([\w-]+)", expression):
            return inputs[m.group(1)]
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return steps.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"expression the test runner does not know: {expression}")

    return EXPRESSION.sub(value, text)


def parse_output_file(text: str) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it: ``name=value`` or ``name<<DELIMITER`` heredocs."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, index)
            values[name] = "\n".join(lines[index:end])
            index = end + 1
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def link_test_venv(runner_temp: Path) -> None:
    """Pre-create the action's venv from the test venv: the install step then reuses it (fast)."""
    crgate = venv_tool("crgate")
    assert crgate, "crgate must be installed in the test venv"
    bin_dir = runner_temp / "crgate-venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "crgate").symlink_to(crgate)
    (bin_dir / "python").symlink_to(sys.executable)


def run_action(tmp_path: Path, inputs: dict[str, str], *, reuse_venv: bool = True) -> ActionRun:
    given = dict(inputs)
    for name, spec in ACTION["inputs"].items():
        if spec.get("required") and name not in given:
            raise AssertionError(f"required input {name} missing")
        given.setdefault(name, str(spec.get("default", "")))
    runner_temp = tmp_path / "runner_temp"
    workspace = tmp_path / "workspace"
    runner_temp.mkdir()
    workspace.mkdir()
    if reuse_venv:
        link_test_venv(runner_temp)
    base_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "RUNNER_TEMP": str(runner_temp),
    }
    steps: dict[str, dict[str, str]] = {}
    log, summary, names = [], [], []
    code = 0
    for number, step in enumerate(ACTION["runs"]["steps"]):
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs must reach scripts through env, never as ${{ }} in run:"
        output_file = runner_temp / f"output_{number}"
        summary_file = runner_temp / f"summary_{number}"
        script = runner_temp / f"step_{number}.sh"
        output_file.touch()
        summary_file.touch()
        script.write_text(step["run"])
        env = {**base_env, "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file)}
        env.update({key: evaluate(str(value), given, steps) for key, value in step.get("env", {}).items()})
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        names.append(step["name"])
        log.append(done.stdout + done.stderr)
        summary.append(summary_file.read_text(encoding="utf-8"))
        if "id" in step:
            steps[step["id"]] = parse_output_file(output_file.read_text(encoding="utf-8"))
        code = done.returncode
        if code != 0:
            break
    outputs = {name: evaluate(spec["value"], given, steps) for name, spec in ACTION["outputs"].items()}
    return ActionRun(code, "\n".join(log), outputs, "".join(summary), names)


# -- the action against the emulator ----------------------------------------------------------------


def test_passing_image(tmp_path):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true"})
    assert run.code == 0, run.log
    assert "crgate 0.1.0 is already installed" in run.log
    out = run.outputs
    assert out["verdict"] == "pass" and out["exit-code"] == "0"
    assert [out[s] for s in ("critical", "high", "medium", "low", "negligible", "undefined", "total")] == ["0"] * 7
    assert re.fullmatch(r"\S+", out["scan-result-ids"])
    report = json.loads(Path(out["report-json"]).read_text())
    assert report["verdict"] == "pass" and report["images"][0]["scan_result_id"] == out["scan-result-ids"]
    assert out["sarif-file"] == "crgate.sarif"
    sarif = json.loads((tmp_path / "workspace" / "crgate.sarif").read_text())
    assert sarif["runs"][0]["results"] == []
    assert run.summary.startswith("## crgate: ✅ PASS (exit 0)")
    assert run.annotations == []


def test_failing_image(tmp_path):
    images = "cr.yandex/crpdemo/app:clean\ncr.yandex/crpdemo/app:vulnerable\n"
    run = run_action(tmp_path, {"images": images, "emulator": "true", "sarif-location": "app/Dockerfile"})
    assert run.code == 1, run.log
    out = run.outputs
    assert out["verdict"] == "fail" and out["exit-code"] == "1"
    counts = {s: int(out[s]) for s in ("critical", "high", "medium", "low", "negligible", "undefined", "total")}
    assert counts == {"critical": 6, "high": 7, "medium": 6, "low": 3, "negligible": 3, "undefined": 2, "total": 27}
    assert len(out["scan-result-ids"].split()) == 2
    assert run.annotations == [
        "::error title=crgate%3A cr.yandex/crpdemo/app%3Avulnerable::violates the policy: critical 6 > 0, high 7 > 0"
    ]
    assert "## crgate: ❌ FAIL (exit 1)" in run.summary and "| critical <= 0 | 6 | ❌ exceeded |" in run.summary
    sarif = json.loads((tmp_path / "workspace" / "crgate.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert len(results) == 27
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {"app/Dockerfile"}


def test_warnings_become_annotations_and_secrets_stay_secret(tmp_path):
    policy = tmp_path / "workspace-policy.yaml"
    policy.write_text("version: 1\nthresholds:\n  critical: 10\n  high: 10\n")
    run = run_action(
        tmp_path,
        {
            "images": "cr.yandex/crpdemo/app:vulnerable",
            "emulator": "true",
            "policy": str(policy),
            "yc-iam-token": "t1.action-secret-token",
            "sarif-file": "",
        },
    )
    assert run.code == 0, run.log
    assert run.outputs["sarif-file"] == ""
    # The one place a token may appear is the runner's own masking command, which hides it everywhere.
    assert "::add-mask::t1.action-secret-token" in run.log.splitlines()
    log = "\n".join(line for line in run.log.splitlines() if not line.startswith("::add-mask::"))
    assert "action-secret" not in log + run.summary + Path(run.outputs["report-json"]).read_text()


def test_usage_error_still_sets_outputs(tmp_path):
    run = run_action(tmp_path, {"images": "docker.io/library/nginx:1.25", "emulator": "true"})
    assert run.code == 2, run.log
    assert run.outputs["verdict"] == "error" and run.outputs["exit-code"] == "2"
    assert run.outputs["report-json"] == ""
    assert any(a.startswith("::error title=crgate::crgate stopped before gating") for a in run.annotations)
    assert "ERROR (exit 2)" in run.summary


def test_inputs_cannot_inject_shell(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"cr.yandex/crpdemo/app:clean $(touch {marker}) `touch {marker}` ;touch {marker} *"
    run = run_action(tmp_path, {"images": hostile, "emulator": "true", "timeout": f"5; touch {marker}"})
    assert run.code == 2, run.log
    assert not marker.exists()


def test_no_images_is_a_usage_error(tmp_path):
    run = run_action(tmp_path, {"images": " \n ", "emulator": "true"})
    assert run.code == 2
    assert "no images given" in run.log


# -- install ----------------------------------------------------------------------------------------


def test_install_from_the_action_checkout_into_an_isolated_venv(tmp_path):
    """The real install path (pip install of this checkout into a fresh venv): slow, so CI runs it."""
    need(REQUIRED or os.environ.get("CRGATE_TEST_INSTALL") == "1", "set CRGATE_TEST_INSTALL=1 to run a real install")
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true"}, reuse_venv=False)
    assert run.code == 0, run.log
    venv = tmp_path / "runner_temp" / "crgate-venv"
    assert (venv / "pyvenv.cfg").is_file() and not (venv / "bin" / "crgate").is_symlink()
    assert "crgate 0.1.0" in run.log and run.outputs["verdict"] == "pass"


def test_install_refuses_an_old_python(tmp_path):
    old = tmp_path / "python-old"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_ACTION_PATH": str(REPO_ROOT), "CRGATE_PYTHON": str(old)}
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "action" / "install.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "::error title=crgate::crgate needs Python 3.10 or newer" in done.stdout


# -- static checks ----------------------------------------------------------------------------------


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("check-jsonschema")
    need(tool, "check-jsonschema is not installed (pip install -e '.[test]')")
    assert tool
    return subprocess.run(
        [tool, "--builtin-schema", schema, *map(str, paths)], capture_output=True, text=True, check=False
    )


def test_action_yml_validates():
    done = check_jsonschema("vendor.github-actions", REPO_ROOT / "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_validate():
    done = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_action_yml_is_rejected(tmp_path):
    broken = tmp_path / "action.yml"
    broken.write_text((REPO_ROOT / "action.yml").read_text().replace("using: composite", "using: compost"))
    assert check_jsonschema("vendor.github-actions", broken).returncode != 0


def test_every_input_is_used_and_documented():
    text = (REPO_ROOT / "action.yml").read_text()
    for name, spec in ACTION["inputs"].items():
        assert spec["description"]
        assert f"inputs.{name} }}}}" in text, f"input {name} is never passed to a step"
    self_test = yaml.safe_load(WORKFLOWS[0].read_text())
    assert any(step.get("uses") == "./" for step in self_test["jobs"]["self-test"]["steps"])


# -- the outputs helper -----------------------------------------------------------------------------


def helper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), *args], env={**os.environ, **(env or {})}, capture_output=True, text=True
    )


def test_annotation_text_cannot_start_a_new_command(tmp_path):
    sys.path.insert(0, str(HELPER.parent))
    try:
        import github_outputs
    finally:
        sys.path.remove(str(HELPER.parent))
    line = github_outputs.annotation("error", "a:b,c", "bad\n::error::injected 100%")
    assert line == "::error title=a%3Ab%2Cc::bad%0A::error::injected 100%25"
    block = github_outputs.output_block("x", "line1\nghadelimiter_x\nline3")
    name, delimiter = block.splitlines()[0].split("<<")
    assert parse_output_file(block) == {"x": "line1\nghadelimiter_x\nline3"}
    assert block.count(delimiter) == 2


def test_helper_without_a_report_fails_closed(tmp_path):
    output, summary = tmp_path / "out", tmp_path / "summary"
    done = helper(
        "--report", str(tmp_path / "none.json"), "--summary", str(tmp_path / "none.md"), "--exit-code", "4",
        env={"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert done.returncode == 0
    values = parse_output_file(output.read_text())
    assert values["verdict"] == "error" and values["exit-code"] == "4"
    assert "ERROR (exit 4)" in summary.read_text()
