"""The README's copy-paste setups for GitHub, GitLab and the pre-deploy hook name only real inputs,
options and files."""

from __future__ import annotations

import re

import yaml

from conftest import REPO_ROOT, run_cli

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, title
    return match.group(1)


def yaml_blocks(text: str) -> list:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)\n```", text, re.S)]


def test_github_snippet_uses_only_real_inputs_and_outputs():
    text = section("GitHub Actions")
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    (snippet,) = yaml_blocks(text)
    gate = next(step for step in snippet["steps"] if str(step.get("uses", "")).startswith("crgate/crgate@"))
    assert set(gate["with"]) <= set(action["inputs"])
    for output in re.findall(r"steps\.crgate\.outputs\.([\w-]+)", text):
        assert output in action["outputs"], output
    for name in action["inputs"]:
        assert f"`{name}`" in text, f"input {name} is not documented"
    for name in action["outputs"]:
        assert f"`{name}`" in text, f"output {name} is not documented"


def test_gitlab_snippet_uses_only_real_inputs():
    text = section("GitLab CI")
    header, _ = yaml.safe_load_all((REPO_ROOT / "templates" / "crgate.yml").read_text())
    inputs = header["spec"]["inputs"]
    required = {name for name, spec in inputs.items() if "default" not in spec}
    (snippet,) = yaml_blocks(text)
    includes = snippet["include"]
    # Every way to include it, each pinned to a version.
    kinds = {kind for include in includes for kind in ("component", "remote", "project") if kind in include}
    assert kinds == {"component", "remote", "project"}
    for include in includes:
        assert set(include["inputs"]) <= set(inputs) and required <= set(include["inputs"]), include
        if "remote" in include:
            assert include["remote"].endswith("/v0.1.0/templates/crgate.yml") and include["integrity"]
        if "component" in include:
            assert include["component"].endswith("/crgate@0.1.0")
        if "project" in include:
            assert include["ref"] == "v0.1.0" and include["file"] == "/templates/crgate.yml"
    for name in inputs:
        assert f"`{name}`" in text, f"input {name} is not documented"
    for report in ("codequality", "container_scanning", "junit"):
        assert f"`{report}`" in text


def test_pre_deploy_snippet_names_the_hook_and_options():
    text = section("Pre-deploy hook")
    assert "action/hooks/pre-deploy rendered.yaml" in text
    assert (REPO_ROOT / "action" / "hooks" / "pre-deploy").is_file()
    hook = (REPO_ROOT / "action" / "hooks" / "pre-deploy").read_text()
    variables = re.findall(r"^#   (CRGATE\w*)\s", hook, re.M)
    assert "CRGATE_PIN_TO" in variables
    for name in variables:
        assert f"`{name}`" in text, f"hook variable {name} is not documented"
    help_text = run_cli(["check", "--help"]).stdout
    for option in set(re.findall(r"`crgate check (--[\w-]+)", text)):
        assert option in help_text
    for path in re.findall(r"`((?:examples|action)/[\w./-]+)`", README):
        assert (REPO_ROOT / path).exists(), path
