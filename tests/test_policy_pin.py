"""``--policy-sha256`` / ``CRGATE_POLICY_SHA256``: the policy's owners pin its digest, and a run whose
policy differs (a merge request that edited ``.crgate.yaml``, or deleted it so the built-in default
applies) stops with exit 2 before any call to the cloud, naming both digests."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import REPO_ROOT, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate.errors import ConfigError
from crgate.policy import BUILTIN_DEFAULT_TEXT, DEFAULT_POLICY, load_policy, policy_pins

POLICY = "version: 1\nthresholds:\n  critical: 0\n"
LOOSER = "version: 1\nthresholds:\n  critical: 99\n"
DEMO = scenario(image("img1", "1.0", "sha256:" + "1" * 64, findings=VULNERABLE_FINDINGS))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_loaded_policy_records_the_digest_of_its_bytes(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(POLICY.encode())
    assert load_policy(path).sha256 == sha(POLICY)
    # Bytes, not meaning: a comment changes the digest (the pin names a file, not a set of limits).
    path.write_bytes(("# owned by security\n" + POLICY).encode())
    assert load_policy(path).sha256 == sha("# owned by security\n" + POLICY)


def test_the_built_in_default_is_hashed_as_its_documented_text():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert DEFAULT_POLICY.sha256 == sha(BUILTIN_DEFAULT_TEXT)
    assert f"```yaml\n{BUILTIN_DEFAULT_TEXT}```" in readme, "README shows the text the default's digest is over"
    assert DEFAULT_POLICY.sha256 in readme, "README names the built-in default's digest"


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {}, []),
        ("", {"CRGATE_POLICY_SHA256": ""}, []),  # an empty variable means unset
        ("A" * 64, {}, [("--policy-sha256", "a" * 64)]),
        ("sha256:" + "b" * 64, {}, [("--policy-sha256", "b" * 64)]),
        (None, {"CRGATE_POLICY_SHA256": " " + "c" * 64 + "\n"}, [("CRGATE_POLICY_SHA256", "c" * 64)]),
        (
            "d" * 64,
            {"CRGATE_POLICY_SHA256": "D" * 64},
            [("--policy-sha256", "d" * 64), ("CRGATE_POLICY_SHA256", "d" * 64)],
        ),
    ],
)
def test_pins_from_the_flag_and_the_variable(flag, env, expected):
    assert policy_pins(flag, env) == expected


@pytest.mark.parametrize("value", ["abc", "g" * 64, "a" * 63, "a" * 65, "md5:" + "a" * 32])
def test_a_malformed_pin_is_a_config_error(value):
    with pytest.raises(ConfigError, match="64 hex digits"):
        policy_pins(value, {})


def test_two_pins_that_disagree_are_refused():
    with pytest.raises(ConfigError, match="disagree"):
        policy_pins("a" * 64, {"CRGATE_POLICY_SHA256": "b" * 64})


def test_a_matching_pin_lets_the_run_judge(start_emulator, tmp_path):
    emu = start_emulator(DEMO)
    policy = tmp_path / "crgate.yaml"
    policy.write_text(POLICY)
    result = run_cli(
        check_args(emu, "--policy", str(policy), "--policy-sha256", sha(POLICY), "cr.yandex/crptest/app:1.0")
    )
    assert result.code == 1, result.output  # judged: the critical finding violates the pinned policy
    assert emu.stats.calls["ScannerService.Scan"] == 1


def test_an_edited_policy_is_exit_2_before_any_call(start_emulator, tmp_path):
    """The attack: the merge request loosens the committed policy; the pin, set by its owners, holds."""
    emu = start_emulator(DEMO)
    policy = tmp_path / "crgate.yaml"
    policy.write_text(LOOSER)
    result = run_cli(
        check_args(emu, "--policy", str(policy), "cr.yandex/crptest/app:1.0"),
        env={"CRGATE_POLICY_SHA256": sha(POLICY)},
    )
    assert result.code == 2, result.output
    assert (
        f"crgate: error: the policy in force ({policy}) has SHA-256 {sha(LOOSER)}, but CRGATE_POLICY_SHA256 "
        f"requires {sha(POLICY)}" in result.stderr
    )
    assert "Traceback" not in result.output
    assert sum(emu.stats.calls.values()) == 0


def test_a_deleted_policy_falls_back_to_the_default_and_the_pin_catches_it(start_emulator, tmp_path, monkeypatch):
    """Deleting ``.crgate.yaml`` would make the built-in default apply: a pin of the file's digest refuses."""
    emu = start_emulator(DEMO)
    monkeypatch.chdir(tmp_path)  # no .crgate.yaml, no crgate.yaml here
    result = run_cli(check_args(emu, "--policy-sha256", sha(POLICY), "cr.yandex/crptest/app:1.0"))
    assert result.code == 2, result.output
    assert f"the policy in force (built-in default) has SHA-256 {DEFAULT_POLICY.sha256}" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_the_default_can_be_pinned_by_its_documented_digest(start_emulator, tmp_path, monkeypatch):
    emu = start_emulator(DEMO)
    monkeypatch.chdir(tmp_path)
    result = run_cli(check_args(emu, "--policy-sha256", sha(BUILTIN_DEFAULT_TEXT), "cr.yandex/crptest/app:1.0"))
    assert result.code == 1, result.output


def test_a_malformed_pin_is_exit_2_with_the_flag_named(start_emulator):
    emu = start_emulator(DEMO)
    result = run_cli(check_args(emu, "--policy-sha256", "deadbeef", "cr.yandex/crptest/app:1.0"))
    assert result.code == 2
    assert "crgate: error: --policy-sha256: expected the policy file's SHA-256 as 64 hex digits" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_evaluate_honours_the_pin_too(start_emulator, tmp_path):
    emu = start_emulator(DEMO)
    saved = tmp_path / "result.json"
    assert run_cli(check_args(emu, "--output", f"json={saved}", "cr.yandex/crptest/app:1.0")).code == 1
    json.loads(saved.read_text())  # a report to re-judge
    policy = tmp_path / "p.yaml"
    policy.write_text(LOOSER)
    refused = run_cli(["evaluate", str(saved), "--policy", str(policy), "--policy-sha256", sha(POLICY)])
    assert refused.code == 2
    assert f"but --policy-sha256 requires {sha(POLICY)}" in refused.stderr
    accepted = run_cli(["evaluate", str(saved), "--policy", str(policy), "--policy-sha256", sha(LOOSER)])
    assert accepted.code == 0, accepted.output  # critical <= 99: the pinned (looser) policy passes it


def test_policy_validate_prints_the_digest_to_pin(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    result = run_cli(["policy", "validate", str(policy)])
    assert result.code == 0
    assert f"sha256 {sha(POLICY)}" in result.stdout
