"""The dotenv report stays within what GitLab accepts: a file over its 5 KB ``dotenv_size`` limit fails the
job at artifact upload with a message that names neither crgate nor the cause, so crgate refuses it first
(exit 2 before any call when the references alone could exceed it, exit 3 if a written report would)."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import DIGEST_A, check_args, image, run_cli, scenario
from crgate.errors import ConfigError, UndeliveredReportError
from crgate.images import parse_image_ref
from crgate.model import ImageSource
from crgate.report import render
from crgate.report.dotenv import SIZE_LIMIT, refuse_oversized, size_bound
from reportdata import run_report, scanned

LONG_REPOSITORY = "team/" + "a" * 60


def refs(n: int) -> list:
    return [parse_image_ref(f"cr.yandex/crp{i:05d}/{LONG_REPOSITORY}:1.0") for i in range(n)]


def test_the_bound_is_what_the_written_file_can_take_at_most():
    outcomes = [
        dataclasses.replace(
            scanned(str(ref.raw), [], image_id=f"crpimage{i}"),
            source=ImageSource(ref.raw, DIGEST_A, f"{ref.host}/{ref.registry_id}/{ref.repository}@{DIGEST_A}"),
        )
        for i, ref in enumerate(refs(10))
    ]
    text = render("dotenv", run_report(*outcomes))
    assert len(text.encode()) <= size_bound(refs(10))
    # Only the verdict's length and one separator more than the references need are left over.
    assert size_bound(refs(10)) - len(text.encode()) <= len("error") - len("pass") + 1


def test_the_same_repository_under_two_tags_counts_once():
    one = parse_image_ref("cr.yandex/crp1/app:1")
    assert size_bound([one, parse_image_ref("cr.yandex/crp1/app:2")]) == size_bound([one])


def test_references_that_fit_pass_and_more_are_refused_naming_the_option_and_the_way_out():
    refuse_oversized(refs(30), "--output dotenv=crgate.env")
    with pytest.raises(ConfigError) as raised:
        refuse_oversized(refs(60), "--output dotenv=crgate.env")
    message = str(raised.value)
    assert message.startswith("--output dotenv=crgate.env: the pinned references of 60 images can take")
    assert f"over GitLab's {SIZE_LIMIT}-byte dotenv limit" in message and "references[].pinned" in message


def test_check_refuses_an_oversized_dotenv_report_before_any_call(start_emulator, tmp_path):
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    many = [ref.raw for ref in refs(60)]
    result = run_cli(check_args(emu, *many, "--output", f"dotenv={tmp_path / 'crgate.env'}"))
    assert result.code == 2, result.output
    assert "over GitLab's 5120-byte dotenv limit" in result.output
    assert sum(emu.stats.calls.values()) == 0 and emu.stats.scans_started == 0
    assert not (tmp_path / "crgate.env").exists()


def test_the_writer_refuses_a_report_over_the_limit():
    outcomes = [
        dataclasses.replace(
            scanned(str(ref.raw), [], image_id=f"crpimage{i}"),
            source=ImageSource(ref.raw, DIGEST_A, f"{ref.host}/{ref.registry_id}/{ref.repository}@{DIGEST_A}"),
        )
        for i, ref in enumerate(refs(60))
    ]
    with pytest.raises(UndeliveredReportError, match="over GitLab's 5120-byte dotenv limit; it was not written"):
        render("dotenv", run_report(*outcomes))
