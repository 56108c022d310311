"""The pre-deploy hook (``action/hooks/pre-deploy``) and the deploy examples, run for real: the POSIX sh
hook starts crgate as a process against the emulator with the demo data and real manifests."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DIGEST_B, REPO_ROOT, VULNERABLE_FINDINGS, image, scenario
from crgate.emulator.scenario import scenario_from_dict
from crgate.emulator.server import Emulator
from crgate.manifests import read_manifests
from integration import need, venv_tool

HOOK = REPO_ROOT / "action" / "hooks" / "pre-deploy"
DATA = REPO_ROOT / "tests" / "data" / "manifests"
EXAMPLES = REPO_ROOT / "examples"
DEMO_CLEAN_DIGEST = "sha256:d2a6f29620b33e4d4249d0c56ae86c99b0df56c3c3dd63ade959b81483528c35"  # as in demo.yaml


@pytest.fixture(scope="module")
def demo() -> Iterator[Emulator]:
    """The demo images (``cr.yandex/crpdemo/app:clean`` / ``:vulnerable``) with 0.1 s scans, not 2 s."""
    clean = image("crpdemoclean00000001", "clean", DEMO_CLEAN_DIGEST, duration=0.1)
    clean["compressed_size"] = 31457280  # as in demo.yaml, so the manifest (and its digest) is the demo's
    data = scenario(
        clean,
        image("crpdemovuln", "vulnerable", DIGEST_B, VULNERABLE_FINDINGS, duration=0.1),
    )
    data["registries"][0]["id"] = "crpdemo"
    with Emulator(scenario_from_dict(data, source="<test>")) as emulator:
        assert emulator.scenario.image("crpdemoclean00000001").digest == DEMO_CLEAN_DIGEST
        yield emulator


def hook_env(emulator: Emulator | str, **extra: str) -> dict[str, str]:
    """The environment of a deploy job: crgate from the test venv, pointed at ``emulator``."""
    crgate = venv_tool("crgate")
    assert crgate
    address = emulator if isinstance(emulator, str) else emulator.address
    registry = "http://127.0.0.1:9" if isinstance(emulator, str) else emulator.registry_url
    env = {key: value for key, value in os.environ.items() if not key.startswith(("YC_", "CRGATE"))}
    env.update({"CRGATE": crgate, "CRGATE_ARGS": f"--endpoint {address} --registry-url {registry} --insecure"})
    env.update(extra)
    return env


def run_hook(env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None):
    return subprocess.run(
        ["sh", str(HOOK), *args], input=stdin, env=env, capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_helm_output_with_clean_images_may_deploy(demo):
    done = run_hook(hook_env(demo), str(DATA / "helm-template.yaml"))
    assert done.returncode == 0, done.stderr
    assert "not scanned: docker.io/envoyproxy/envoy:v1.30.1" in done.stderr
    assert "PASS: 2 images within policy" in done.stdout
    assert "deploy may go on" in done.stderr


def test_vulnerable_compose_from_stdin_is_blocked(demo):
    done = run_hook(hook_env(demo), "-", stdin=(DATA / "compose.yaml").read_text())
    assert done.returncode == 1, done.stderr
    assert "cr.yandex/crpdemo/app:vulnerable  FAIL" in done.stdout
    assert "DEPLOY BLOCKED: an image violates the policy (crgate exit 1)" in done.stderr


def test_no_argument_reads_stdin_and_extra_args_pass_through(demo, tmp_path):
    report = tmp_path / "gate.json"
    env = hook_env(demo)
    env["CRGATE_ARGS"] += f" --output json={report}"
    done = run_hook(env, stdin="kind: Pod\nspec:\n  containers: [{name: a, image: cr.yandex/crpdemo/app:clean}]\n")
    assert done.returncode == 0, done.stderr
    assert '"verdict": "pass"' in report.read_text()


def test_malformed_manifest_blocks_with_its_location(demo, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: 3\n")
    done = run_hook(hook_env(demo), str(bad))
    assert done.returncode == 2
    assert f"manifest {bad}, document 1, line 6: 'containers' of Deployment web must be a list" in done.stderr
    assert "DEPLOY BLOCKED: crgate could not check the images (exit 2)" in done.stderr


def test_hook_usage_errors(demo, tmp_path):
    assert "cannot read manifest" in run_hook(hook_env(demo), str(tmp_path / "absent.yaml")).stderr
    assert run_hook(hook_env(demo), "--policy").returncode == 2
    done = run_hook(hook_env(demo, CRGATE=str(tmp_path / "no-crgate")), "-")
    assert done.returncode == 2 and "not found" in done.stderr


def test_unreachable_scanner_blocks_the_deploy(tmp_path):
    env = hook_env("127.0.0.1:9", CRGATE_TIMEOUT="1")  # the discard port: nothing answers gRPC there
    done = run_hook(env, str(DATA / "helm-template.yaml"))
    assert done.returncode in (3, 4), done.stdout + done.stderr
    assert "DEPLOY BLOCKED" in done.stderr


# -- the documented examples ------------------------------------------------------------------------


def copy_deploy_example(tmp_path: Path) -> tuple[Path, Path]:
    """The plain deploy example, with a fake kubectl that records what it was asked to apply."""
    example = tmp_path / "pre-deploy"
    shutil.copytree(EXAMPLES / "pre-deploy", example)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    applied = tmp_path / "applied.yaml"
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/sh\n[ "$1 $2" = "apply -f" ] && cat "$3" > "{applied}"\n')
    kubectl.chmod(0o755)
    return example, applied


def test_deploy_script_applies_after_a_pass(demo, tmp_path):
    example, applied = copy_deploy_example(tmp_path)
    env = hook_env(demo, CRGATE_HOOK=str(HOOK))
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["sh", str(example / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "image: cr.yandex/crpdemo/app:clean" in applied.read_text()


def test_deploy_script_applies_nothing_after_a_fail(demo, tmp_path):
    example, applied = copy_deploy_example(tmp_path)
    manifest = example / "k8s" / "app.yaml"
    manifest.write_text(manifest.read_text().replace("app:clean\n          ports", "app:vulnerable\n          ports"))
    env = hook_env(demo, CRGATE_HOOK=str(HOOK))
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["sh", str(example / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert not applied.exists()


def test_argocd_presync_example_is_a_hook_job_crgate_can_read():
    path = EXAMPLES / "argocd" / "presync-gate.yaml"
    (use,) = read_manifests([str(path)], io.BytesIO())
    assert use.where == "Job crgate-presync, container crgate" and use.ref is not None
    text = path.read_text()
    assert "argocd.argoproj.io/hook: PreSync" in text and "restartPolicy: Never" in text


def test_shell_scripts_pass_shellcheck():
    tool = shutil.which("shellcheck")
    need(tool, "shellcheck is not installed (apt-get install -y shellcheck)")
    assert tool
    posix = [HOOK, EXAMPLES / "pre-deploy" / "deploy.sh"]
    bash = [REPO_ROOT / "action" / "install.sh", REPO_ROOT / "action" / "run-check.sh"]
    for shell, scripts in (("sh", posix), ("bash", bash)):
        done = subprocess.run([tool, "-s", shell, *map(str, scripts)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout
