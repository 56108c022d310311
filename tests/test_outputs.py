"""Report and pin files: proven writable before any billed call, written atomically, never twice."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crgate.errors import ConfigError
from crgate.outputs import check_distinct, pending, plan_reports


def write(path: Path, data: bytes) -> None:
    with pending([("--pin-to x", path)]) as (file,):
        file.stream.write(data)
        file.commit()


def test_a_file_is_replaced_whole_keeps_its_mode_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "pinned.yaml"
    write(target, b"first\n")
    assert target.read_bytes() == b"first\n"
    os.chmod(target, 0o640)
    write(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pinned.yaml"]


def test_an_unwritable_destination_fails_at_once_naming_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "out.yaml"
    with (
        pytest.raises(ConfigError, match=f"--output json=x: cannot write {missing}"),
        pending([("--output json=x", missing)]),
    ):
        pass
    directory = tmp_path / "is-a-directory"
    directory.mkdir()
    with pytest.raises(ConfigError, match="is a directory"), pending([("--pin-to d", directory)]):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["is-a-directory"]


def test_what_is_not_committed_is_removed_and_the_old_file_kept(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), pending([("--output json=report.json", target)]) as (file,):
        file.stream.write(b"half a rep")
        raise RuntimeError("interrupted while writing")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_two_destinations_of_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--output json=a.json and --output sarif=./a.json both write to"):
        check_distinct([("--output json=a.json", "a.json"), ("--output sarif=./a.json", "./a.json")])


def test_stdout_takes_one_format() -> None:
    assert plan_reports("text", False, [("json", "-")]).stdout_format == "json"
    with pytest.raises(ConfigError, match="--format sarif and --output json=- both write to stdout"):
        plan_reports("sarif", True, [("json", "-")])
    with pytest.raises(ConfigError, match="both write to stdout"):
        plan_reports("text", False, [("json", "-"), ("sarif", "-")])
