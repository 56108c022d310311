"""Shared fixtures: an in-process CLI runner and emulators started from scenario dicts on loopback."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import settings

from crgate.cli import main
from crgate_emulator.scenario import scenario_from_dict
from crgate_emulator.server import Emulator

# Property tests (hypothesis): short by default so the suite stays fast; CRGATE_HYPOTHESIS_PROFILE=long
# runs many more examples and fails any example slower than a few seconds (nightly-style; see
# docs/reliability.md).
settings.register_profile("crgate", max_examples=60, deadline=None)
settings.register_profile("long", max_examples=5000, deadline=dt.timedelta(seconds=5))
settings.load_profile(os.environ.get("CRGATE_HYPOTHESIS_PROFILE", "crgate"))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

# The hostile gRPC server harness: its ``server`` fixture serves the test_hostile_*.py files.
pytest_plugins = ("hostile",)

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64


# Variables that choose credentials or endpoints: cleared for every in-process run (hermetic tests).
CREDENTIAL_ENV = (
    "YC_IAM_TOKEN",
    "YC_SERVICE_ACCOUNT_KEY_FILE",
    "YC_SA_ID",
    "YC_TOKEN",
    "YC_ENDPOINT",
    "YC_METADATA_ADDR",
    "YC_TOKEN_ENDPOINT",
    "CRGATE_REGISTRY_URL",
    "YC_OIDC_TOKEN",
    "GITHUB_ACTIONS",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(args: list[str], env: dict[str, str | None] | None = None, stdin: str | None = None) -> CliResult:
    """Run ``crgate ARGS`` in-process through the real entry point (so its exit-code mapping is used)."""
    runner = CliRunner()
    environment: dict[str, str | None] = {name: None for name in CREDENTIAL_ENV}
    environment["COLUMNS"] = "80"
    environment.update(env or {})
    with runner.isolation(input=stdin, env=environment) as (stdout, stderr, _):
        try:
            main(args)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        else:  # main() always exits; reaching here is a bug worth seeing
            code = -1
        logging.getLogger().handlers.clear()
        return CliResult(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def finding(cve: str, severity: str, package: str = "openssl", fixed_by: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "name": cve,
        "severity": severity,
        "package": package,
        "version": "1.0.0",
        "fixed_by": fixed_by,
        "link": f"https://nvd.nist.gov/vuln/detail/{cve}",
        "origin": "os",
        "type": "debian",
        "source": "trivy",  # the real scanner names Trivy, not the package manager
        **extra,
    }


VULNERABLE_FINDINGS = [
    finding("CVE-2024-0001", "CRITICAL", fixed_by="1.0.1"),
    finding("CVE-2024-0002", "HIGH", package="zlib"),
    finding("CVE-2024-0003", "HIGH", package="curl", fixed_by="8.0"),
    finding("CVE-2024-0004", "MEDIUM", package="glibc"),
    finding("CVE-2024-0005", "LOW", package="glibc"),
    finding("CVE-2024-0006", "NEGLIGIBLE", package="bash"),
    finding("CVE-2024-0007", "UNDEFINED", package="tar"),
]


def scenario(*images: dict[str, Any], faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A one-registry (``crptest``), one-repository (``app``) scenario with the given images."""
    data: dict[str, Any] = {
        "registries": [{"id": "crptest", "repositories": [{"name": "app", "images": list(images)}]}]
    }
    if faults:
        data["faults"] = faults
    return data


def image(
    image_id: str,
    tag: str,
    digest: str,
    findings: list[dict[str, Any]] | None = None,
    **scan: Any,
) -> dict[str, Any]:
    """An image whose scan takes 0.1 s unless ``duration`` says otherwise; ``scan`` adds behaviour keys.

    ``digest`` is not given to the emulator: its registry serves a real manifest per image, and the
    image's digest is that manifest's sha256 (``digest_of(emulator, image_id)`` reads it back). The
    argument stays so that tests can still say which images are distinct.
    """
    scan.setdefault("duration", 0.1)
    return {"id": image_id, "tags": [tag], "findings": findings or [], "scan": scan}


def digest_of(emulator: Emulator, image_id: str) -> str:
    """The digest the emulator's registry and image service give ``image_id``."""
    image = emulator.scenario.image(image_id)
    assert image is not None, image_id
    return image.digest


StartEmulator = Callable[[dict[str, Any]], Emulator]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators from scenario dicts; all are stopped when the test ends."""
    started: list[Emulator] = []

    def start(data: dict[str, Any]) -> Emulator:
        emulator = Emulator(scenario_from_dict(data, source="<test>")).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def check_args(emulator: Emulator, *args: str) -> list[str]:
    """``crgate check`` against an emulator, plain lines progress (deterministic output)."""
    return command_args("check", emulator, *args)


def command_args(command: str, emulator: Emulator, *args: str) -> list[str]:
    """``crgate COMMAND`` against an emulator (``check``, ``audit``), plain lines progress."""
    # A bounded default --timeout: a test that waits wrongly fails in a minute instead of hanging.
    return [
        command,
        "--endpoint",
        emulator.address,
        "--registry-url",
        emulator.registry_url,
        "--insecure",
        "--progress",
        "lines",
        "--timeout",
        "60",
        *args,
    ]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The lock's wheels and this checkout's crgate wheel, served as a local index (tests/wheelhouse.py):
    what the GitHub Action and the GitLab component install from in the tests, never a network archive."""
    from wheelhouse import Wheelhouse

    return Wheelhouse.make(tmp_path_factory.mktemp("wheelhouse"))
