"""Report destinations that are not regular files (issue 18, item 4): devices, FIFOs and descriptor names
are written directly and never renamed over; a write that fails after the scans is exit 3.

Every node here is private (``os.mknod`` with the numbers of /dev/full and /dev/null, ``os.mkfifo``) in
the test's own directory: the machine's /dev is never touched (as root, a rename would replace it).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DIGEST_A, check_args, image, run_cli, scenario
from crgate.errors import ConfigError, UndeliveredReportError
from crgate.outputs import pending, plan_reports

CLEAN = "cr.yandex/crptest/app:clean"


def char_device(path: Path, major: int, minor: int) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    return path


def full_device(tmp_path: Path) -> Path:
    return char_device(tmp_path / "full", 1, 7)


def null_device(tmp_path: Path) -> Path:
    return char_device(tmp_path / "null", 1, 3)


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO with its read end open (non-blocking, so that opening it needs no writer yet)."""
    path = tmp_path / "report.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    yield path, reader
    os.close(reader)


def drain(reader: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def write(path: Path, data: bytes) -> None:
    with pending([("--output json=x", path)]) as (file,):
        file.stream.write(data)
        file.commit()


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(path.lstat().st_mode)


# -- the writer -------------------------------------------------------------------------------------


def test_a_full_device_is_an_undelivered_report_and_stays_a_device(tmp_path: Path) -> None:
    device = full_device(tmp_path)
    with pytest.raises(UndeliveredReportError, match=r"--output json=x: the report was not delivered: .*No space"):
        write(device, b"{}\n")
    assert is_char_device(device)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"], "no temporary file next to a device"


def test_a_null_device_and_a_link_to_it_take_the_write_and_stay_what_they_are(tmp_path: Path) -> None:
    device = null_device(tmp_path)
    link = tmp_path / "stdout-like"
    link.symlink_to(device)
    write(device, b"{}\n")
    write(link, b"{}\n")
    assert is_char_device(device)
    assert link.is_symlink() and os.readlink(link) == str(device)


def test_a_fifo_and_a_link_to_it_receive_the_report(tmp_path: Path, fifo: tuple[Path, int]) -> None:
    path, reader = fifo
    write(path, b"first\n")
    link = tmp_path / "link"
    link.symlink_to(path)
    write(link, b"second\n")
    assert drain(reader) == b"first\nsecond\n"
    assert stat.S_ISFIFO(path.lstat().st_mode) and link.is_symlink()


def test_a_fifo_whose_reader_left_is_an_undelivered_report(tmp_path: Path) -> None:
    path = tmp_path / "report.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with pending([("--output json=x", path)]) as (file,):
        file.stream.write(b"{}\n")
        os.close(reader)  # the reader goes away while the scans run
        with pytest.raises(UndeliveredReportError, match="Broken pipe"):
            file.commit()


def test_a_fifo_nobody_reads_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "lonely.fifo"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="nothing reads the FIFO"), pending([("--output json=x", path)]):
        pass


def test_a_descriptor_name_is_written_through_not_replaced(tmp_path: Path) -> None:
    """What bash's ``>(...)`` gives: ``/dev/fd/N`` (here ``/proc/self/fd/N``), a pipe to a process."""
    read_end, write_end = os.pipe()
    try:
        name = Path(f"/proc/self/fd/{write_end}")
        write(name, b"through the pipe\n")
        os.close(write_end)
        assert os.read(read_end, 1000) == b"through the pipe\n"
    finally:
        os.close(read_end)


def test_a_descriptor_name_leading_to_a_regular_file_appends_and_never_replaces_it(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("earlier lines\n")
    with log.open("ab") as handle:
        write(Path(f"/proc/self/fd/{handle.fileno()}"), b"the report\n")
    assert log.read_text() == "earlier lines\nthe report\n"


def test_a_link_to_a_regular_file_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old\n")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    write(link, b"new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_dangling_link_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "nowhere" / "r.json")
    with pytest.raises(ConfigError, match="is a link to .*which does not exist"), pending([("--output j", link)]):
        pass
    assert link.is_symlink()


def test_a_file_in_a_directory_that_takes_no_new_file_gets_a_clear_message() -> None:
    with (
        pytest.raises(ConfigError, match=r"renames it into place, and /proc takes no new file") as caught,
        pending([("--output json=/proc/version", Path("/proc/version"))]),
    ):
        pass
    assert not str(caught.value).endswith("No such file or directory")


@pytest.mark.parametrize("name", ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"])
def test_the_names_of_stdout_are_stdout(name: str) -> None:
    assert plan_reports("text", False, [("json", name)]).stdout_format == "json"
    assert plan_reports("text", False, [("json", name)]).files == ()
    with pytest.raises(ConfigError, match="both write to stdout"):
        plan_reports("text", False, [("json", "-"), ("sarif", name)])
    with pytest.raises(ConfigError, match=f"--format sarif and --output json={name} both write to stdout"):
        plan_reports("sarif", True, [("json", name)])


# -- through the CLI, against the emulator -----------------------------------------------------------


def test_check_reporting_to_a_full_device_exits_3_and_keeps_the_node(start_emulator, tmp_path: Path) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    device = full_device(tmp_path)
    result = run_cli(check_args(emu, CLEAN, "--output", f"json={device}"))
    assert result.code == 3, result.output
    assert f"error: --output json={device}: the report was not delivered" in result.stderr
    assert "No space left on device" in result.stderr
    assert is_char_device(device)


def test_check_reporting_to_a_fifo_delivers_the_report(start_emulator, fifo: tuple[Path, int]) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    path, reader = fifo
    result = run_cli(check_args(emu, CLEAN, "--output", f"json={path}"))
    assert result.code == 0, result.output
    assert json.loads(drain(reader))["verdict"] == "pass"


def test_check_reporting_to_a_link_to_a_descriptor_writes_through_it(start_emulator, tmp_path: Path) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    read_end, write_end = os.pipe()
    link = tmp_path / "stdout"  # what /dev/stdout is: a link to /proc/self/fd/N
    link.symlink_to(f"/proc/self/fd/{write_end}")
    try:
        result = run_cli(check_args(emu, CLEAN, "--output", f"json={link}"))
        os.close(write_end)
        assert result.code == 0, result.output
        assert json.loads(os.read(read_end, 1 << 20))["verdict"] == "pass"
        assert link.is_symlink()
    finally:
        os.close(read_end)


def test_check_output_to_dev_stdout_is_stdout(start_emulator) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    result = run_cli(check_args(emu, CLEAN, "--output", "json=/dev/stdout"))
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["verdict"] == "pass"
    assert "PASS: 1 image" in result.stderr
    twice = run_cli(check_args(emu, CLEAN, "--output", "json=/dev/fd/1", "--output", "sarif=-"))
    assert twice.code == 2
    assert "--output json=/dev/fd/1 and --output sarif=- both write to stdout" in twice.stderr


def test_check_output_to_proc_version_is_exit_2_with_a_clear_message(start_emulator) -> None:
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    result = run_cli(check_args(emu, CLEAN, "--output", "json=/proc/version"))
    assert result.code == 2, result.output
    assert "--output json=/proc/version: cannot write /proc/version" in result.stderr
    assert "takes no new file" in result.stderr
    assert sum(emu.stats.calls.values()) == 0
