"""The GitHub Action, run the way the runner runs a composite action: inputs rendered into each step's
``env``, every ``run:`` executed with ``bash --noprofile --norc -eo pipefail`` from a script file, with
``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` / ``GITHUB_ACTION_PATH`` / ``RUNNER_TEMP`` set to temp paths,
step ``if:`` conditions evaluated, and the two third-party steps the action uses (``actions/cache/restore``
and ``actions/cache/save``, pinned by SHA) played by a local store with the same semantics: an exact key
restores the saved directory to the same path, a saved key is never overwritten. Against crgate's
built-in emulator. The lock's wheels come from the cache store (seeded from the local wheelhouse, as a
previous run would have saved them) or, for a download, from the wheelhouse's index (``PIP_INDEX_URL``);
the machine's pip configuration is not read.

The install step is the action's one expensive step (a venv, the lock, a build of this checkout). A run
with ``install="real"`` runs it like every other step: the tests of installing, caching and the attacks
on them do. The others (``install="shared"``, the default) get the outputs of one real run of the same
step per session and per value of its ``env:`` (``version``, ``emulator``), made by ``action/install.sh``
in a directory of the session's own, from a clean runner environment: the gate step and what follows
it then run as they would after that install (the tests of the gate, its inputs and outputs)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from integration import need, venv_tool
from wheelhouse import PLANTED_MARK, Wheelhouse, planted_wheel

DEMO_CLEAN_DIGEST = "sha256:d2a6f29620b33e4d4249d0c56ae86c99b0df56c3c3dd63ade959b81483528c35"  # as in demo.yaml

ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text(encoding="utf-8"))
HELPER = REPO_ROOT / "action" / "github_outputs.py"
COMMAND = REPO_ROOT / "action" / "check_command.py"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
WORKFLOWS = [
    REPO_ROOT / ".github" / "workflows" / "self-test.yml",
    REPO_ROOT / ".github" / "workflows" / "release.yml",
    REPO_ROOT / "examples" / "github" / "workflow.yml",
    REPO_ROOT / "examples" / "github" / "matrix-sarif.yml",
]
CACHE_ACTIONS = {"actions/cache/restore", "actions/cache/save"}
WHEELHOUSE: list[Wheelhouse] = []  # the session's, set by the autouse fixture below
SHARED: dict[str, Path] = {}  # "root": the directory of the shared installs, set by the same fixture
SHARED_INSTALLS: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}  # the install step's env: its outputs


@pytest.fixture(autouse=True, scope="module")
def _wheelhouse(wheelhouse: Wheelhouse, tmp_path_factory: pytest.TempPathFactory) -> None:
    WHEELHOUSE[:] = [wheelhouse]
    SHARED.setdefault("root", tmp_path_factory.mktemp("shared-installs"))


def lock_wheels() -> list[Path]:
    """The lock's wheels in the wheelhouse (crgate's own and its emulator's come from the action's checkout)."""
    return sorted(p for p in (WHEELHOUSE[0].directory / "files").iterdir() if not p.name.startswith("crgate"))


PINNED_USES = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")


@dataclass
class ActionRun:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str
    steps: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    venv: Path | None = None  # the install step's output

    @property
    def annotations(self) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith(("::error", "::warning"))]


def value_of(expression: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    if m := re.fullmatch(r"inputs\.([\w-]+)", expression):
        return inputs[m.group(1)]
    if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
        return steps.get(m.group(1), {}).get(m.group(2), "")
    raise AssertionError(f"expression the test runner does not know: {expression}")


def evaluate(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    """Render the ``${{ }}`` expressions a composite action may use here (inputs and step outputs)."""
    return EXPRESSION.sub(lambda match: value_of(match.group(1), inputs, steps), text)


def condition(text: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> bool:
    """A step's ``if:``: comparisons with string literals joined by ``&&`` (all this action uses)."""
    result = True
    for part in text.split("&&"):
        m = re.fullmatch(r"\s*([\w.-]+)\s*(==|!=)\s*'([^']*)'\s*", part)
        assert m, f"condition the test runner does not know: {text}"
        left = value_of(m.group(1), inputs, steps)
        result = result and ((left == m.group(3)) == (m.group(2) == "=="))
    return result


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


def runner_env(tmp_path: Path, runner_temp: Path, workspace: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "RUNNER_TEMP": str(runner_temp),
        "RUNNER_OS": "Linux",
        "RUNNER_ARCH": "X64",
        # pip reads no configuration of this machine; a download asks the local wheelhouse.
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": WHEELHOUSE[0].index_url,
        "PIP_NO_INPUT": "1",
    }


def plan(env: dict[str, str], action_path: Path = REPO_ROOT) -> dict[str, str]:
    output = Path(env["RUNNER_TEMP"]) / "plan-output"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("")
    subprocess.run(
        ["bash", str(action_path / "action" / "install.sh"), "plan"],
        env={**env, "GITHUB_ACTION_PATH": str(action_path), "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=True,
    )
    planned = parse_output_file(output.read_text())
    output.unlink()
    return planned


def cache_entry(store: Path, key: str) -> Path:
    return store / re.sub(r"[^\w.-]", "_", key)


def seed_cache(env: dict[str, str], store: Path) -> Path:
    """The cache entry a previous run saved: the lock's wheels under the plan's key."""
    entry = cache_entry(store, plan(env)["key"])
    if not entry.exists():
        entry.mkdir(parents=True)
        for wheel in lock_wheels():
            shutil.copy(wheel, entry / wheel.name)
    return entry


def play_cache_action(uses: str, with_: dict[str, str], store: Path) -> dict[str, str]:
    """actions/cache/restore and /save, on a local store: exact keys only (the action gives no
    restore-keys), the directory comes back at the path it was saved from, a saved key is immutable."""
    name, _, sha = uses.partition("@")
    assert name in CACHE_ACTIONS and re.fullmatch(r"[0-9a-f]{40}", sha), uses
    entry = store / re.sub(r"[^\w.-]", "_", with_["key"])
    path = Path(with_["path"])
    if name.endswith("/restore"):
        if not entry.is_dir():
            return {}
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(entry, path, symlinks=True)
        return {"cache-hit": "true", "cache-primary-key": with_["key"], "cache-matched-key": with_["key"]}
    if not entry.exists():
        shutil.copytree(path, entry, symlinks=True)
    return {}


def run_bash(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A ``run:`` script as the runner runs it."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one log, in the order it was written, as the runner shows it
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def shared_install(step_env: dict[str, str]) -> dict[str, str]:
    """The install step's outputs for this ``env:``, from the one real run of it for that env this session
    (on a runner of its own whose cache the wheelhouse seeded, as in every other run)."""
    key = tuple(sorted(step_env.items()))
    if key not in SHARED_INSTALLS:
        root = SHARED["root"] / f"install-{len(SHARED_INSTALLS)}"
        runner_temp = root / "runner_temp"
        runner_temp.mkdir(parents=True)
        base = runner_env(root, runner_temp, root / "workspace")
        shutil.copytree(seed_cache(base, root / "actions-cache"), plan(base)["wheels"])  # the restore step
        output = root / "output"
        output.write_text("")
        script = root / "install-step.sh"
        (install,) = [step for step in ACTION["runs"]["steps"] if step.get("id") == "install"]
        script.write_text(install["run"])
        done = run_bash(script, {**base, **step_env, "GITHUB_OUTPUT": str(output)}, root)
        assert done.returncode == 0, done.stdout
        outputs = parse_output_file(output.read_text())
        assert outputs["downloaded"] == "false" and Path(outputs["venv"]).parent == runner_temp, outputs
        SHARED_INSTALLS[key] = outputs
    return SHARED_INSTALLS[key]


def run_action(
    tmp_path: Path,
    inputs: dict[str, str],
    *,
    install: str = "shared",
    seeded: bool = True,
    cache_store: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> ActionRun:
    """One job step using the action. Call it again with the same ``tmp_path`` for a second step (or,
    after removing ``runner_temp``, a second job on a runner with the same paths). ``extra_env``: what
    earlier steps put into ``$GITHUB_ENV`` (every later step's environment, below each step's ``env:``).
    ``install``: ``real`` runs the install step, ``shared`` takes the session's (module docstring); a run
    that changes what the install step sees (no seeded cache, another store, ``extra_env``) must be real."""
    assert install in ("real", "shared"), install
    if install == "shared":
        assert seeded and cache_store is None and extra_env is None, "this run changes the install: install='real'"
    given = dict(inputs)
    for name, spec in ACTION["inputs"].items():
        if spec.get("required") and name not in given:
            raise AssertionError(f"required input {name} missing")
        given.setdefault(name, str(spec.get("default", "")))
    runner_temp = tmp_path / "runner_temp"
    workspace = tmp_path / "workspace"
    store = cache_store or tmp_path / "actions-cache"
    for directory in (runner_temp, workspace, store):
        directory.mkdir(parents=True, exist_ok=True)
    base_env = {**runner_env(tmp_path, runner_temp, workspace), **(extra_env or {})}
    if seeded:
        seed_cache(base_env, store)
    steps: dict[str, dict[str, str]] = {}
    log, summary, names, skipped = [], [], [], []
    code = 0
    for number, step in enumerate(ACTION["runs"]["steps"]):
        if "if" in step and not condition(step["if"], given, steps):
            skipped.append(step["name"])
            continue
        names.append(step["name"])
        if "uses" in step:
            with_ = {key: evaluate(str(value), given, steps) for key, value in step.get("with", {}).items()}
            outputs = play_cache_action(step["uses"], with_, store)
            if "id" in step:
                steps[step["id"]] = outputs
            continue
        assert step["shell"] == "bash"
        assert "${{" not in step["run"], "inputs must reach scripts through env, never as ${{ }} in run:"
        output_file = runner_temp / f"output_{number}"
        summary_file = runner_temp / f"summary_{number}"
        script = runner_temp / f"step_{number}.sh"
        output_file.write_text("")
        summary_file.write_text("")
        script.write_text(step["run"])
        step_env = {key: evaluate(str(value), given, steps) for key, value in step.get("env", {}).items()}
        if step.get("id") == "install" and install == "shared":
            steps["install"] = shared_install(step_env)
            continue
        env = {**base_env, "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file), **step_env}
        done = run_bash(script, env, workspace)
        log.append(done.stdout)
        summary.append(summary_file.read_text(encoding="utf-8"))
        if "id" in step:
            steps[step["id"]] = parse_output_file(output_file.read_text(encoding="utf-8"))
        code = done.returncode
        if code != 0:
            break
    outputs = {name: evaluate(spec["value"], given, steps) for name, spec in ACTION["outputs"].items()}
    venv = steps.get("install", {}).get("venv")
    return ActionRun(code, "\n".join(log), outputs, "".join(summary), names, skipped, Path(venv) if venv else None)


# -- the action against the emulator ----------------------------------------------------------------


# Every emulated run says so first, as one annotation (crgate.report.provenance.log_block).
EMULATED_LOOSENING = (
    "- emulator (--emulator): results come from crgate's built-in emulator (its demo data), not Yandex Cloud"
)


def loosened(*items: str) -> str:
    """The loosenings annotation of a run whose block lists ``items`` (each a ``- kind (source): detail`` line)."""
    count = f"{len(items)} setting{'s' if len(items) != 1 else ''} make{'s' if len(items) == 1 else ''}"
    return f"::warning title=crgate%3A the gate is loosened::{count} the gate weaker than its policy file:%0A" + (
        "%0A".join(items)
    )


def test_passing_image(tmp_path):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true"})
    assert run.code == 0, run.log
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
    assert run.annotations == [loosened(EMULATED_LOOSENING)]
    # The files for PR comments, and what the reference resolved to, pinned by digest.
    assert Path(out["markdown-file"]).read_text(encoding="utf-8") == run.summary
    comment = Path(out["comment-file"]).read_text(encoding="utf-8")
    assert "PASS" in comment and len(comment) < 65_536
    assert out["pinned-images"] == f"cr.yandex/crpdemo/app@{DEMO_CLEAN_DIGEST}"


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
        loosened(EMULATED_LOOSENING),
        "::error title=crgate%3A cr.yandex/crpdemo/app%3Avulnerable::violates the policy: critical 6 > 0, high 7 > 0",
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
    # The comment file says so too: a sticky PR comment never keeps an earlier run's verdict.
    assert "ERROR (exit 2)" in Path(run.outputs["comment-file"]).read_text(encoding="utf-8")
    assert run.outputs["pinned-images"] == ""


# -- the gating inputs ------------------------------------------------------------------------------

VULNERABLE = "cr.yandex/crpdemo/app:vulnerable"


def test_fail_build_false_reports_violations_without_failing_the_step(tmp_path):
    run = run_action(tmp_path, {"images": VULNERABLE, "emulator": "true", "fail-build": "false"})
    assert run.code == 0, run.log
    out = run.outputs
    assert out["verdict"] == "fail" and out["exit-code"] == "0"
    assert json.loads(Path(out["report-json"]).read_text())["report_only"] is True
    assert run.annotations == [
        loosened(
            EMULATED_LOOSENING, "- report-only (--report-only): policy violations do not fail the run (errors still do)"
        ),
        "::warning title=crgate%3A cr.yandex/crpdemo/app%3Avulnerable::violates the policy: critical 6 > 0, "
        "high 7 > 0 (report-only: the build goes on)",
    ]
    assert "FAIL" in run.summary and "report-only" in run.summary.lower()


def test_fail_build_false_still_fails_on_an_error(tmp_path):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:absent", "emulator": "true", "fail-build": "false"})
    assert run.code == 3, run.log
    assert run.outputs["verdict"] == "error" and run.outputs["exit-code"] == "3"


def test_thresholds_and_only_fixed(tmp_path):
    # 6 critical findings, 5 of them fixable; 7 high, all fixable.
    within = run_action(
        tmp_path / "a",
        {"images": VULNERABLE, "emulator": "true", "thresholds": "critical=5, high=7", "only-fixed": "true"},
    )
    assert within.code == 0, within.log
    report = json.loads(Path(within.outputs["report-json"]).read_text())
    assert report["policy"]["thresholds"] == {"critical": 5, "high": 7}
    assert "--max" in report["policy"]["source"] and "--only-fixed" in report["policy"]["source"]
    beyond = run_action(tmp_path / "b", {"images": VULNERABLE, "emulator": "true", "thresholds": "critical=5\nhigh=7"})
    assert beyond.code == 1, beyond.log
    assert beyond.outputs["critical"] == "6"


def test_a_threshold_typo_is_crgates_usage_error(tmp_path):
    run = run_action(tmp_path, {"images": VULNERABLE, "emulator": "true", "thresholds": "hihg=5"})
    assert run.code == 2, run.log
    assert "did you mean" in run.log and "high" in run.log


@pytest.mark.parametrize("name", ["fail-build", "only-fixed"])
def test_a_boolean_input_must_say_true_or_false(tmp_path, name):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true", name: "yes"})
    assert run.code == 2, run.log
    assert f"::error title=crgate::input {name} must be true or false, not 'yes'" in run.log.splitlines()
    assert run.outputs["verdict"] == "error"


def test_the_emulator_input_must_say_true_or_false_too():
    """The same check for `emulator` (the gate step's helper, as above; a whole run would first install
    a venv of its own for `emulator: yes`, which install.sh reads as no emulator)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRGATE_")}
    env.update({"CRGATE_IMAGES": "cr.yandex/crpdemo/app:clean", "CRGATE_EMULATOR": "yes"})
    done = subprocess.run(
        [sys.executable, str(COMMAND), "--crgate", "crgate", "--report", "r.json", "--summary", "s.md",
         "--comment", "c.md", "--print"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["::error title=crgate::input emulator must be true or false, not 'yes'"]


def test_from_manifest_and_args(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "k 8s").mkdir()
    (workspace / "k 8s" / "app.yaml").write_text(
        "kind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: a, image: cr.yandex/crpdemo/app:clean}]\n"
    )
    extra = "--output 'junit=out $(touch pwned) `touch pwned`.xml' --today=2026-01-01 \\\n  --concurrency 1"
    run = run_action(tmp_path, {"from-manifest": "k 8s/app.yaml\n", "emulator": "true", "args": extra})
    assert run.code == 0, run.log
    assert json.loads(Path(run.outputs["report-json"]).read_text())["images"][0]["ref"] == "cr.yandex/crpdemo/app:clean"
    assert (workspace / "out $(touch pwned) `touch pwned`.xml").is_file()  # one word, written literally
    assert not (workspace / "pwned").exists()


def test_args_that_cannot_be_split_are_a_usage_error(tmp_path):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true", "args": "--today '2026"})
    assert run.code == 2, run.log
    assert any("input args cannot be split: No closing quotation" in a for a in run.annotations)


def test_platform_gates_only_the_platforms_asked_for(tmp_path):
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:multi", "emulator": "true", "platform": "linux/amd64"})
    assert run.code == 0, run.log
    rows = [image["ref"] for image in json.loads(Path(run.outputs["report-json"]).read_text())["images"]]
    assert rows == ["cr.yandex/crpdemo/app:multi [linux/amd64]"]
    # pinned-images names the index's digest, what deploys on every platform.
    (pinned,) = run.outputs["pinned-images"].splitlines()
    assert re.fullmatch(r"cr\.yandex/crpdemo/app@sha256:[0-9a-f]{64}", pinned)


def test_sarif_category_names_the_run_for_code_scanning(tmp_path):
    run = run_action(
        tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true", "sarif-category": "crgate-web"}
    )
    assert run.code == 0, run.log
    sarif = json.loads((tmp_path / "workspace" / "crgate.sarif").read_text())
    assert sarif["runs"][0]["automationDetails"]["id"] == "crgate-web/"


def command_for(inputs: dict[str, str]) -> list[str]:
    """The crgate command line check_command.py builds from these inputs (its --print mode)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRGATE_")}
    env.update(inputs)
    done = subprocess.run(
        [sys.executable, str(COMMAND), "--crgate", "crgate", "--report", "r.json", "--summary", "s.md",
         "--comment", "c.md", "--print"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_every_gating_input_becomes_one_option_word():
    argv = command_for(
        {
            "CRGATE_IMAGES": " cr.yandex/a/b:1\tcr.yandex/a/c:2\n",
            "CRGATE_FAIL_BUILD": "False",
            "CRGATE_THRESHOLDS": "critical=0,high=5 total=-3",
            "CRGATE_ONLY_FIXED": "TRUE",
            "CRGATE_FROM_MANIFEST": " k8s/a b.yaml \n\n-rendered.yaml\n",
            "CRGATE_PLATFORM": "linux/amd64, linux/arm64/v8",
            "CRGATE_API_ENDPOINT": "api.yandexcloud.kz:443",
            "CRGATE_CONCURRENCY": "4",
            "CRGATE_OIDC_AUDIENCE": "https://example.com/aud",
            "CRGATE_ARGS": "--today 2026-01-01 --output 'codequality=gl code quality.json'",
            "CRGATE_SARIF_FILE": "out.sarif",
            "CRGATE_SARIF_CATEGORY": "crgate-web",
        }
    )
    assert argv[:2] == ["crgate", "check"]
    expected = [
        "--report-only", "--max=critical=0", "--max=high=5", "--max=total=-3", "--only-fixed",
        "--from-manifest=k8s/a b.yaml", "--from-manifest=-rendered.yaml",
        "--platform=linux/amd64", "--platform=linux/arm64/v8", "--api-endpoint=api.yandexcloud.kz:443",
        "--concurrency=4", "--oidc-audience=https://example.com/aud", "--output=sarif=out.sarif",
        "--sarif-location=Dockerfile", "--sarif-category=crgate-web",
    ]  # fmt: skip
    assert [word for word in argv if word in expected] == expected
    assert "--output=comment=c.md" in argv and "--output=markdown=s.md" in argv and "--output=json=r.json" in argv
    assert argv[-7:] == [
        "--today", "2026-01-01", "--output", "codequality=gl code quality.json",
        "--", "cr.yandex/a/b:1", "cr.yandex/a/c:2",
    ]  # fmt: skip


def test_default_inputs_add_no_gating_option():
    defaults = {
        f"CRGATE_{name.upper().replace('-', '_')}": str(spec.get("default", ""))
        for name, spec in ACTION["inputs"].items()
    }
    argv = command_for(defaults)
    for option in ("--report-only", "--max", "--only-fixed", "--from-manifest", "--platform", "--api-endpoint",
                   "--concurrency", "--oidc-audience", "--emulator", "--policy", "--sarif-category",
                   "--declare-loosening"):  # fmt: skip
        assert not any(word.startswith(option) for word in argv), option
    assert argv[-1] == "--"


def test_what_crgate_cannot_see_is_declared_and_what_it_can_is_not():
    """A version input (crgate from elsewhere than the action's checkout) is declared; fail-build and
    emulator become --report-only and --emulator, which crgate names in its block itself (no double)."""
    argv = command_for(
        {"CRGATE_IMAGES": "cr.yandex/a/b:1", "CRGATE_VERSION": " crgate==0.1.0 ", "CRGATE_FAIL_BUILD": "false",
         "CRGATE_EMULATOR": "true"}
    )  # fmt: skip
    assert [word for word in argv if word.startswith("--declare-loosening")] == [
        "--declare-loosening=version: crgate==0.1.0 (GitHub Action): crgate installed from it"
    ]
    assert "--report-only" in argv and "--emulator" in argv


# -- install and cache ------------------------------------------------------------------------------


def test_a_cache_miss_downloads_the_lock_and_saves_exactly_its_wheels(tmp_path):
    """A cache miss downloads the lock (from the wheelhouse index), installs it into a venv of its own and
    saves the wheels: byte for byte the lock's files, i.e. the very entry every other run of this module
    restores, checks by hash and installs (the shared install included, which asserts it downloaded
    nothing), so the next job on a fresh runner is that run."""
    inputs = {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true"}
    first = run_action(tmp_path, inputs, install="real", seeded=False)
    assert first.code == 0, first.log
    assert first.outputs["verdict"] == "pass"
    assert "no cached wheels: downloading action/requirements.lock" in first.log
    assert "Restore crgate's wheels" in first.steps and "Save crgate's wheels" in first.steps
    key = plan(runner_env(tmp_path, tmp_path / "runner_temp", tmp_path))["key"]
    saved = sorted(cache_entry(tmp_path / "actions-cache", key).iterdir())
    assert [(p.name, p.read_bytes()) for p in saved] == [(p.name, p.read_bytes()) for p in lock_wheels()]


def test_a_planted_venv_and_stamp_never_give_the_verdict(tmp_path):
    """An earlier step of the job wrote a venv whose crgate prints PASS and exits 0 at the path the
    action used to trust, with the stamp it used to check, and put PYTHONPATH to a planted crgate
    package into $GITHUB_ENV: the gate still runs the genuine crgate and fails the vulnerable image."""
    runner_temp = tmp_path / "runner_temp"
    env = runner_env(tmp_path, runner_temp, tmp_path / "workspace")
    planted = runner_temp / "crgate-venv"
    for name in ("crgate", "python", "python3"):
        path = planted / "bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!/bin/sh\necho "{PLANTED_MARK}"\nexit 0\n')
        path.chmod(0o755)
    (planted / "crgate-install.key").write_text(f"crgate-venv-v1-Linux-X64-{plan(env)['key']}\n")
    site = tmp_path / "planted-site" / "crgate"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(f"print({PLANTED_MARK!r})\nraise SystemExit(0)\n")
    run = run_action(
        tmp_path,
        {"images": "cr.yandex/crpdemo/app:vulnerable", "emulator": "true"},
        install="real",
        extra_env={"PYTHONPATH": str(site.parent), "CRGATE_VENV": str(planted)},
    )
    assert run.code == 1, run.log
    assert PLANTED_MARK not in run.log
    assert run.outputs["verdict"] == "fail" and "critical 6 > 0, high 7 > 0" in run.log
    assert planted.is_dir() and run.venv and run.venv.parent == runner_temp and run.venv != planted
    assert "crgate 0.1.0" in run.log  # the install step's smoke test ran the venv's crgate


def test_a_poisoned_cache_entry_is_refused_and_downloaded_again(tmp_path):
    """A pull request's own workflow saved an entry under the gate's key in its ref's scope, which the
    gate's run for that pull request restores first: the wheels carry a planted crgate under a locked
    name. pip refuses every file whose hash is not in the lock; the action says so, drops the cache,
    downloads the lock, and the genuine crgate fails the vulnerable image."""
    store = tmp_path / "actions-cache"
    env = runner_env(tmp_path, tmp_path / "runner_temp", tmp_path)
    entry = seed_cache(env, store)
    (victim,) = [p for p in entry.iterdir() if p.name.startswith("click-")]
    planted = planted_wheel(victim, tmp_path / "planted")
    shutil.copy(planted, victim)
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:vulnerable", "emulator": "true"}, install="real")
    assert run.code == 1, run.log
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in run.log
    assert (
        "::warning title=crgate::the cached wheels do not match action/requirements.lock's hashes (pip's message "
        "above): none of them was used, the lock is downloaded again"
    ) in run.log
    assert run.outputs["verdict"] == "fail" and PLANTED_MARK not in run.log
    # The poisoned entry is never overwritten (cache keys are immutable); the next run refuses it again.
    assert (entry / victim.name).read_bytes() == planted.read_bytes()


def test_the_cache_key_follows_the_lock_and_the_python(tmp_path):
    copy = tmp_path / "action-copy"
    (copy / "action").mkdir(parents=True)
    for name in ("install.sh", "requirements.lock"):
        shutil.copy(REPO_ROOT / "action" / name, copy / "action" / name)
    env = runner_env(tmp_path, tmp_path, tmp_path)
    original = plan(env, copy)
    assert re.fullmatch(r"crgate-wheels-v2-Linux-X64-cpython\d+\.\d+-lock[0-9a-f]{16}", original["key"])
    assert original["wheels"] == str(tmp_path / "crgate-wheels")
    with open(copy / "action" / "requirements.lock", "a") as handle:
        handle.write("# refreshed\n")
    assert plan(env, copy)["key"] != original["key"]


# -- install ----------------------------------------------------------------------------------------


def pip_list(venv: Path) -> dict[str, str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed.stdout)}


def test_install_from_the_action_checkout_into_its_own_venv(tmp_path):
    """The install path: the lock, then this checkout (and, for `emulator: true`, the emulator from it),
    into a venv the step made (a mktemp -d name under RUNNER_TEMP); exactly the pins. (This inspects the
    session's real run of the install step, the one the other gate tests use.)"""
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "emulator": "true"})
    assert run.code == 0, run.log
    venv = run.venv
    assert venv and re.fullmatch(r"crgate-venv\.\w{10}", venv.name) and venv.parent.name == "runner_temp"
    assert (venv / "pyvenv.cfg").is_file() and not (venv / "bin" / "crgate").is_symlink()
    assert run.outputs["verdict"] == "pass"
    # Exactly the lock's pins (and crgate, its emulator, pip): no grpcio-tools, nothing resolved past the lock.
    installed = pip_list(venv)
    assert "grpcio-tools" not in installed
    assert installed["crgate"] == installed["crgate-emulator"] == "0.1.0"
    ours = ("crgate", "crgate-emulator", "pip")
    assert {name: version for name, version in installed.items() if name not in ours} == locked_pins()


def test_without_the_emulator_input_the_venv_holds_crgate_alone(tmp_path):
    """The emulator is a distribution of its own, installed only for `emulator: true`: a real gate's venv
    has no emulator in it, and `--emulator` smuggled in through `args` is crgate's exit 2."""
    run = run_action(tmp_path, {"images": "cr.yandex/crpdemo/app:clean", "args": "--emulator"})
    assert run.code == 2, run.log
    assert "--emulator needs crgate's emulator, which is not installed" in run.log
    assert run.venv
    installed = pip_list(run.venv)
    assert "crgate" in installed and "crgate-emulator" not in installed


def locked_pins() -> dict[str, str]:
    """``name: version`` of action/requirements.lock for this interpreter (markers evaluated)."""
    from packaging.markers import Marker

    pins = {}
    for line in (REPO_ROOT / "action" / "requirements.lock").read_text().splitlines():
        m = re.match(r"([a-z0-9.-]+)==(\S+)(?: ; (.*?))?(?: \\)?$", line)
        if m and (m.group(3) is None or Marker(m.group(3)).evaluate()):
            pins[m.group(1)] = m.group(2)
    return pins


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


def test_third_party_actions_are_pinned_by_commit_sha():
    uses = [step["uses"] for step in ACTION["runs"]["steps"] if "uses" in step]
    for workflow in WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            uses += [step["uses"] for step in job["steps"] if "uses" in step]
    third_party = [u for u in uses if u != "./" and not u.startswith("crgate/crgate@")]
    assert third_party and all(PINNED_USES.fullmatch(u) for u in third_party), third_party
    text = "".join(w.read_text() for w in [REPO_ROOT / "action.yml", *WORKFLOWS])
    # Each pin carries the version it stands for, for the next person who refreshes it.
    assert all(re.search(re.escape(u) + r" # v\d", text) for u in third_party)


def test_every_input_is_used_and_documented():
    text = (REPO_ROOT / "action.yml").read_text()
    for name, spec in ACTION["inputs"].items():
        assert spec["description"]
        used = f"inputs.{name} }}}}" in text or re.search(rf"^\s+if: .*\binputs\.{re.escape(name)} ==", text, re.M)
        assert used, f"input {name} is never passed to a step"
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


def load_helper():
    sys.path.insert(0, str(HELPER.parent))
    try:
        import github_outputs
    finally:
        sys.path.remove(str(HELPER.parent))
    return github_outputs


DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_pinned_images_come_from_the_reports_references():
    helper = load_helper()
    report = {
        "images": [],
        "references": [
            {"ref": "cr.yandex/crp1/app:1", "digest": DIGEST_A, "pinned": f"cr.yandex/crp1/app@{DIGEST_A}"},
            {"ref": "cr.yandex/crp1/app:latest", "digest": DIGEST_A, "pinned": f"cr.yandex/crp1/app@{DIGEST_A}"},
            {"ref": "cr.yandex/crp1/web:2", "digest": DIGEST_B, "pinned": f"cr.yandex/crp1/web@{DIGEST_B}"},
            # Never passed on: anything that is not exactly a digest reference.
            {"ref": "x", "pinned": "cr.yandex/crp1/web:2"},
            {"ref": "y", "pinned": f"cr.yandex/crp1/web@{DIGEST_B}\n::error::injected"},
            {"ref": "z", "pinned": None},
            "not an object",
        ],
    }
    assert helper.pinned_images(report) == [f"cr.yandex/crp1/app@{DIGEST_A}", f"cr.yandex/crp1/web@{DIGEST_B}"]


def test_pinned_images_without_references_pin_single_manifest_rows_only():
    helper = load_helper()
    report = {
        "images": [
            {"ref": "cr.yandex/crp1/app:1", "digest": DIGEST_A, "platform": None},
            # A platform of an index: its own digest is not what deploys (the index's is).
            {"ref": "cr.yandex/crp1/multi:1 [linux/arm64]", "digest": DIGEST_B, "platform": "linux/arm64"},
            {"ref": "crpimageid0000000001", "digest": DIGEST_B, "platform": None},  # --image-id: no reference
            {"ref": f"cr.yandex/crp1/web@{DIGEST_A}", "digest": DIGEST_B, "platform": None},  # inconsistent
            {"ref": "cr.yandex/crp1/old:1"},  # an older crgate: no digest
        ]
    }
    assert helper.pinned_images(report) == [f"cr.yandex/crp1/app@{DIGEST_A}"]


def test_a_report_only_run_agrees_with_its_exit_code():
    helper = load_helper()
    report = {"images": [], "warnings": [], "exit_code": 1, "report_only": True, "verdict": "fail"}
    assert helper.expected_exit_code(report) == 0
    assert not any("differs" in line for line in helper.annotation_lines(report, 0))
    assert any("differs" in line for line in helper.annotation_lines(report, 1))
    errored = {**report, "exit_code": 3}
    assert helper.expected_exit_code(errored) == 3  # report-only never turns an error into a pass
