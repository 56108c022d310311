"""``crgate policy validate FILE``: a valid policy is summed up (exit 0), a bad one is exit 2 naming the
file and line (hostile and oversized policies: test_input_bounds.py)."""

from __future__ import annotations

from conftest import run_cli


def test_policy_validate_ok_and_bad(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nthresholds:\n  critical: 0\n  total: 10\n")
    result = run_cli(["policy", "validate", str(good)])
    assert result.code == 0
    assert "valid crgate policy" in result.stdout and "total <= 10" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nthresholds:\n  high: 0\n  high: 5\n")
    result = run_cli(["policy", "validate", str(bad)])
    assert result.code == 2
    assert f"{bad}:4" in result.stderr and "duplicate" in result.stderr
    assert "Traceback" not in result.output


def test_policy_validate_missing_file_is_exit_2(tmp_path):
    result = run_cli(["policy", "validate", str(tmp_path / "nope.yaml")])
    assert result.code == 2
    assert "nope.yaml" in result.stderr
