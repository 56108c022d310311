"""Policy files and discovery: reading a file as given, unreadable files, and the lookup order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crgate.errors import PolicyError
from crgate.policy import DEFAULT_POLICY, DISCOVERY_FILES, discover_policy, load_policy
from policycases import v1


def test_load_policy_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(v1("  critical: 0\n"), encoding="utf-8")
    assert load_policy(path).source == str(path)
    assert load_policy(str(path)).thresholds == {"critical": 0}
    path.write_text(v1("  critical: -3\n"), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.source, info.value.line, info.value.key) == (str(path), 3, "thresholds.critical")


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.source == str(path)
    assert info.value.line is None
    assert "cannot read the policy file: No such file or directory" in info.value.message
    assert str(path) in str(info.value)


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert info.value.source == str(tmp_path)
    assert "cannot read the policy file" in info.value.message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_load_policy_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(v1("  critical: 0\n"), encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(PolicyError) as info:
            load_policy(path)
        assert "Permission denied" in info.value.message
    finally:
        path.chmod(0o600)


def test_load_policy_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\n# caf\xe9\nthresholds:\n  critical: 0\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert (info.value.line, info.value.key) == (2, None)
    assert "not valid UTF-8" in info.value.message
    assert "0xe9" in info.value.message


def test_discover_explicit_path_wins(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text(v1("  low: 1\n"), encoding="utf-8")
    explicit = tmp_path / "mine.yaml"
    explicit.write_text(v1("  medium: 2\n"), encoding="utf-8")
    policy = discover_policy(explicit, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"medium": 2}, str(explicit))


def test_discover_explicit_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text(v1("  low: 1\n"), encoding="utf-8")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        discover_policy(tmp_path / "missing.yaml", cwd=tmp_path)


def test_discover_order(tmp_path: Path) -> None:
    assert DISCOVERY_FILES == (".crgate.yaml", "crgate.yaml")
    assert discover_policy(None, cwd=tmp_path) is DEFAULT_POLICY
    (tmp_path / "crgate.yaml").write_text(v1("  low: 2\n"), encoding="utf-8")
    policy = discover_policy(None, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"low": 2}, str(tmp_path / "crgate.yaml"))
    (tmp_path / ".crgate.yaml").write_text(v1("  low: 1\n"), encoding="utf-8")
    policy = discover_policy(None, cwd=tmp_path)
    assert (dict(policy.thresholds), policy.source) == ({"low": 1}, str(tmp_path / ".crgate.yaml"))


def test_discover_uses_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".crgate.yaml").write_text(v1("  low: 1\n"), encoding="utf-8")
    assert discover_policy(None).source == ".crgate.yaml"


def test_discovered_broken_file_fails_instead_of_falling_back(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "crgate.yaml").write_text(v1("  low: 1\n"), encoding="utf-8")
    with pytest.raises(PolicyError, match="missing required key 'thresholds'"):
        discover_policy(None, cwd=tmp_path)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_discovered_dangling_symlink_fails(tmp_path: Path) -> None:
    (tmp_path / ".crgate.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        discover_policy(None, cwd=tmp_path)
