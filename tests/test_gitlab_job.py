"""The GitLab job template: valid against GitLab's CI schema, and run for real by gitlab-ci-local against
crgate's built-in emulator (a clean image passes, a vulnerable one fails the job, the reports are
produced and valid against GitLab's official schema)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

from conftest import REPO_ROOT, SHARED
from integration import gitlab_ci_local, need, venv_tool

TEMPLATE = REPO_ROOT / "action" / "gitlab" / "crgate.yml"
EXAMPLE = REPO_ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
REPORTS = ("crgate-report.json", "crgate-summary.md", "gl-container-scanning-report.json", "crgate-junit.xml")


def split_template(tmp_path: Path) -> tuple[Path, Path]:
    """The header (``spec:``) and the jobs, as the two documents check-jsonschema validates one by one."""
    header, jobs = TEMPLATE.read_text(encoding="utf-8").split("\n---\n", 1)
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
    (job,) = jobs.values()
    assert job["artifacts"]["reports"] == {
        "container_scanning": "gl-container-scanning-report.json",
        "junit": "crgate-junit.xml",
    }
    assert "crgate-report.json" in job["artifacts"]["paths"] and job["artifacts"]["when"] == "always"
    assert "CRGATE_OIDC_TOKEN" in job["id_tokens"]
    from crgate import __version__

    assert inputs["install"]["default"].endswith(f"/v{__version__}.tar.gz"), "bump the template with the version"
    script = "\n".join(job["script"])
    assert "$[[" not in script, "inputs must reach the script through variables, never as script text"
    # Keyless: crgate must read the job's OIDC token from the variable id_tokens fills.
    assert "--oidc-token-env CRGATE_OIDC_TOKEN" in script


# -- gitlab-ci-local --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Both jobs of a project that includes the template twice, run by gitlab-ci-local (shell executor)."""
    tool = gitlab_ci_local()
    need(tool, "gitlab-ci-local is not installed (npm install --prefix .ci/node gitlab-ci-local@4.60.0)")
    need(shutil.which("rsync"), "rsync is not installed (apt-get install -y rsync); gitlab-ci-local needs it")
    need(shutil.which("git"), "git is not installed")
    crgate = venv_tool("crgate")
    assert tool and crgate
    root = tmp_path_factory.mktemp("gitlab")
    venv = root / "venv" / "bin"  # the job reuses the test venv's crgate (CRGATE_VENV) instead of pip installing
    venv.mkdir(parents=True)
    (venv / "crgate").symlink_to(crgate)
    (venv / "python").symlink_to(sys.executable)
    project = root / "project"
    project.mkdir()
    shutil.copy(TEMPLATE, project / "crgate.yml")
    (project / ".gitlab-ci.yml").write_text(
        yaml.safe_dump(
            {
                "include": [
                    {
                        "local": "crgate.yml",
                        "inputs": {"images": "cr.yandex/crpdemo/app:clean", "emulator": True, "job-name": "clean"},
                    },
                    {
                        "local": "crgate.yml",
                        "inputs": {
                            "images": "cr.yandex/crpdemo/app:clean\ncr.yandex/crpdemo/app:vulnerable\n",
                            "emulator": True,
                            "job-name": "vulnerable",
                        },
                    },
                ]
            }
        )
    )
    git = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "ci"], cwd=project, check=True)
    results = {}
    for job in ("clean", "vulnerable"):
        done = subprocess.run(
            [
                tool,
                "--shell-executor-no-image",
                "--force-shell-executor",  # the template names an image; run its script on this machine
                "--variable",
                f"CRGATE_VENV={venv.parent}",
                job,
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        results[job] = (done.returncode, done.stdout + done.stderr, project / ".gitlab-ci-local" / "artifacts" / job)
    return results


def test_clean_image_passes_the_job(pipeline):
    code, log, artifacts = pipeline["clean"]
    assert code == 0, log
    assert "PASS  clean" in log and "PASS: 1 image within policy built-in default (exit 0)" in log
    assert sorted(p.name for p in artifacts.iterdir()) == sorted(REPORTS)


def test_vulnerable_image_fails_the_job(pipeline):
    code, log, artifacts = pipeline["vulnerable"]
    assert code != 0, log
    assert "FAIL  vulnerable" in log
    assert "cr.yandex/crpdemo/app:vulnerable: critical 6 > 0, high 7 > 0" in log
    assert sorted(p.name for p in artifacts.iterdir()) == sorted(REPORTS)  # artifacts: when: always
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
