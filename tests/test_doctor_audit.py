"""``crgate doctor`` reports what ``crgate audit`` relies on: reading scan results (a role question) and the
registry's scan policy (whether fresh results exist without any pipeline asking)."""

from __future__ import annotations

from typing import Any

from conftest import image, run_cli, scenario
from crgate_emulator import Emulator, scenario_from_dict

SCANNER, PULLER = "t1.audit-scanner", "t1.audit-puller"


def cloud(scan_policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """One identity with the scanner role; one that may list and pull images but not read scan results."""
    data = scenario(image("crpclean", "clean", "", last_result={"status": "READY", "age_seconds": 60}))
    if scan_policy is not None:
        data["registries"][0]["scan_policy"] = scan_policy
    data.update(
        require_auth=True,
        service_accounts=[
            {"id": "ajeauditscanner00001", "roles": ["container-registry.images.scanner"]},
            {"id": "ajeauditpuller000001", "roles": ["container-registry.viewer", "container-registry.images.puller"]},
        ],
        iam_tokens=[
            {"token": SCANNER, "service_account_id": "ajeauditscanner00001"},
            {"token": PULLER, "service_account_id": "ajeauditpuller000001"},
        ],
    )
    return data


def connection(emulator: Emulator, token: str) -> list[str]:
    return ["--endpoint", emulator.address, "--insecure", "--registry-url", emulator.registry_url, "--iam-token", token]


def doctor(emulator: Emulator, token: str) -> Any:
    return run_cli(["doctor", *connection(emulator, token), "--repository", "cr.yandex/crptest/app:clean"])


def test_doctor_describes_scan_on_push_and_rescan_schedules():
    policy = {
        "push": {"repository_prefixes": ["app", "team/"]},
        "schedules": [
            {"repository_prefixes": [""], "rescan_period": 604800},
            {"rescan_period": 86400, "disabled": True},
        ],
    }
    with Emulator(scenario_from_dict(cloud(policy))) as emulator:
        result = doctor(emulator, SCANNER)
    assert result.code == 0, result.output
    assert "scan-results ok    may read scan results (read the last one of image crpclean)" in result.stdout
    assert "registry crptest: scan on push on for app, team/; rescans every 7d for every repository" in result.stdout


def test_doctor_says_when_nothing_scans_on_its_own():
    with Emulator(scenario_from_dict(cloud())) as emulator:
        result = doctor(emulator, SCANNER)
    assert result.code == 0
    assert "registry crptest has no scan policy: nothing scans on push or rescans" in result.stdout
    disabled = cloud({"disabled": True, "push": {}})
    with Emulator(scenario_from_dict(disabled)) as emulator:
        assert "its scan policy is disabled" in doctor(emulator, SCANNER).stdout


def test_an_identity_that_cannot_read_scan_results_fails_doctor_and_audit_with_exit_3():
    with Emulator(scenario_from_dict(cloud())) as emulator:
        checked = doctor(emulator, PULLER)
        audited = run_cli(["audit", *connection(emulator, PULLER), "--repository", "crptest/app", "--progress", "none"])
        assert emulator.stats.scans_started == 0
    assert checked.code == 3, checked.output
    assert "scan-results FAIL  may not read the scan results of image crpclean" in checked.stdout
    assert "role container-registry.images.scanner" in checked.stdout
    assert "doctor: scan-results check failed (exit 3)" in checked.stdout
    assert audited.code == 3, audited.output
    assert "could not get the last scan result of image crpclean" in audited.stdout
    assert "PERMISSION_DENIED" in audited.stdout
