"""The GitLab CI/CD component (templates/crgate.yml): valid against GitLab's CI schema, and run for real
by gitlab-ci-local against crgate's built-in emulator, included the four ways users include it
(component, remote, project, local; the first three from gitlab-ci-local's include cache, as it keeps
fetched files): a clean image passes, a vulnerable one fails the job, allow-violations lets a violation
(and only a violation) fail as a warning, CRGATE_DISABLED skips the job, and the reports are produced
and valid against GitLab's official schema."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

from conftest import REPO_ROOT, SHARED
from integration import gitlab_ci_local, need, venv_tool
from wheelhouse import PLANTED_MARK, SwappableIndex, image_venv, planted_wheel, prime_pip_cache

TEMPLATE = REPO_ROOT / "templates" / "crgate.yml"
EXAMPLE = REPO_ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
REPORTS = (
    "crgate-report.json",
    "crgate-summary.md",
    "gl-container-scanning-report.json",
    "gl-code-quality-report.json",
    "crgate-junit.xml",
)
DOTENV_DIR = ".gitlab-ci-reports"  # where gitlab-ci-local keeps a job's dotenv report
VERSION_TAG = "v0.1.0"
REMOTE = f"https://raw.githubusercontent.com/crgate/crgate/{VERSION_TAG}/templates/crgate.yml"
COMPONENT = "gitlab.com/crgate/crgate/crgate@0.1.0"
CLEAN, VULNERABLE = "cr.yandex/crpdemo/app:clean", "cr.yandex/crpdemo/app:vulnerable"


def integrity(path: Path) -> str:
    """GitLab's ``include:integrity``: ``sha256-`` and the base64 of the file's SHA-256 (SRI form)."""
    return "sha256-" + base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def gating_job(jobs: dict) -> tuple[str, dict]:
    (name,) = [name for name in jobs if not name.startswith(".")]
    return name, jobs[name]


def split_template(tmp_path: Path) -> tuple[Path, Path]:
    """The header (``spec:``) and the jobs, as the two documents check-jsonschema validates one by one.
    Array inputs are interpolated (``needs: [build]``), as GitLab does before it validates; string
    inputs may stay ``$[[ ]]`` text, which the schema accepts wherever a string goes."""
    header, jobs = TEMPLATE.read_text(encoding="utf-8").split("\n---\n", 1)
    jobs = jobs.replace("$[[ inputs.needs ]]", "[build]")
    header_path, jobs_path = tmp_path / "header.yml", tmp_path / "jobs.yml"
    header_path.write_text(header + "\n")
    jobs_path.write_text(jobs)
    return header_path, jobs_path


def check_gitlab_schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = venv_tool("check-jsonschema")
    need(tool, "check-jsonschema is not installed (pip install -e '.[test]')")
    assert tool
    args = [tool, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci", *map(str, paths)]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def test_template_validates_against_gitlab_ci_schema(tmp_path):
    done = check_gitlab_schema(*split_template(tmp_path), EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_catches_a_broken_job(tmp_path):
    _, jobs = split_template(tmp_path)
    jobs.write_text(jobs.read_text().replace("  artifacts:\n", "  artefacts:\n", 1))
    assert check_gitlab_schema(jobs).returncode != 0


def script_of(job: dict) -> str:
    return "\n".join(job["script"])


def test_template_shape():
    header, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    inputs = header["spec"]["inputs"]
    for name in ("images", "policy", "policy-sha256", "stage", "timeout", "job-name", "iam-token-variable"):
        assert name in inputs and inputs[name]["description"]
    _, job = gating_job(jobs)
    assert job["artifacts"]["reports"] == {
        "codequality": "gl-code-quality-report.json",
        "container_scanning": "gl-container-scanning-report.json",
        "junit": "crgate-junit.xml",
        "dotenv": "crgate-pinned.env",
    }
    assert "crgate-report.json" in job["artifacts"]["paths"] and job["artifacts"]["when"] == "always"
    assert "CRGATE_OIDC_TOKEN" in job["id_tokens"]
    from crgate import __version__

    assert re.fullmatch(rf"crgate=={re.escape(__version__)} --hash=sha256:[0-9a-f]{{64}}", inputs["install"]["default"])
    # Keyless: crgate must read the job's OIDC token from the variable id_tokens fills.
    assert '"--oidc-token-env", "CRGATE_OIDC_TOKEN"' in script_of(job)


def test_inputs_reach_the_script_only_as_quoted_here_documents():
    """An input is interpolated into the script (a CI/CD variable cannot replace it), and only as the
    body of a quoted here-document (no shell expands it); no input goes through ``variables:``."""
    header, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    _, job = gating_job(jobs)
    assert "variables" not in job and job["inherit"] == {"default": False, "variables": False}
    lines = script_of(job).splitlines()
    used = set()
    for number, line in enumerate(lines):
        for name in re.findall(r"\$\[\[\s*inputs\.([\w-]+)", line):
            assert line == f"$[[ inputs.{name} ]]", line
            assert lines[number - 1] == f"cat > \"$crgate_job/inputs/{name}\" <<'CRGATE_INPUT_END'"
            assert lines[number + 1] == "CRGATE_INPUT_END"
            used.add(name)
    helper_inputs = set(
        re.search(r"INPUTS = \((.*?)\)", script_of(job), re.S).group(1).replace('"', "").replace(",", " ").split()
    )
    assert used == helper_inputs
    assert used | {"needs", "job-name", "stage", "image", "id-token-audience"} == set(header["spec"]["inputs"])


def test_the_embedded_lock_and_helper_are_the_actions():
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "action" / "embed.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    _, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    script = script_of(gating_job(jobs)[1])
    lock = (REPO_ROOT / "action" / "requirements.lock").read_text(encoding="utf-8")
    assert lock in script and "--require-hashes" in script and "--only-binary=:all:" in script


def test_component_shape():
    header, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    inputs = header["spec"]["inputs"]
    assert inputs["allow-violations"] == {**inputs["allow-violations"], "type": "boolean", "default": False}
    assert inputs["only-fixed"]["type"] == "boolean" and inputs["needs"]["type"] == "array"
    assert "default" not in inputs["needs"], "a gate that does not wait for the push could judge an older image"
    for name in ("thresholds", "platform", "args", "policy-sha256"):
        assert inputs[name]["default"] == "" and inputs[name]["description"]
    name, job = gating_job(jobs)
    assert job["needs"] == "$[[ inputs.needs ]]" and job["dependencies"] == []
    assert "rules" not in job, "a disabled gate must leave a visible job (exit 10), not vanish"
    assert job["cache"]["paths"] == [".crgate-pip-cache/"] and job["cache"]["when"] == "always"
    # allow-violations: exit 1 alone may fail, never the exit codes of errors; 10 is the kill switch.
    assert jobs[f".{name}-allow-violations-true"] == {"allow_failure": {"exit_codes": [1, 10]}}
    assert jobs[f".{name}-allow-violations-false"] == {"allow_failure": {"exit_codes": [10]}}
    assert job["extends"] == f".{name}-allow-violations-$[[ inputs.allow-violations ]]"
    # The script's own failures are 2 (USAGE) or 3 (INSTALL), never 1.
    script = script_of(job)
    assert "USAGE, INSTALL, DISABLED = 2, 3, 10" in script and "set -e" not in script
    assert not re.search(r"\bexit 1\b|return 1\b", script)


def test_readme_integrity_matches_the_template():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"integrity: (sha256-[A-Za-z0-9+/=]+)", readme + EXAMPLE.read_text(encoding="utf-8"))
    assert shown and set(shown) == {integrity(TEMPLATE)}, (
        f"README and examples/gitlab/.gitlab-ci.yml must show integrity: {integrity(TEMPLATE)} for the template"
    )


def test_the_release_step_pins_the_install_default_and_the_shown_integrity(wheelhouse):
    """``action/embed.py --pin-release WHEEL``: the install default names the wheel by its sha256 (in the
    form the job accepts), and the README's integrity follows the pinned template."""
    sys.path.insert(0, str(REPO_ROOT / "action"))
    try:
        import embed
    finally:
        sys.path.remove(str(REPO_ROOT / "action"))
    template = TEMPLATE.read_text(encoding="utf-8")
    released = embed.pinned(embed.embedded(template), wheelhouse.crgate_wheel)
    header, _ = yaml.safe_load_all(released)
    assert header["spec"]["inputs"]["install"]["default"] == wheelhouse.crgate_requirement
    unreleased = next(yaml.safe_load_all(template))["spec"]["inputs"]["install"]["default"]
    assert released.replace(wheelhouse.crgate_requirement, "") == template.replace(unreleased, "")  # nothing else
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"integrity: {embed.integrity(released)}" in embed.with_integrity(readme, released)
    assert embed.integrity(template) == integrity(TEMPLATE)


# -- gitlab-ci-local --------------------------------------------------------------------------------


ATTACK_VARIABLES = {
    # What a merge-request author may set as pipeline variables, each of which loosened the gate before.
    "CRGATE_IMAGES": CLEAN,
    "CRGATE_ARGS": "--report-only",
    "CRGATE_THRESHOLDS": "critical=99 high=99",
    "CRGATE_ALLOW_VIOLATIONS": "true",
    "CRGATE_VENV": "PLANTED",  # replaced by the planted venv's path
    "PYTHONPATH": "PLANTED_SITE",  # a planted crgate package in the checkout
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
    "CRGATE_REGISTRY_URL": "http://127.0.0.1:9/",
}


# The jobs that install crgate from the hashed lock, as a job in a user's project does (the job the
# attacks rerun, and the one whose install input is refused; the planted-cache tests install too); every
# other job runs crgate from IMAGE_VENV through the venv input, as from a trusted image that carries it.
INSTALLING = {"vulnerable", "unpinned"}
IMAGE_VENV: list[Path] = []  # set by the project fixture


def jobs() -> dict[str, dict]:
    """name: how it is included and its inputs."""
    return {
        "clean": {"component": COMPONENT, "inputs": {"images": CLEAN}},
        "vulnerable": {"local": "templates/crgate.yml", "inputs": {"images": f"{CLEAN}\n{VULNERABLE}\n"}},
        "allowed": {"remote": REMOTE, "inputs": {"images": VULNERABLE, "allow-violations": True}},
        "allowed-error": {
            "project": "crgate/crgate",
            "ref": VERSION_TAG,
            "file": "/templates/crgate.yml",
            "inputs": {"images": "cr.yandex/crpdemo/app:absent", "allow-violations": True},
        },
        "limits": {
            "local": "templates/crgate.yml",
            "inputs": {
                "images": "cr.yandex/$DEMO_REGISTRY/app:vulnerable",  # expanded from the job's variables
                "thresholds": "critical=5, high=7",
                "only-fixed": True,
                "args": "--today 2026-01-01 --output 'junit=extra junit.xml'",
            },
        },
        "bad-args": {
            "local": "templates/crgate.yml",
            "inputs": {"images": VULNERABLE, "args": "--today '2026", "allow-violations": True},
        },
        "pinned": {"local": "templates/crgate.yml", "inputs": {"images": CLEAN, "policy-sha256": "ab" * 32}},
        "unpinned": {"local": "templates/crgate.yml", "inputs": {"images": CLEAN, "install": UNPINNED_DEFAULT}},
        "locked": {"local": "templates/crgate.yml", "inputs": {"images": VULNERABLE, "allow-disable": False}},
        "switch": {"local": "templates/crgate.yml", "inputs": {"images": VULNERABLE}},
        # The venv input naming the venv the merge request committed (the project fixture fills it in).
        "checkout-venv": {"local": "templates/crgate.yml", "inputs": {"images": VULNERABLE, "venv": "PLANTED"}},
    }


UNPINNED_DEFAULT = "crgate==0.1.0 --hash=sha256:" + "0" * 64


def gitlab_ci_local_run(tool: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "CRGATE_", "YC_"))}
    return subprocess.run(
        [
            tool,
            "--shell-executor-no-image",
            "--force-shell-executor",  # the template names an image; run its script on this machine
            "--variable",
            "DEMO_REGISTRY=crpdemo",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def plant(project: Path) -> None:
    """What a merge request commits to pass the gate: a venv at the path the component used to run, a
    crgate package for PYTHONPATH, each printing PASS and exiting 0."""
    fake = f'#!/bin/sh\necho "{PLANTED_MARK}"\nexit 0\n'
    for name in ("crgate", "python", "python3"):
        path = project / ".crgate-venv" / "bin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fake)
        path.chmod(0o755)
    site = project / "planted-site" / "crgate"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(f"print({PLANTED_MARK!r})\nraise SystemExit(0)\n")
    (site / "__main__.py").write_text("")


def commit(project: Path) -> None:
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "init.defaultBranch=main"]
    if not (project / ".git").exists():
        subprocess.run([*git, "init", "-q"], cwd=project, check=True)
        subprocess.run([*git, "remote", "add", "origin", "git@gitlab.com:crgate/crgate.git"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A", "-f"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "ci", "--allow-empty"], cwd=project, check=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory, wheelhouse) -> tuple[str, Path]:
    """A git project whose .gitlab-ci.yml includes the component once per job, with a planted venv and
    crgate package committed (as a merge request could); the INSTALLING jobs install from the local
    wheelhouse, the others use a venv built from it once, outside the project (``venv`` input)."""
    tool = gitlab_ci_local()
    need(tool, "gitlab-ci-local is not installed (npm install --prefix .ci/node gitlab-ci-local@4.60.0)")
    need(shutil.which("rsync"), "rsync is not installed (apt-get install -y rsync); gitlab-ci-local needs it")
    need(shutil.which("git"), "git is not installed")
    assert tool
    project = tmp_path_factory.mktemp("gitlab") / "project"
    (project / "templates").mkdir(parents=True)
    shutil.copy(TEMPLATE, project / "templates" / "crgate.yml")
    # What gitlab-ci-local would have fetched for remote, project and component includes (no network).
    cache = project / ".gitlab-ci-local" / "includes"
    for seeded in (
        cache / REMOTE.removeprefix("https://"),
        cache / "gitlab.com" / "crgate" / "crgate" / VERSION_TAG / "templates" / "crgate.yml",
        cache / "gitlab.com" / "crgate" / "crgate" / "0.1.0" / "templates" / "crgate.yml",
    ):
        seeded.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE, seeded)
    if not IMAGE_VENV:
        IMAGE_VENV.append(image_venv(wheelhouse, tmp_path_factory.mktemp("image") / "crgate-venv"))
    include = []
    for name, spec in jobs().items():
        inputs = {
            "emulator": True,
            "job-name": name,
            "needs": [],
            "install": wheelhouse.crgate_requirement,
            "emulator-install": wheelhouse.emulator_requirement,
            "index-url": wheelhouse.index_url,
            **({} if name in INSTALLING else {"venv": str(IMAGE_VENV[0])}),
            **spec["inputs"],
        }
        if inputs.get("venv") == "PLANTED":
            inputs["venv"] = str(project / ".crgate-venv")
        include.append({**{k: v for k, v in spec.items() if k != "inputs"}, "inputs": inputs})
    # A later job reads the gate's dotenv report: the pinned references are its variables.
    deploy = {
        "stage": "deploy",
        "needs": ["clean"],
        "script": ['echo "deploying [$CRGATE_PINNED_IMAGES] after verdict [$CRGATE_VERDICT]"'],
    }
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump({"include": include, "deploy": deploy}, sort_keys=False))
    plant(project)
    commit(project)
    return tool, project


@pytest.fixture(scope="module")
def pipeline(project) -> dict[str, tuple[int, str, Path]]:
    """Each job run by gitlab-ci-local (shell executor): exit code, log, artifacts."""
    tool, directory = project
    results = {}
    for job in jobs():
        done = gitlab_ci_local_run(tool, directory, job)
        results[job] = (done.returncode, done.stdout + done.stderr, directory / ".gitlab-ci-local" / "artifacts" / job)
    return results


def test_clean_image_passes_the_job(pipeline):
    code, log, artifacts = pipeline["clean"]
    assert code == 0, log
    assert "PASS  clean" in log and "PASS: 1 image within policy built-in default (exit 0)" in log
    assert sorted(p.name for p in artifacts.iterdir() if p.name != DOTENV_DIR) == sorted(REPORTS)
    assert PLANTED_MARK not in log
    # crgate's loosenings block (a collapsed section with a warning header) comes before any scan: the
    # emulator, which crgate names itself, and the kill switch a variable may pull, which the component
    # declares; the JSON report records both.
    # (gitlab-ci-local sets GITLAB_CI=false, so crgate prints its plain block; GitLab's own collapsed section
    # is tested in tests/test_provenance.py.)
    block = [
        "2 settings make the gate weaker than its policy file",
        "- emulator (--emulator): results come from crgate's built-in emulator (its demo data), not Yandex Cloud",
        f"- declared (--declare-loosening): {ALLOW_DISABLE}",
    ]
    at = [log.index(line) for line in block]
    assert at == sorted(at) and at[-1] < log.index("clean: scanning"), log
    assert "WARNING: crgate: loosening: " + ALLOW_DISABLE in log  # the component's own line, before the install
    assert declared(artifacts) == [ALLOW_DISABLE]


def test_a_later_job_gets_the_pinned_references_from_the_dotenv_report(pipeline, project):
    code, log, artifacts = pipeline["clean"]
    assert code == 0, log
    tool, directory = project
    done = gitlab_ci_local_run(tool, directory, "deploy")
    assert done.returncode == 0, done.stdout + done.stderr
    pinned = "cr.yandex/crpdemo/app@sha256:d2a6f29620b33e4d4249d0c56ae86c99b0df56c3c3dd63ade959b81483528c35"
    assert f"deploying [{pinned}] after verdict [pass]" in done.stdout + done.stderr
    dotenv = artifacts / DOTENV_DIR / "dotenv" / "crgate-pinned.env"
    assert dotenv.read_text() == f"CRGATE_VERDICT=pass\nCRGATE_PINNED_IMAGES={pinned}\n"


def test_vulnerable_image_fails_the_job(pipeline):
    _, log, artifacts = pipeline["vulnerable"]
    assert status(log, "vulnerable") == "FAIL", log
    assert "FAIL  vulnerable" in log
    assert "(made by this job; pip cache .crgate-pip-cache/, every file checked by hash)" in log  # installed
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log
    assert sorted(p.name for p in artifacts.iterdir() if p.name != DOTENV_DIR) == sorted(REPORTS)  # when: always
    xml = JUnitXml.fromfile(str(artifacts / "crgate-junit.xml"))
    assert xml.failures == 3 and xml.errors == 0
    assert json.loads((artifacts / "crgate-report.json").read_text())["verdict"] == "fail"
    assert "❌ FAIL (exit 1)" in (artifacts / "crgate-summary.md").read_text()


@pytest.mark.parametrize("job", ["clean", "vulnerable"])
def test_container_scanning_reports_are_schema_valid(pipeline, job):
    import jsonschema

    schema_path = SHARED / "schemas" / "gitlab-container-scanning-report-format-15.0.7.json"
    need(schema_path.is_file(), f"GitLab's schema not found at {schema_path} (../shared beside the checkout)")
    schema = json.loads(schema_path.read_text())
    report = json.loads((pipeline[job][2] / "gl-container-scanning-report.json").read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(report)
    assert len(report["vulnerabilities"]) == (0 if job == "clean" else 27)


ALLOW_DISABLE = (
    "allow-disable: true (GitLab component): the CI/CD variable CRGATE_DISABLED=true or 1 can switch this gate "
    "off (it did not in this run)"
)
ALLOW_VIOLATIONS = "allow-violations: true (GitLab component): a policy violation does not fail the pipeline"


def declared(artifacts: Path) -> list[str]:
    """The loosenings the component declared, as the job's JSON report's provenance records them."""
    report = json.loads((artifacts / "crgate-report.json").read_text())
    return [item["detail"] for item in report["provenance"]["loosenings"] if item["kind"] == "declared"]


def status(log: str, job: str) -> str:
    """The job's status in gitlab-ci-local's summary: PASS, WARN (failed, allowed to) or FAIL (failed,
    not allowed: GitLab fails the pipeline). It follows allow_failure:exit_codes as GitLab does; its own
    process exit code does not (any allow_failure object counts as allowed there), so read this."""
    found = re.findall(rf"^ (PASS|WARN|FAIL) .*?\s{re.escape(job)}(?:\s+pre_script)?\s*$", log, re.M)
    assert len(found) == 1, log
    return found[0]


def test_allow_violations_lets_a_violation_fail_as_a_warning(pipeline):
    code, log, artifacts = pipeline["allowed"]
    assert code == 0, log  # the pipeline goes on
    assert status(log, "allowed") == "WARN" and re.search(r"allowed finished in .* WARN 1", log), log
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log
    assert json.loads((artifacts / "crgate-report.json").read_text())["verdict"] == "fail"
    assert "WARNING: crgate: loosening: " + ALLOW_VIOLATIONS in log
    assert f"- declared (--declare-loosening): {ALLOW_VIOLATIONS}" in log
    assert declared(artifacts) == [ALLOW_VIOLATIONS, ALLOW_DISABLE]
    # ... and in the reports GitLab shows: JUnit properties and the container scanning report's options.
    junit = (artifacts / "crgate-junit.xml").read_text()
    scanning = (artifacts / "gl-container-scanning-report.json").read_text()
    assert all(ALLOW_VIOLATIONS in text for text in (junit, scanning))


def test_allow_violations_still_fails_the_pipeline_on_an_error(pipeline):
    _, log, artifacts = pipeline["allowed-error"]
    assert status(log, "allowed-error") == "FAIL" and re.search(r"allowed-error finished in .* FAIL 3", log), log
    assert json.loads((artifacts / "crgate-report.json").read_text())["verdict"] == "error"


def test_args_that_cannot_be_split_fail_even_with_allow_violations(pipeline):
    _, log, _ = pipeline["bad-args"]
    assert status(log, "bad-args") == "FAIL" and re.search(r"bad-args finished in .* FAIL 2", log), log
    assert "input args cannot be split: No closing quotation" in log


def test_thresholds_only_fixed_args_and_an_expanded_image(pipeline):
    code, log, artifacts = pipeline["limits"]
    assert code == 0, log
    report = json.loads((artifacts / "crgate-report.json").read_text())
    assert report["verdict"] == "pass" and report["policy"]["thresholds"] == {"critical": 5, "high": 7}
    assert (artifacts.parent.parent.parent / "extra junit.xml").is_file()  # args reached crgate as one word
    assert "input images expanded: cr.yandex/$DEMO_REGISTRY/app:vulnerable -> cr.yandex/crpdemo/app:vulnerable" in log


def test_code_quality_report_lists_the_counted_findings(pipeline):
    report = json.loads((pipeline["vulnerable"][2] / "gl-code-quality-report.json").read_text())
    assert len(report) == 27
    assert {entry["severity"] for entry in report} <= {"info", "minor", "major", "critical", "blocker"}
    assert all(entry["location"]["path"] and entry["location"]["lines"]["begin"] >= 1 for entry in report)


def test_policy_sha256_input_stops_a_policy_that_differs(pipeline):
    _, log, _ = pipeline["pinned"]
    assert status(log, "pinned") == "FAIL" and re.search(r"pinned finished in .* FAIL 2", log), log
    assert f"but --policy-sha256 requires {'ab' * 32}: the policy is not the one its owners pinned" in log


def test_an_unpinned_install_input_is_refused(pipeline):
    _, log, _ = pipeline["unpinned"]
    assert status(log, "unpinned") == "FAIL" and re.search(r"unpinned finished in .* FAIL 2", log), log
    assert "input install is not pinned to a released file yet (its hash is all zeros)" in log


def test_a_venv_from_the_image_runs_crgate_as_it_is(pipeline):
    """The venv input: crgate from a venv the job's image carries, nothing installed (the limits job)."""
    _, log, _ = pipeline["limits"]
    assert f"venv: {IMAGE_VENV[0]} (input venv: the image's; nothing installed, install is not used)" in log
    assert "THESE PACKAGES" not in log and PLANTED_MARK not in log


def test_a_venv_input_inside_the_checkout_is_refused(pipeline, project):
    """A venv input that names a directory of the checkout (where a merge request plants one) is exit 2,
    naming it, before anything there runs."""
    _, log, _ = pipeline["checkout-venv"]
    _, directory = project
    assert status(log, "checkout-venv") == "FAIL" and re.search(r"checkout-venv finished in .* FAIL 2", log), log
    assert f"input venv names {directory / '.crgate-venv'}, inside {directory}, where the checkout is" in log
    assert PLANTED_MARK not in log


# -- attacks: what a merge request or a pipeline variable tries -------------------------------------


def test_planted_venv_pythonpath_and_variables_do_not_loosen_the_gate(project, wheelhouse):
    """The merge request committed .crgate-venv/bin/crgate (PASS, exit 0) and a crgate package, and the
    pipeline's variables swap the image, the limits, the args and the venv: the gate still fails the
    vulnerable image with the genuine crgate, and the log names every variable it ignored."""
    tool, directory = project
    variables = dict(ATTACK_VARIABLES)
    variables["CRGATE_VENV"] = str(directory / ".crgate-venv")
    variables["PYTHONPATH"] = str(directory / "planted-site")
    args = [arg for name, value in variables.items() for arg in ("--variable", f"{name}={value}")]
    done = gitlab_ci_local_run(tool, directory, *args, "vulnerable")
    log = done.stdout + done.stderr
    assert status(log, "vulnerable") == "FAIL" and re.search(r"vulnerable finished in .* FAIL 1", log), log
    assert PLANTED_MARK not in log
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log
    report = json.loads(
        (directory / ".gitlab-ci-local" / "artifacts" / "vulnerable" / "crgate-report.json").read_text()
    )
    assert report["verdict"] == "fail" and len(report["images"]) == 2
    assert (
        "WARNING: crgate: the CI/CD variable CRGATE_IMAGES='cr.yandex/crpdemo/app:clean' is ignored: "
        "the input images decides" in log
    )
    assert "the CI/CD variable CRGATE_ARGS='--report-only' is ignored: the input args decides ('')" in log
    assert "the CI/CD variable CRGATE_THRESHOLDS='critical=99 high=99' is ignored" in log
    assert (
        "the CI/CD variable CRGATE_ALLOW_VIOLATIONS='true' is ignored: the input allow-violations decides ('false')"
        in log
    )
    planted_venv = directory / ".crgate-venv"
    assert f"the CI/CD variable CRGATE_VENV='{planted_venv}' is ignored: the input venv decides ('')" in log
    for name in ("PYTHONPATH", "PIP_INDEX_URL", "CRGATE_REGISTRY_URL"):
        assert f"the CI/CD variable {name} is not passed to pip or crgate" in log or f"CI/CD variable {name}=" in log


def single_job_project(tmp_path: Path, inputs: dict) -> tuple[str, Path]:
    """A project whose .gitlab-ci.yml includes the component once, as job ``crgate``."""
    tool = gitlab_ci_local()
    need(tool, "gitlab-ci-local is not installed (npm install --prefix .ci/node gitlab-ci-local@4.60.0)")
    assert tool
    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE, project / "templates" / "crgate.yml")
    (project / ".gitlab-ci.yml").write_text(
        yaml.safe_dump({"include": [{"local": "templates/crgate.yml", "inputs": inputs}]}, sort_keys=False)
    )
    return tool, project


def test_a_planted_pip_cache_entry_cannot_change_what_is_installed(tmp_path, wheelhouse):
    """The merge request commits .crgate-pip-cache/ holding, for crgate's wheel URL, an answer with the
    planted wheel's bytes, written by pip itself (pip downloaded that URL while it served the planted
    file). The control: the component's old install (an archive URL, no hash) from that cache installs
    the planted crgate although the server now serves the genuine one: the attack is real. The job,
    installing from the same server with the same cache, runs the genuine crgate, which fails the
    vulnerable image. (Over plain HTTP pip reads no HTTP cache of an untrusted host, so here the entry is
    not even read; a planted file pip does read, from a cache over HTTPS or from a mirror, is refused by
    its hash: the next test.)"""
    index = SwappableIndex(wheelhouse, tmp_path / "index")
    planted = planted_wheel(wheelhouse.crgate_wheel, tmp_path / "planted")
    inputs = {
        "images": VULNERABLE,
        "emulator": True,
        "needs": [],
        "install": wheelhouse.crgate_requirement,
        "emulator-install": wheelhouse.emulator_requirement,
        "index-url": index.index_url,
    }
    tool, project = single_job_project(tmp_path, inputs)
    cache = project / ".crgate-pip-cache"
    index.serve_crgate(planted)
    primer = prime_pip_cache(cache, index.wheel_url, tmp_path)
    index.serve_crgate(wheelhouse.crgate_wheel)
    # The control: pip as the component ran it before (no hash), with the committed cache (into the
    # primer's venv, which holds no crgate: it only downloaded).
    subprocess.run(
        [str(primer), "-m", "pip", "--isolated", "install", "--quiet", "--no-deps",
         "--cache-dir", str(cache), "--trusted-host", "127.0.0.1", index.wheel_url],
        check=True, capture_output=True,
    )  # fmt: skip
    shown = subprocess.run([str(primer.parent / "crgate")], capture_output=True, text=True, check=False)
    assert PLANTED_MARK in shown.stdout and shown.returncode == 0, shown.stdout + shown.stderr
    commit(project)
    done = gitlab_ci_local_run(tool, project, "crgate")
    log = done.stdout + done.stderr
    assert status(log, "crgate") == "FAIL" and re.search(r"crgate finished in .* FAIL 1", log), log
    assert PLANTED_MARK not in log
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log


def test_a_planted_file_pip_reads_is_refused_by_its_hash(tmp_path, wheelhouse):
    """What pip receives for crgate's wheel, from its cache or from the mirror the index-url input names,
    is the planted wheel (same name, same URL; the index even lists its hash): pip refuses it against the
    install input's hash, and the job fails with exit 3, naming why; nothing planted runs."""
    index = SwappableIndex(wheelhouse, tmp_path / "index")
    index.serve_crgate(planted_wheel(wheelhouse.crgate_wheel, tmp_path / "planted"))
    inputs = {
        "images": CLEAN,
        "emulator": True,
        "needs": [],
        "install": wheelhouse.crgate_requirement,
        "emulator-install": wheelhouse.emulator_requirement,
        "index-url": index.index_url,
    }
    tool, project = single_job_project(tmp_path, inputs)
    commit(project)
    done = gitlab_ci_local_run(tool, project, "crgate")
    log = done.stdout + done.stderr
    assert status(log, "crgate") == "FAIL" and re.search(r"crgate finished in .* FAIL 3", log), log
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in log
    assert "could not install crgate from the hashed lock" in log
    assert PLANTED_MARK not in log and "PASS  clean" not in log


@pytest.mark.parametrize("value", ["true", "1"])
def test_the_kill_switch_leaves_a_visible_job_that_says_so(project, value):
    tool, directory = project
    done = gitlab_ci_local_run(tool, directory, "--variable", f"CRGATE_DISABLED={value}", "switch")
    log = done.stdout + done.stderr
    assert status(log, "switch") == "WARN" and re.search(r"switch finished in .* WARN 10", log), log
    assert (
        f"WARNING: crgate: the gate is DISABLED by the CI/CD variable CRGATE_DISABLED={value}: no image was gated"
        in log
    )
    assert "FAIL  vulnerable" not in log


@pytest.mark.parametrize("value", ["false", "0", "no", ""])
def test_the_kill_switch_is_off_for_anything_but_true_or_1(project, value):
    """The gate runs: crgate is reached and judges (the pinned job's policy digest differs, crgate's exit 2
    before any scan: the quickest verdict crgate gives; a disabled gate would exit 10 without it)."""
    tool, directory = project
    done = gitlab_ci_local_run(tool, directory, "--variable", f"CRGATE_DISABLED={value}", "pinned")
    log = done.stdout + done.stderr
    assert status(log, "pinned") == "FAIL" and re.search(r"pinned finished in .* FAIL 2", log), log
    assert f"but --policy-sha256 requires {'ab' * 32}" in log  # crgate's own message: it ran
    assert "the gate is DISABLED" not in log
    if value:
        assert f"WARNING: crgate: CRGATE_DISABLED='{value}' is not 'true' or '1': the gate runs" in log


def test_allow_disable_false_ignores_the_kill_switch(project):
    tool, directory = project
    done = gitlab_ci_local_run(tool, directory, "--variable", "CRGATE_DISABLED=true", "locked")
    log = done.stdout + done.stderr
    assert status(log, "locked") == "FAIL" and re.search(r"locked finished in .* FAIL 1", log), log
    assert "CRGATE_DISABLED=true is ignored: this gate may not be disabled (input allow-disable: false)" in log
    # A gate no variable can switch off declares nothing of the kind.
    assert declared(directory / ".gitlab-ci-local" / "artifacts" / "locked") == []


def test_a_protected_policy_digest_variable_reaches_crgate(project):
    """CRGATE_POLICY_SHA256 (a protected variable the security team sets) is the one CRGATE_* variable
    passed on: a policy that differs stops the gate with exit 2."""
    tool, directory = project
    done = gitlab_ci_local_run(tool, directory, "--variable", "CRGATE_POLICY_SHA256=" + "cd" * 32, "switch")
    log = done.stdout + done.stderr
    assert status(log, "switch") == "FAIL" and re.search(r"switch finished in .* FAIL 2", log), log
    assert "cd" * 32 in log
