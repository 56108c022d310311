"""``crgate doctor`` checks the registry read that ``check`` makes before every scan (issue 12)."""

from __future__ import annotations

from typing import Any

from conftest import image, run_cli, scenario
from crgate_emulator import Emulator, scenario_from_dict

READER, VIEWER = "t1.doctor-reader", "t1.doctor-viewer"


def cloud(*, auth: str = "bearer") -> dict[str, Any]:
    """A registry that wants credentials: one identity may pull, one may only list images."""
    data = scenario(image("crpclean", "clean", ""))
    data.update(
        require_auth=True,
        registry={"auth": auth},
        service_accounts=[
            {"id": "ajedoctorreader00001", "roles": ["container-registry.images.scanner"]},
            {"id": "ajedoctorviewer00001", "roles": ["container-registry.viewer"]},
        ],
        iam_tokens=[
            {"token": READER, "service_account_id": "ajedoctorreader00001"},
            {"token": VIEWER, "service_account_id": "ajedoctorviewer00001"},
        ],
    )
    return data


def doctor(emulator: Emulator, token: str, repository: str) -> Any:
    args = ["doctor", "--endpoint", emulator.address, "--insecure", "--registry-url", emulator.registry_url]
    return run_cli([*args, "--iam-token", token, "--repository", repository])


def test_doctor_reads_the_manifest_of_the_repository_like_check_does():
    with Emulator(scenario_from_dict(cloud(), source="<test>")) as emulator:
        result = doctor(emulator, READER, "cr.yandex/crptest/app:clean")
        digest, url = emulator.scenario.image("crpclean").digest, emulator.registry_url
    assert result.code == 0, result.output
    assert f"registry     ok    may read manifests at {url}" in result.stdout
    assert digest in result.stdout
    assert emulator.stats.calls["ScannerService.Scan"] == 0


def test_a_repository_without_the_tag_still_proves_the_read_is_allowed():
    with Emulator(scenario_from_dict(cloud(auth="basic"), source="<test>")) as emulator:
        result = doctor(emulator, READER, "cr.yandex/crptest/app")
    assert result.code == 0, result.output
    assert "there is no tag 'latest'" in result.stdout


def test_an_identity_that_may_list_but_not_pull_fails_the_registry_check_naming_the_roles():
    with Emulator(scenario_from_dict(cloud(), source="<test>")) as emulator:
        result = doctor(emulator, VIEWER, "cr.yandex/crptest/app:clean")
    assert result.code == 3, result.output
    assert "permission   ok" in result.stdout  # ImageService.List is allowed ...
    assert "registry     FAIL" in result.stdout  # ... reading manifests is not
    assert "container-registry.images.scanner" in result.stdout
    assert "container-registry.images.puller" in result.stdout
    assert "doctor: registry check failed (exit 3)" in result.stdout


def test_doctor_against_the_emulator_reads_the_multi_platform_demo():
    result = run_cli(["doctor", "--emulator", "--repository", "cr.yandex/crpdemo/app:multi"])
    assert result.code == 0, result.output
    assert "registry     ok" in result.stdout
