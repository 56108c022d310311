"""Every input is bounded in size and structure: oversized files, endless streams, YAML bombs (aliases,
merge keys ten wide and nine deep, self-referencing merges, deep nesting) and hostile JSON are exit 2
with a message naming the input, never a traceback, an internal error (exit 3) or a hang.

Each case goes through the CLI as a user would run it. Files over a cap are sparse (``truncate``), so
the tests cost no disk; ``/dev/zero`` stands for an endless stream.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CliResult, run_cli
from crgate import inputs
from crgate.errors import ConfigError

DEV_ZERO = Path("/dev/zero")
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero")


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def merge_bomb(leaf: str = "{build: .}") -> str:
    """A compose file of 11 lines whose merge keys fan out ten wide and nine deep (10**9 mappings)."""
    lines = [f"a0: &a0 {leaf}"]
    lines += [f"a{d}: &a{d} {{<<: [{', '.join([f'*a{d - 1}'] * 10)}]}}" for d in range(1, 10)]
    return "\n".join(lines) + "\nservices:\n  web:\n    <<: *a9\n"


def alias_bomb(prefix: str) -> str:
    """The "billion laughs": ten lists of ten aliases to the list before."""
    lines = [prefix + "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{d}: &x{d} [{', '.join([f'*x{d - 1}'] * 10)}]" for d in range(1, 10)]
    return "\n".join(lines) + "\n"


def refused(result: CliResult, *fragments: str) -> None:
    """Exit 2 with every fragment in the error, and no sign of an internal error."""
    assert result.code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# -- policy files -----------------------------------------------------------------------------------


def test_policy_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    path = sparse(tmp_path / "huge.yaml", 5 * inputs.MiB)
    refused(
        run_cli(["policy", "validate", str(path)]),
        f"policy {path}: the file is 5 MiB (5,242,880 bytes), over the 1 MiB limit for a policy file",
    )


@needs_dev_zero
def test_policy_from_an_endless_stream_reads_no_more_than_the_cap() -> None:
    refused(
        run_cli(["policy", "validate", str(DEV_ZERO)]),
        "policy /dev/zero: the file holds more than 1 MiB, the limit for a policy file",
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            alias_bomb("version: 1\nthresholds: {high: 0}\n"),
            [":8 (key 'x5'): expanding the aliases and merge keys", "more than 200,000 YAML nodes"],
            id="alias-bomb",
        ),
        pytest.param(
            "version: 1\nthresholds: " + "[" * 100_000 + "]" * 100_000 + "\n",
            [":2: the YAML nests more than 32 levels deep"],
            id="deep-flow",
        ),
        pytest.param(
            "version: 1\nthresholds:\n" + "".join("  " * i + "a:\n" for i in range(1, 40)),
            [":33: the YAML nests more than 32 levels deep"],
            id="deep-block",
        ),
        pytest.param(
            "version: 1\nthresholds: {high: 0}\nx: &a [*a]\n",
            [":3 (key 'x[0]'): an alias or merge key ('<<') here refers to a mapping or list that contains it"],
            id="self-reference",
        ),
        pytest.param(
            "version: 1\nthresholds: [" + "0," * 50_000 + "0]\n",
            [":2: the file holds more than 50,000 YAML nodes"],
            id="too-many-nodes",
        ),
        pytest.param(
            "version: 1\nthresholds: {high: !!timestamp abc}\n",
            [":2 (key 'thresholds.high'): cannot read the value"],
            id="constructor-crash",
        ),
        pytest.param(
            "version: 1\nthresholds: {high: " + "9" * 5000 + "}\n",
            [":2 (key 'thresholds.high'): cannot read the value (Exceeds the limit (4300 digits)"],
            id="huge-integer",
        ),
    ],
)
def test_hostile_policies_are_exit_2_naming_file_and_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    first, *rest = fragments
    refused(run_cli(["policy", "validate", str(path)]), f"policy {path}{first}", *rest)


# -- manifests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            merge_bomb(),
            "document 1, line 7: expanding the aliases and merge keys ('<<') of this file would give more "
            "than 2,000,000 YAML nodes, the limit for a manifest file",
            id="merge-bomb",
        ),
        pytest.param(
            merge_bomb("{image: cr.yandex/crpdemo/app:clean}"),
            "document 1, line 7: expanding the aliases",
            id="merge-bomb-image",
        ),
        pytest.param(
            alias_bomb("") + "kind: Pod\nspec: {containers: *x9}\n",
            "document 1, line 7: expanding the aliases",
            id="alias-bomb",
        ),
        pytest.param(
            "services:\n  web: &web\n    <<: *web\n    image: nginx\n",
            "document 1, line 2: an alias or merge key ('<<') here refers to a mapping or list that contains it",
            id="self-merge",
        ),
        pytest.param(
            "base: &b\n  x: 1\n  <<: *b\nservices:\n  web:\n    <<: *b\n",
            "document 1, line 1: an alias or merge key ('<<') here refers to a mapping or list that contains it",
            id="self-merge-through-anchor",
        ),
        pytest.param(
            "kind: Pod\nspec: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
            "document 1, line 2: the YAML nests more than 100 levels deep",
            id="deep",
        ),
    ],
)
def test_hostile_manifests_are_exit_2_before_any_call(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    refused(run_cli(["check", "--emulator", "--from-manifest", str(path)]), f"manifest {path}, {fragment}")


def test_merge_bomb_on_stdin_is_refused_too() -> None:
    result = run_cli(["check", "--emulator", "--from-manifest", "-"], stdin=merge_bomb())
    refused(result, "manifest <stdin>, document 1, line 7: expanding the aliases")


def test_manifest_over_the_cap(tmp_path: Path) -> None:
    path = sparse(tmp_path / "chart.yaml", 40 * inputs.MiB)
    refused(
        run_cli(["check", "--emulator", "--from-manifest", str(path)]),
        f"manifest {path}: the file is 40 MiB (41,943,040 bytes), over the 32 MiB limit for a manifest",
        "split the manifests",
    )


def test_manifest_stdin_over_the_cap_reads_no_more_than_the_cap() -> None:
    result = run_cli(["check", "--emulator", "--from-manifest", "-"], stdin="#" * (33 * inputs.MiB))
    refused(result, "manifest <stdin>: the input holds more than 32 MiB, the limit for a manifest")


# -- saved reports (crgate evaluate) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "the JSON nests 100000 levels deep, more than the 32", id="deep"),
        pytest.param(
            '{"schema_version": 1, "images": [], "baseline": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
            "the JSON nests 41 levels deep",
            id="deep-inside",
        ),
        pytest.param(
            '{"schema_version": 1, "images": [' + "9" * 5000 + "]}",
            "is not valid JSON: Exceeds the limit (4300 digits)",
            id="huge-integer",
        ),
        pytest.param(
            '{"schema_version": 1, "images": [{"ref": "cr.yandex/crpabc/app:\\udc00"}]}',
            "the JSON holds a lone UTF-16 surrogate escape (\\udc00)",
            id="lone-surrogate",
        ),
    ],
)
def test_hostile_saved_reports_are_exit_2(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(text)
    refused(run_cli(["evaluate", str(path)]), f"saved report {path}", fragment)


def test_saved_report_over_the_cap(tmp_path: Path) -> None:
    path = sparse(tmp_path / "report.json", 200 * inputs.MiB)
    refused(
        run_cli(["evaluate", str(path)]),
        f"saved report {path}: the file is 200 MiB (209,715,200 bytes), over the 128 MiB limit for a saved report",
    )


# -- emulator scenarios -----------------------------------------------------------------------------


def test_scenario_bomb_and_oversize_are_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(merge_bomb())
    refused(run_cli(["emulator", "--data", str(path)]), f"emulator scenario {path}:7: expanding the aliases")
    sparse(path, 9 * inputs.MiB)
    refused(
        run_cli(["emulator", "--data", str(path)]),
        f"emulator scenario {path}: the file is 9 MiB (9,437,184 bytes), over the 8 MiB limit for an emulator scenario",
    )
    path.write_text("registries: []\nx: &a [*a]\n")
    refused(run_cli(["check", "--emulator", "--emulator-data", str(path), "cr.yandex/crpdemo/app:clean"]), "s.yaml:2")


# -- key and certificate files ----------------------------------------------------------------------


@needs_dev_zero
def test_ca_file_and_service_account_key_are_read_bounded(tmp_path: Path) -> None:
    target = ["--endpoint", "127.0.0.1:9", "--timeout", "5", "cr.yandex/crpdemo/app:clean"]
    refused(
        run_cli(["check", "--ca-file", str(DEV_ZERO), "--iam-token", "t", *target]),
        "--ca-file /dev/zero: the file holds more than 4 MiB, the limit for a CA certificate file",
    )
    key = sparse(tmp_path / "key.json", 1 * inputs.MiB)
    refused(
        run_cli(["check", "--sa-key", str(key), *target]),
        f"service account key {key} (--sa-key): the file is 1 MiB (1,048,576 bytes), over the 64 KiB limit",
    )
    refused(
        run_cli(["check", *target], env={"YC_SERVICE_ACCOUNT_KEY_FILE": str(DEV_ZERO)}),
        "service account key /dev/zero (YC_SERVICE_ACCOUNT_KEY_FILE): the file holds more than 64 KiB",
    )


def test_surrogate_pairs_are_text_and_only_lone_surrogates_are_refused() -> None:
    def error(message: str) -> ConfigError:
        return ConfigError(message)

    text = '{"ref": "\\ud83d\\ude00"}'
    inputs.check_json_text(text, json.loads(text), error)  # an emoji written as a pair: fine
    text = '{"ref": "\\ud83d"}'
    with pytest.raises(ConfigError, match="lone UTF-16 surrogate"):
        inputs.check_json_text(text, json.loads(text), error)
