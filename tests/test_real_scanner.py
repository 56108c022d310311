"""Where the real service differs from crgate's old assumptions, emulated and checked through the CLI:
findings as the real scanner writes them, repository names as Yandex allows them, a READY result
without statistics, and a ``ScannerService.List`` that refuses the RUNNING filter."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import grpc
import pytest

from conftest import DIGEST_A, DIGEST_B, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_pb2, scanner_service_pb2, scanner_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_service_pb2, operation_service_pb2_grpc
from crgate_emulator import Emulator, demo_scenario

TIMEOUT = 5.0
NEEDS_CLIENT = "needs the client's handling in scanner/client.py (the integrator's core rewrite)"


# -- findings like the real scanner's ---------------------------------------------------------------


def test_demo_findings_look_like_the_real_scanners():
    vulnerable = demo_scenario().image("crpdemovuln000000001")
    assert vulnerable is not None
    assert {f.source for f in vulnerable.findings} == {"trivy"}
    assert any(f.name.startswith("TEMP-") for f in vulnerable.findings)  # Debian tracker ids
    lang_types = {f.type for f in vulnerable.findings if f.origin == "lang"}
    assert lang_types == {"python-pkg", "jar", "gobinary"}
    assert {f.type for f in vulnerable.findings if f.origin == "os"} == {"debian"}


def test_one_cve_in_several_packages_is_several_entries_counted_each(start_emulator):
    findings = [VULNERABLE_FINDINGS[0], *(dict(VULNERABLE_FINDINGS[0], package=p) for p in ("libssl3", "libcrypto3"))]
    emu = start_emulator(scenario(image("crpvuln", "vuln", DIGEST_B, findings)))
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:vuln", "--format", "json"))
    assert result.code == 1, result.output
    [judged] = json.loads(result.stdout)["images"]
    assert judged["counts"]["critical"] == 3
    assert Counter(f["cve"] for f in judged["findings"]) == {"CVE-2024-0001": 3}
    assert {f["package"] for f in judged["findings"]} == {"openssl", "libssl3", "libcrypto3"}


def test_the_demo_vulnerable_image_reports_language_packages_through_the_cli():
    result = run_cli(
        ["check", "--emulator", "--progress", "none", "--format", "json", "cr.yandex/crpdemo/app:vulnerable"]
    )
    assert result.code == 1, result.output
    [judged] = json.loads(result.stdout)["images"]
    lang = {(f["package"], f["type"]) for f in judged["findings"] if f["origin"] == "lang"}
    assert ("org.apache.logging.log4j:log4j-core", "jar") in lang and ("golang.org/x/net", "gobinary") in lang
    assert {f["source"] for f in judged["findings"]} == {"trivy"}


def test_the_quick_start_demo_keeps_its_verdicts():
    assert run_cli(["check", "--emulator", "--progress", "none", "cr.yandex/crpdemo/app:clean"]).code == 0
    assert run_cli(["check", "--emulator", "--progress", "none", "cr.yandex/crpdemo/app:vulnerable"]).code == 1


# -- repository names --------------------------------------------------------------------------------


@pytest.mark.parametrize("repository", ["a__b", "a--b", "team/a.-b"])
def test_a_repository_name_yandex_does_not_allow_is_exit_2_before_any_call(start_emulator, repository):
    emu = start_emulator(scenario(image("crpclean", "clean", DIGEST_A)))
    result = run_cli(check_args(emu, f"cr.yandex/crptest/{repository}:1"))
    assert result.code == 2, result.output
    assert f"repository '{repository}' is not valid" in result.stderr
    assert "single '.', '_' or '-'" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


# -- READY without statistics ------------------------------------------------------------------------


def test_the_emulator_can_leave_the_statistics_of_a_clean_result_unset(start_emulator):
    emu: Emulator = start_emulator(scenario(image("crpclean", "clean", DIGEST_A, anomaly="missing_stats")))
    with grpc.insecure_channel(emu.address) as channel:
        scanner = scanner_service_pb2_grpc.ScannerServiceStub(channel)
        operations = operation_service_pb2_grpc.OperationServiceStub(channel)
        operation = scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpclean"), timeout=TIMEOUT)
        for _ in range(100):
            operation = operations.Get(
                operation_service_pb2.GetOperationRequest(operation_id=operation.id), timeout=TIMEOUT
            )
            if operation.done:
                break
            time.sleep(0.05)
        result = scanner_pb2.ScanResult()
        assert operation.response.Unpack(result)
        assert result.status == scanner_pb2.ScanResult.READY and not result.HasField("vulnerabilities")
        fetched = scanner.Get(scanner_service_pb2.GetScanResultRequest(scan_result_id=result.id), timeout=TIMEOUT)
        assert not fetched.HasField("vulnerabilities")


@pytest.mark.parametrize(("findings", "code"), [([], 0), (VULNERABLE_FINDINGS, 1)])
def test_a_ready_result_without_statistics_is_judged_by_its_findings_with_a_warning(start_emulator, findings, code):
    emu = start_emulator(scenario(image("crpimg", "img", DIGEST_A, findings, anomaly="missing_stats")))
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:img"))
    assert result.code == code, result.output
    assert "warning" in result.stderr and "statistics" in result.stderr
    assert emu.stats.calls["ScannerService.ListVulnerabilities"] >= 1


# -- ScannerService.List refusing the RUNNING filter -------------------------------------------------


def list_request(**fields: Any) -> scanner_service_pb2.ListScanResultsRequest:
    return scanner_service_pb2.ListScanResultsRequest(image_id="crpclean", **fields)


@pytest.mark.parametrize("answer", ["INVALID_ARGUMENT", "UNIMPLEMENTED"])
def test_the_emulator_can_refuse_list_filters(start_emulator, answer):
    emu = start_emulator({**scenario(image("crpclean", "clean", DIGEST_A)), "scan_list_filter": answer})
    with grpc.insecure_channel(emu.address) as channel:
        scanner = scanner_service_pb2_grpc.ScannerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            scanner.List(list_request(filter='status="RUNNING"'), timeout=TIMEOUT)
        assert caught.value.code().name == answer
        assert list(scanner.List(list_request(), timeout=TIMEOUT).scan_results) == []  # no filter: answered


@pytest.mark.parametrize("answer", ["INVALID_ARGUMENT", "UNIMPLEMENTED"])
def test_a_refused_running_lookup_is_a_warning_and_a_normal_scan(start_emulator, answer):
    emu = start_emulator({**scenario(image("crpclean", "clean", DIGEST_A)), "scan_list_filter": answer})
    result = run_cli(check_args(emu, "cr.yandex/crptest/app:clean"))
    assert result.code == 0, result.output
    assert "warning" in result.stderr and emu.stats.scans_started == 1


def test_a_bad_scan_list_filter_answer_names_the_key():
    from crgate.errors import ConfigError
    from crgate_emulator import scenario_from_dict

    with pytest.raises(ConfigError, match=r"\(key 'scan_list_filter'\): expected one of SUPPORTED, INVALID_ARGUMENT"):
        scenario_from_dict({**scenario(), "scan_list_filter": "sometimes"})
