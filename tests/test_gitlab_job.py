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


def test_template_shape():
    header, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    inputs = header["spec"]["inputs"]
    for name in ("images", "policy", "stage", "timeout", "job-name", "iam-token-variable", "sa-key-variable"):
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

    assert inputs["install"]["default"].endswith(f"/v{__version__}.tar.gz"), "bump the template with the version"
    script = "\n".join(job["script"])
    assert "$[[" not in script, "inputs must reach the script through variables, never as script text"
    # Keyless: crgate must read the job's OIDC token from the variable id_tokens fills.
    assert "--oidc-token-env CRGATE_OIDC_TOKEN" in script


def test_component_shape():
    header, jobs = yaml.safe_load_all(TEMPLATE.read_text(encoding="utf-8"))
    inputs = header["spec"]["inputs"]
    assert inputs["allow-violations"] == {**inputs["allow-violations"], "type": "boolean", "default": False}
    assert inputs["only-fixed"]["type"] == "boolean" and inputs["needs"]["type"] == "array"
    assert "default" not in inputs["needs"], "a gate that does not wait for the push could judge an older image"
    for name in ("thresholds", "platform", "args"):
        assert inputs[name]["default"] == "" and inputs[name]["description"]
    name, job = gating_job(jobs)
    assert job["needs"] == "$[[ inputs.needs ]]" and job["dependencies"] == []
    assert job["rules"][0] == {"if": "$CRGATE_DISABLED", "when": "never"}
    assert job["cache"]["paths"] == [".crgate-pip-cache/"] and job["cache"]["when"] == "always"
    assert job["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.crgate-pip-cache"
    # allow-violations: exit 1 alone may fail, never the exit codes of errors.
    assert jobs[f".{name}-allow-violations-true"] == {"allow_failure": {"exit_codes": [1]}}
    assert jobs[f".{name}-allow-violations-false"] == {"allow_failure": False}
    assert job["extends"] == f".{name}-allow-violations-$[[ inputs.allow-violations ]]"
    # Every failure of the script besides crgate's own verdict exits 2 or 3, never 1.
    script = "\n".join(job["script"])
    assert (
        "set -e" not in script and re.findall(r"\bfail (\d)", script) and "1" not in re.findall(r"\bfail (\d)", script)
    )
    assert "exec " in script and "shlex.split" in script


def test_readme_integrity_matches_the_template():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"integrity: (sha256-[A-Za-z0-9+/=]+)", readme + EXAMPLE.read_text(encoding="utf-8"))
    assert shown and set(shown) == {integrity(TEMPLATE)}, (
        f"README and examples/gitlab/.gitlab-ci.yml must show integrity: {integrity(TEMPLATE)} for the template"
    )


# -- gitlab-ci-local --------------------------------------------------------------------------------


JOBS: dict[str, dict] = {
    # name: (how it is included, inputs)
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
            "images": VULNERABLE,
            "thresholds": "critical=5, high=7",
            "only-fixed": True,
            "args": "--today 2026-01-01 --output 'junit=extra junit.xml'",
        },
    },
    "bad-args": {
        "local": "templates/crgate.yml",
        "inputs": {"images": VULNERABLE, "args": "--today '2026", "allow-violations": True},
    },
}


def gitlab_ci_local_run(tool: str, project: Path, venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool,
            "--shell-executor-no-image",
            "--force-shell-executor",  # the template names an image; run its script on this machine
            "--variable",
            f"CRGATE_VENV={venv}",
            *args,
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[str, Path, Path]:
    """A git project whose .gitlab-ci.yml includes the component once per job of JOBS, and a venv
    with the test venv's crgate (CRGATE_VENV: the job reuses it instead of pip installing)."""
    tool = gitlab_ci_local()
    need(tool, "gitlab-ci-local is not installed (npm install --prefix .ci/node gitlab-ci-local@4.60.0)")
    need(shutil.which("rsync"), "rsync is not installed (apt-get install -y rsync); gitlab-ci-local needs it")
    need(shutil.which("git"), "git is not installed")
    crgate = venv_tool("crgate")
    assert tool and crgate
    root = tmp_path_factory.mktemp("gitlab")
    venv = root / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "crgate").symlink_to(crgate)
    (venv / "python").symlink_to(sys.executable)
    project = root / "project"
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
    include = []
    for name, spec in JOBS.items():
        inputs = {"emulator": True, "job-name": name, "needs": [], **spec["inputs"]}
        include.append({**{k: v for k, v in spec.items() if k != "inputs"}, "inputs": inputs})
    # A later job reads the gate's dotenv report: the pinned references are its variables.
    deploy = {
        "stage": "deploy",
        "needs": ["clean"],
        "script": ['echo "deploying [$CRGATE_PINNED_IMAGES] after verdict [$CRGATE_VERDICT]"'],
    }
    pipeline_file = {"include": include, "deploy": deploy}
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline_file, sort_keys=False))
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "remote", "add", "origin", "git@gitlab.com:crgate/crgate.git"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "ci"], cwd=project, check=True)
    return tool, project, venv.parent


@pytest.fixture(scope="module")
def pipeline(project) -> dict[str, tuple[int, str, Path]]:
    """Each job of JOBS run by gitlab-ci-local (shell executor): exit code, log, artifacts."""
    tool, directory, venv = project
    results = {}
    for job in JOBS:
        done = gitlab_ci_local_run(tool, directory, venv, job)
        results[job] = (done.returncode, done.stdout + done.stderr, directory / ".gitlab-ci-local" / "artifacts" / job)
    return results


def test_clean_image_passes_the_job(pipeline):
    code, log, artifacts = pipeline["clean"]
    assert code == 0, log
    assert "PASS  clean" in log and "PASS: 1 image within policy built-in default (exit 0)" in log
    assert sorted(p.name for p in artifacts.iterdir() if p.name != DOTENV_DIR) == sorted(REPORTS)


def test_a_later_job_gets_the_pinned_references_from_the_dotenv_report(pipeline, project):
    code, log, artifacts = pipeline["clean"]
    assert code == 0, log
    tool, directory, venv = project
    done = gitlab_ci_local_run(tool, directory, venv, "deploy")
    assert done.returncode == 0, done.stdout + done.stderr
    pinned = "cr.yandex/crpdemo/app@sha256:d2a6f29620b33e4d4249d0c56ae86c99b0df56c3c3dd63ade959b81483528c35"
    assert f"deploying [{pinned}] after verdict [pass]" in done.stdout + done.stderr
    dotenv = artifacts / DOTENV_DIR / "dotenv" / "crgate-pinned.env"
    assert dotenv.read_text() == f"CRGATE_VERDICT=pass\nCRGATE_PINNED_IMAGES={pinned}\n"


def test_vulnerable_image_fails_the_job(pipeline):
    code, log, artifacts = pipeline["vulnerable"]
    assert code != 0, log
    assert "FAIL  vulnerable" in log
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log
    assert sorted(p.name for p in artifacts.iterdir() if p.name != DOTENV_DIR) == sorted(
        REPORTS
    )  # artifacts: when: always
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


def test_allow_violations_still_fails_the_pipeline_on_an_error(pipeline):
    _, log, artifacts = pipeline["allowed-error"]
    assert status(log, "allowed-error") == "FAIL" and re.search(r"allowed-error finished in .* FAIL 3", log), log
    assert json.loads((artifacts / "crgate-report.json").read_text())["verdict"] == "error"


def test_args_that_cannot_be_split_fail_even_with_allow_violations(pipeline):
    _, log, _ = pipeline["bad-args"]
    assert status(log, "bad-args") == "FAIL" and re.search(r"bad-args finished in .* FAIL 2", log), log
    assert "input args cannot be split: No closing quotation" in log


def test_thresholds_only_fixed_and_args(pipeline):
    code, log, artifacts = pipeline["limits"]
    assert code == 0, log
    report = json.loads((artifacts / "crgate-report.json").read_text())
    assert report["verdict"] == "pass" and report["policy"]["thresholds"] == {"critical": 5, "high": 7}
    assert (artifacts.parent.parent.parent / "extra junit.xml").is_file()  # args reached crgate as one word


def test_code_quality_report_lists_the_counted_findings(pipeline):
    report = json.loads((pipeline["vulnerable"][2] / "gl-code-quality-report.json").read_text())
    assert len(report) == 27
    assert {entry["severity"] for entry in report} <= {"info", "minor", "major", "critical", "blocker"}
    assert all(entry["location"]["path"] and entry["location"]["lines"]["begin"] >= 1 for entry in report)


def test_crgate_disabled_skips_the_job(project):
    tool, directory, venv = project
    listed = gitlab_ci_local_run(tool, directory, venv, "--list", "--variable", "CRGATE_DISABLED=1")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    enabled = gitlab_ci_local_run(tool, directory, venv, "--list")
    assert re.search(r"^clean\s", enabled.stdout, re.M), enabled.stdout
    assert not re.search(r"^clean\s", listed.stdout, re.M), listed.stdout
