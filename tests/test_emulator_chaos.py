"""The emulator's chaos mode (``chaos:`` in a scenario): which faults a seed picks, that each kind does what
the docstring of ``crgate_emulator.chaos`` says over real loopback gRPC, and that it is logged."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_service_pb2, scanner_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc
from crgate.errors import ConfigError, ScanError
from crgate.scanner.decode import decode_operation, decode_scan_result
from crgate_emulator import Emulator, scenario_from_dict
from crgate_emulator.chaos import KINDS, TRANSIENT_CODES, ChaosSettings, applicable_kinds, decide
from crgate_emulator.scenario import ANOMALIES, METHODS

TIMEOUT = 5.0
DIGEST = "sha256:" + "0" * 64
ALL_KINDS = applicable_kinds("ScannerService.Scan", authenticated=True, quota_limited=True)


def img(image_id: str, findings: list[dict[str, Any]] | None = None, **scan: Any) -> dict[str, Any]:
    scan.setdefault("duration", 0.0)
    return {"id": image_id, "digest": DIGEST, "tags": [image_id], "findings": findings or [], "scan": scan}


HIGH = {"name": "CVE-2024-0001", "severity": "HIGH", "package": "openssl"}


def scenario(*images: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"registries": [{"id": "crptest", "repositories": [{"name": "app", "images": list(images)}]}], **top}


class Client:
    """Generated stubs on a channel to one emulator."""

    def __init__(self, emu: Emulator):
        self.emu = emu
        self.channel = grpc.insecure_channel(emu.address)
        self.scanner = scanner_service_pb2_grpc.ScannerServiceStub(self.channel)
        self.operations = operation_service_pb2_grpc.OperationServiceStub(self.channel)

    def scan(self, image_id: str, key: str | None = None, timeout: float = TIMEOUT) -> operation_pb2.Operation:
        metadata = [("idempotency-key", key or str(uuid.uuid4()))]
        return self.scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id), metadata=metadata, timeout=timeout)

    def get_op(self, operation_id: str, timeout: float = TIMEOUT) -> operation_pb2.Operation:
        request = operation_service_pb2.GetOperationRequest(operation_id=operation_id)
        return self.operations.Get(request, timeout=timeout)

    def code_of(self, call: Callable[[], Any]) -> grpc.StatusCode:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        return caught.value.code()


@pytest.fixture
def connect() -> Iterator[Callable[[dict[str, Any]], Client]]:
    opened: list[Client] = []

    def make(data: dict[str, Any]) -> Client:
        client = Client(Emulator(scenario_from_dict(data, source="<test>")).start())
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.channel.close()
        client.emu.stop()


# -- decisions -----------------------------------------------------------------------------------------


def decisions(settings: ChaosSettings, calls: int = 400) -> list[Any]:
    return [decide(settings, "OperationService.Get", "crpimg1", n, ALL_KINDS) for n in range(1, calls + 1)]


def test_a_seed_decides_the_same_faults_every_time_and_another_seed_others():
    settings = ChaosSettings(seed=42, rate=0.3)
    assert decisions(settings) == decisions(ChaosSettings(seed=42, rate=0.3))
    assert decisions(settings) != decisions(ChaosSettings(seed=43, rate=0.3))
    # The decision is keyed by the call, not by the order of all calls: another image's calls in between
    # (other threads) change nothing.
    assert decide(settings, "OperationService.Get", "crpimg1", 7, ALL_KINDS) == decisions(settings)[6]
    assert [decide(settings, "OperationService.Get", "crpimg2", n, ALL_KINDS) for n in range(1, 401)] != decisions(
        settings
    )


def test_the_rate_is_the_share_of_calls_that_get_a_fault_and_every_kind_comes_up():
    faults = [fault for fault in decisions(ChaosSettings(seed=7, rate=0.3), calls=2000) if fault is not None]
    assert 0.25 < len(faults) / 2000 < 0.35
    assert {fault.kind for fault in faults} == set(KINDS)
    assert {fault.code for fault in faults if fault.kind == "transient"} == set(TRANSIENT_CODES)
    stalls = [fault.seconds for fault in faults if fault.kind == "stall"]
    assert all(0 <= seconds <= 2.0 for seconds in stalls) and max(stalls) > 1.5
    assert not any(decisions(ChaosSettings(seed=7, rate=0.0)))
    assert all(decisions(ChaosSettings(seed=7, rate=1.0)))


def test_only_the_kinds_that_apply_to_a_call_and_the_chosen_ones_and_methods_are_picked():
    kinds_of = applicable_kinds("ImageService.List", authenticated=False, quota_limited=False)
    assert kinds_of == {"drop", "lost_response", "stall", "transient"}
    assert applicable_kinds("ScannerService.Scan", authenticated=False, quota_limited=False) == kinds_of | {"malformed"}
    assert "revoke" in applicable_kinds("ImageService.List", authenticated=True, quota_limited=False)
    assert "quota" not in applicable_kinds("OperationService.Get", authenticated=True, quota_limited=True)
    settings = ChaosSettings(seed=1, rate=1.0, kinds=("quota", "stall"))
    picked = {decide(settings, "ImageService.List", "crptest/app", n, kinds_of).kind for n in range(1, 50)}
    assert picked == {"stall"}
    only_scan = ChaosSettings(seed=1, rate=1.0, methods=("ScannerService.Scan",))
    assert decide(only_scan, "OperationService.Get", "crpimg1", 1, ALL_KINDS) is None
    assert decide(ChaosSettings(seed=1, rate=1.0, kinds=("quota",)), "ImageService.List", "r", 1, kinds_of) is None


# -- the scenario key ----------------------------------------------------------------------------------


def test_the_chaos_key_is_read_with_defaults():
    loaded = scenario_from_dict(scenario(img("crpimg1"), chaos={"seed": 5}))
    assert loaded.chaos == ChaosSettings(seed=5)
    full = {"seed": 5, "rate": 1, "kinds": ["stall"], "methods": ["ImageService.List"], "stall_seconds": 0.5}
    assert scenario_from_dict(scenario(img("crpimg1"), chaos={**full, "quota_seconds": 3})).chaos == ChaosSettings(
        seed=5, rate=1.0, kinds=("stall",), methods=("ImageService.List",), stall_seconds=0.5, quota_seconds=3.0
    )
    assert scenario_from_dict(scenario(img("crpimg1"))).chaos is None


@pytest.mark.parametrize(
    ("chaos", "fragment"),
    [
        ({"rate": 0.5}, "key 'chaos.seed'): required key is missing"),
        ({"seed": "42"}, "key 'chaos.seed'): expected an integer, got '42'"),
        ({"seed": True}, "key 'chaos.seed'): expected an integer"),
        ({"seed": 1, "rate": 1.5}, "key 'chaos.rate'): expected a share of calls from 0 to 1"),
        ({"seed": 1, "rate": -0.1}, "key 'chaos.rate'): expected a number >= 0"),
        ({"seed": 1, "kinds": ["chaos"]}, "key 'chaos.kinds[0]'): expected one of drop, lost_response"),
        ({"seed": 1, "kinds": ["stall", "stall"]}, "key 'chaos.kinds[1]'): 'stall' is listed twice"),
        ({"seed": 1, "methods": ["Scan"]}, "key 'chaos.methods[0]'): expected one of ScannerService.Scan"),
        ({"seed": 1, "stall_seconds": -1}, "key 'chaos.stall_seconds'): expected a number >= 0"),
        ({"seed": 1, "sede": 2}, "key 'chaos.sede'): unknown key"),
        ("random", "key 'chaos'): expected a mapping"),
    ],
)
def test_a_bad_chaos_key_names_itself(chaos: Any, fragment: str):
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict(scenario(img("crpimg1"), chaos=chaos), source="s.yaml")
    assert str(caught.value).startswith("emulator scenario s.yaml")
    assert fragment in str(caught.value)


def test_faults_random_points_at_the_chaos_key():
    with pytest.raises(ConfigError, match=r"key 'faults'\): expected a list of scripted faults; random faults are"):
        scenario_from_dict(scenario(img("crpimg1"), faults="random"), source="s.yaml")


# -- each kind on the wire -----------------------------------------------------------------------------


def chaotic(kind: str, *images: dict[str, Any], methods: tuple[str, ...] = (), **chaos: Any) -> dict[str, Any]:
    settings = {"seed": 1, "rate": 1.0, "kinds": [kind], **({"methods": list(methods)} if methods else {}), **chaos}
    return scenario(*(images or (img("crpimg1"),)), chaos=settings)


def test_drop_answers_unavailable_before_the_call_runs(connect):
    client = connect(chaotic("drop"))
    assert client.code_of(lambda: client.scan("crpimg1")) == grpc.StatusCode.UNAVAILABLE
    [attempt] = client.emu.stats.scan_log()
    assert (attempt.outcome, attempt.code) == ("failed", "UNAVAILABLE")
    assert client.emu.stats.scans_started == 0
    [event] = client.emu.stats.chaos_log()
    assert (event.method, event.subject, event.number, event.kind, event.answered) == (
        "ScannerService.Scan",
        "crpimg1",
        1,
        "drop",
        "UNAVAILABLE",
    )


def test_lost_response_runs_the_call_and_an_idempotent_retry_finds_the_scan(connect):
    client = connect(chaotic("lost_response", methods=("ScannerService.Scan",)))
    for _ in range(2):  # the retry with the same key is lost too: still one scan
        assert client.code_of(lambda: client.scan("crpimg1", key="key-1")) == grpc.StatusCode.UNAVAILABLE
    log = client.emu.stats.scan_log()
    assert [(a.outcome, a.code, a.idempotency_key) for a in log] == [
        ("started", "UNAVAILABLE", "key-1"),
        ("repeated", "UNAVAILABLE", "key-1"),
    ]
    assert log[0].operation_id == log[1].operation_id
    assert client.emu.stats.scans_started == 1
    assert [e.number for e in client.emu.stats.chaos_log("lost_response")] == [1, 2]


def test_a_stall_longer_than_the_client_waits_is_a_lost_answer_and_a_short_one_arrives(connect):
    client = connect(chaotic("stall", methods=("ScannerService.Scan",), stall_seconds=1.0, seed=3))
    stalls = [decide(client.emu.scenario.chaos, "ScannerService.Scan", "crpimg1", n, ALL_KINDS) for n in (1, 2)]
    assert all(fault is not None and fault.kind == "stall" for fault in stalls)
    assert client.code_of(lambda: client.scan("crpimg1", key="k", timeout=0.01)) == grpc.StatusCode.DEADLINE_EXCEEDED
    op = client.scan("crpimg1", key="k", timeout=TIMEOUT)  # the retry waits out its stall and gets the operation
    events = client.emu.stats.chaos_log("stall")
    assert [event.delivered for event in events] == [False, True]
    assert [event.detail for event in events] == [f"{fault.seconds:.2f}s" for fault in stalls if fault]
    assert [a.outcome for a in client.emu.stats.scan_log()] == ["started", "repeated"]
    assert op.id == client.emu.stats.scan_log()[0].operation_id


def test_transient_codes_refuse_the_call_before_it_runs(connect):
    client = connect(chaotic("transient", *(img(f"crpimg{n}") for n in range(30))))
    codes = {client.code_of(lambda n=n: client.scan(f"crpimg{n}")) for n in range(30)}
    assert codes == {grpc.StatusCode[name] for name in TRANSIENT_CODES}
    assert client.emu.stats.scans_started == 0
    assert {e.answered for e in client.emu.stats.chaos_log("transient")} == set(TRANSIENT_CODES)


def test_malformed_answers_take_every_anomaly_and_crgate_fails_closed_on_all_but_missing_stats(connect):
    images = [img(f"crpimg{n}", findings=[HIGH]) for n in range(60)]
    client = connect(chaotic("malformed", *images, methods=("OperationService.Get", "ScannerService.Get")))
    seen = set()
    for n in range(60):
        image_id = f"crpimg{n}"
        op = client.scan(image_id)
        for number, method in enumerate(("OperationService.Get", "ScannerService.Get"), start=1):
            if method == "OperationService.Get":
                answer: Any = client.get_op(op.id)
            else:
                answer = client.scanner.Get(_get(op), timeout=TIMEOUT)
            events = client.emu.stats.chaos_log(subject=image_id)
            assert len(events) == number and events[-1].method == method  # every answer of theirs is shaped
            event = events[-1]
            seen.add(event.detail)
            assert event.detail in ANOMALIES
            if event.detail == "missing_stats":
                continue  # a READY result may leave its statistics out: judged by the listed findings
            if event.detail == "stats_mismatch":  # caught when the listed findings are recounted
                assert _decoded_counts(answer, image_id, op) != {"high": 1}
                continue
            with pytest.raises(ScanError):
                _decoded_counts(answer, image_id, op)
    # A done operation takes every anomaly but error_before_done (only while running), a result the
    # ScanResult ones.
    assert seen == set(ANOMALIES) - {"error_before_done"}
    assert client.emu.stats.scans_started == 60


def _decoded_counts(answer: Any, image_id: str, op: operation_pb2.Operation) -> dict[str, int]:
    """The non-zero counts crgate's decoder reads from an answer (or its ScanError)."""
    if isinstance(answer, operation_pb2.Operation):
        result = decode_operation(answer, image_id=image_id).result
    else:
        result = decode_scan_result(answer, image_id=image_id, expected_id=_scan_result_id(op))
    assert result is not None
    return {name: count for name, count in result.counts.as_dict().items() if count}


def _scan_result_id(op: operation_pb2.Operation) -> str:
    metadata = scanner_service_pb2.ScanMetadata()
    op.metadata.Unpack(metadata)
    return metadata.scan_result_id


def _get(op: operation_pb2.Operation) -> scanner_service_pb2.GetScanResultRequest:
    return scanner_service_pb2.GetScanResultRequest(scan_result_id=_scan_result_id(op))


def test_a_running_operation_takes_the_anomalies_of_a_running_one(connect):
    images = [img(f"crpimg{n}", duration=3600) for n in range(20)]
    client = connect({**chaotic("malformed", *images, methods=("OperationService.Get",)), "quota": {"limit": None}})
    for n in range(20):
        op = client.scan(f"crpimg{n}")
        polled = client.get_op(op.id)
        assert not polled.done
        with pytest.raises(ScanError):
            decode_operation(polled, image_id=f"crpimg{n}")
    assert {e.detail for e in client.emu.stats.chaos_log("malformed")} == {"error_before_done", "wrong_metadata_type"}


def test_a_quota_fault_fills_the_cloud_for_a_while(connect):
    images = (img("crpimg1"), img("crpimg2"))
    client = connect(chaotic("quota", *images, methods=("ScannerService.Scan",), quota_seconds=30))
    assert client.code_of(lambda: client.scan("crpimg1", key="k1")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.code_of(lambda: client.scan("crpimg2", key="k2")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [(a.outcome, a.in_use) for a in client.emu.stats.scan_log()] == [("refused", 10), ("refused", 10)]
    assert client.emu.stats.scans_started == 0
    assert [e.detail for e in client.emu.stats.chaos_log("quota")] == ["30.00s", "30.00s"]


def test_a_repeat_of_a_started_scan_passes_a_quota_fault(connect):
    data = scenario(img("crpimg1"), chaos={"seed": 1, "rate": 1.0, "kinds": ["quota"], "quota_seconds": 30})
    client = connect(data)
    started = client.emu.state.start_scan("crpimg1", "known-key")  # a scan started before the cloud filled up
    op = client.scan("crpimg1", key="known-key")
    assert op.id == started.operation.id
    assert [a.outcome for a in client.emu.stats.scan_log()] == ["repeated"]
    assert client.emu.state.quota_in_use(client.emu.scenario.clouds[0].id) >= 10


def test_revoke_makes_the_token_unauthenticated_for_good(connect):
    data = chaotic("revoke", methods=("OperationService.Get",))
    data.update(
        require_auth=True,
        service_accounts=[{"id": "ajesa1", "roles": ["container-registry.images.scanner"]}],
        iam_tokens=[{"token": "t1.good", "service_account_id": "ajesa1"}],
    )
    client = connect(data)
    auth = [("authorization", "Bearer t1.good"), ("idempotency-key", "k")]
    op = client.scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=auth, timeout=TIMEOUT)
    get = operation_service_pb2.GetOperationRequest(operation_id=op.id)
    with pytest.raises(grpc.RpcError) as caught:
        client.operations.Get(get, metadata=auth[:1], timeout=TIMEOUT)
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "The token has been revoked",
    )
    with pytest.raises(grpc.RpcError) as again:  # Scan is not chaotic here, but the token stays revoked
        client.scanner.Scan(scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=auth, timeout=TIMEOUT)
    assert again.value.code() == grpc.StatusCode.UNAUTHENTICATED
    [event] = client.emu.stats.chaos_log("revoke")
    assert (event.method, event.answered) == ("OperationService.Get", "UNAUTHENTICATED")


def test_revoke_never_applies_without_auth(connect):
    client = connect(chaotic("revoke"))
    client.scan("crpimg1")
    assert client.emu.stats.chaos_log() == []


def test_scripted_faults_come_first(connect):
    data = chaotic("drop", img("crpimg1", faults=[{"method": "ScannerService.Scan", "code": "NOT_FOUND"}]))
    client = connect(data)
    assert client.code_of(lambda: client.scan("crpimg1")) == grpc.StatusCode.NOT_FOUND
    assert client.emu.stats.chaos_log() == []
    assert client.code_of(lambda: client.scan("crpimg1")) == grpc.StatusCode.UNAVAILABLE  # the script ran out
    assert [e.number for e in client.emu.stats.chaos_log()] == [2]


def test_the_same_calls_get_the_same_faults_on_another_emulator_with_the_same_seed(connect):
    def run() -> list[tuple[str, str, int, str, str]]:
        data = scenario(*(img(f"crpimg{n}") for n in range(8)), chaos={"seed": 99, "rate": 0.5, "stall_seconds": 0})
        client = connect(data)
        for n in range(8):
            for _ in range(3):
                try:
                    op = client.scan(f"crpimg{n}", key=f"key-{n}")
                    client.get_op(op.id)
                except grpc.RpcError:
                    pass
        log = client.emu.stats.chaos_log()
        return [(e.method, e.subject, e.number, e.kind, e.detail) for e in log]

    first = run()
    assert len(first) > 8 and first == run()
    assert len({kind for _, _, _, kind, _ in first}) >= 4
    assert all(method in METHODS for method, *_ in first)


def test_an_every_call_chaos_still_answers_every_call_with_request_ids(connect):
    client = connect(scenario(img("crpimg1"), chaos={"seed": 4, "rate": 1.0, "stall_seconds": 0.05}))
    for _ in range(20):
        try:
            _, call = client.scanner.Scan.with_call(
                scanner_service_pb2.ScanRequest(image_id="crpimg1"), metadata=[("x-request-id", "r1")], timeout=TIMEOUT
            )
        except grpc.RpcError as error:
            headers = dict(error.trailing_metadata() or ())
        else:
            headers = dict(call.initial_metadata())
        assert headers["x-request-id"] == "r1" and headers["x-server-trace-id"]
