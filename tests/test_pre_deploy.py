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
import yaml

from conftest import DIGEST_B, REPO_ROOT, VULNERABLE_FINDINGS, image, scenario
from crgate.manifests import read_manifests
from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator
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


def pin_env(emulator: Emulator, pinned: Path, **extra: str) -> dict[str, str]:
    """A deploy job that pins: the registry side of the emulator resolves each reference's digest."""
    env = hook_env(emulator, CRGATE_PIN_TO=str(pinned), **extra)
    env["CRGATE_ARGS"] += f" --registry-url {emulator.registry_url}"
    return env


def test_pinned_manifests_name_the_gated_digests_and_nothing_else_changes(demo, tmp_path):
    pinned = tmp_path / "pinned.yaml"
    source = DATA / "helm-template.yaml"
    done = run_hook(pin_env(demo, pinned), str(source))
    assert done.returncode == 0, done.stderr
    assert f"deploy may go on with '{pinned}'" in done.stderr
    text = pinned.read_text()
    assert "cr.yandex/crpdemo/app:clean" not in text
    assert text.count(f"cr.yandex/crpdemo/app@{DEMO_CLEAN_DIGEST}") == source.read_text().count("cr.yandex/crpdemo/app")
    assert "docker.io/envoyproxy/envoy:v1.30.1" in text  # not a Yandex image: untouched
    # Only the image values changed: the same lines, in the same order.
    before, after = source.read_text().splitlines(), text.splitlines()
    assert len(before) == len(after)
    pin = f"cr.yandex/crpdemo/app@{DEMO_CLEAN_DIGEST}"
    changed = [(b, a) for a, b in zip(after, before, strict=True) if a != b]
    assert changed and all(a == b.replace("cr.yandex/crpdemo/app:clean", pin) for b, a in changed)


def test_a_failing_gate_leaves_no_pinned_file_even_an_old_one(demo, tmp_path):
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text("kind: Pod  # from an earlier deploy\n")
    done = run_hook(pin_env(demo, pinned), "-", stdin=(DATA / "compose.yaml").read_text())
    assert done.returncode == 1, done.stderr
    assert not pinned.exists()


def test_a_pass_without_the_pinned_file_blocks_the_deploy(tmp_path):
    """A crgate that exits 0 but writes nothing (an old crgate, a broken install): fail closed."""
    fake = tmp_path / "crgate"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "CRGATE"))}
    env.update({"CRGATE": str(fake), "CRGATE_PIN_TO": str(tmp_path / "pinned.yaml")})
    done = run_hook(env, str(DATA / "helm-template.yaml"))
    assert done.returncode == 3
    assert "crgate passed but wrote no pinned manifests" in done.stderr and "DEPLOY BLOCKED" in done.stderr


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
    # Exactly what was gated is applied: the image pinned to the digest crgate gated, not the tag.
    assert f"image: cr.yandex/crpdemo/app@{DEMO_CLEAN_DIGEST}" in applied.read_text()
    assert "image: cr.yandex/crpdemo/app:clean" not in applied.read_text()  # comments are kept as written


def test_deploy_script_applies_nothing_after_a_fail(demo, tmp_path):
    example, applied = copy_deploy_example(tmp_path)
    manifest = example / "k8s" / "app.yaml"
    manifest.write_text(manifest.read_text().replace("app:clean\n          ports", "app:vulnerable\n          ports"))
    env = hook_env(demo, CRGATE_HOOK=str(HOOK))
    env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["sh", str(example / "deploy.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert not applied.exists()


ARGOCD = EXAMPLES / "argocd" / "presync-gate.yaml"


def test_argocd_presync_example_is_a_hook_job_crgate_can_read():
    uses = read_manifests([str(ARGOCD)], io.BytesIO())
    assert [use.where for use in uses] == [
        "Job crgate-presync, container crgate",
        "Job crgate-presync, init container render",
    ]
    assert all(use.ref is not None or use.image.startswith("quay.io/") for use in uses)
    text = ARGOCD.read_text()
    assert "argocd.argoproj.io/hook: PreSync" in text and "restartPolicy: Never" in text


def argocd_job() -> dict:
    return yaml.safe_load(ARGOCD.read_text())


def test_argocd_presync_job_is_locked_down():
    pod = argocd_job()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert (
        pod["securityContext"]["runAsNonRoot"] is True
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    for container in [*pod["initContainers"], *pod["containers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    (crgate,) = pod["containers"]
    # A mounted key, read-only, as the comment documents (or --metadata for keyless).
    assert {"name": "YC_SERVICE_ACCOUNT_KEY_FILE", "value": "/var/run/crgate/key.json"} in crgate["env"]
    assert {"name": "credentials", "mountPath": "/var/run/crgate", "readOnly": True} in crgate["volumeMounts"]
    assert "--metadata" in ARGOCD.read_text()


def test_argocd_presync_job_gates_the_rendered_manifests_not_a_hand_kept_list(demo, tmp_path):
    """The Job run as its two containers would run it: the init container's script with an ``argocd``
    stand-in that renders the application (the pre-deploy example's manifests), then crgate with the
    container's own arguments. No image is named in the Job itself."""
    pod = argocd_job()["spec"]["template"]["spec"]
    (render,) = pod["initContainers"]
    (crgate_container,) = pod["containers"]
    assert "cr.yandex/crpdemo" not in ARGOCD.read_text() and not any(
        "cr.yandex/" in a for a in crgate_container["args"]
    )
    work = tmp_path / "work"
    work.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rendered = (EXAMPLES / "pre-deploy" / "k8s" / "app.yaml").read_text()
    (bin_dir / "argocd").write_text(
        '#!/bin/sh\n[ "$1 $2 $3 $4 $5" = "app manifests web --source git" ] || exit 9\n'
        f"[ -n \"$ARGOCD_AUTH_TOKEN\" ] || exit 8\ncat <<'EOF'\n{rendered}EOF\n"
    )
    (bin_dir / "argocd").chmod(0o755)
    env = {e["name"]: e.get("value", "") for e in render["env"]}
    env.update({"ARGOCD_AUTH_TOKEN": "token", "MANIFESTS": str(work / "manifests.yaml"), "HOME": str(tmp_path)})
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(render["command"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (work / "manifests.yaml").read_text() == rendered
    crgate = venv_tool("crgate")
    assert crgate
    args = [a.replace("/work/", f"{work}/") for a in crgate_container["args"]]
    done = subprocess.run(
        [crgate, *args, "--endpoint", demo.address, "--registry-url", demo.registry_url, "--insecure"],
        env=hook_env(demo), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: 1 image within policy" in done.stdout  # app:clean, used by two containers, gated once


def test_shell_scripts_pass_shellcheck():
    tool = shutil.which("shellcheck")
    need(tool, "shellcheck is not installed (apt-get install -y shellcheck)")
    assert tool
    posix = [HOOK, EXAMPLES / "pre-deploy" / "deploy.sh"]
    bash = [REPO_ROOT / "action" / "install.sh", REPO_ROOT / "action" / "run-check.sh"]
    for shell, scripts in (("sh", posix), ("bash", bash)):
        done = subprocess.run([tool, "-s", shell, *map(str, scripts)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout
