"""The cloud's scan quota (``container-registry.parallelScans.count``): enforced per cloud by the emulator,
shared with other clients' scans for a set time, refused with a configurable code, logged per ``Scan``
call; and crgate's runs against a busy quota through the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from conftest import check_args, image, run_cli
from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_service_pb2, scanner_service_pb2_grpc
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate.errors import ConfigError
from crgate_emulator import Emulator, scenario_from_dict
from crgate_emulator.clouds import DEFAULT_CLOUD_ID, QUOTA_NAME
from fakeclock import FakeClock

TIMEOUT = 5.0


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def images(count: int, *, duration: float = 10.0, prefix: str = "crpimg", **scan: Any) -> list[dict[str, Any]]:
    return [image(f"{prefix}{n}", f"t{n}", digest(n), duration=duration, **scan) for n in range(count)]


def cloud_scenario(imgs: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {"registries": [{"id": "crptest", "repositories": [{"name": "app", "images": imgs}]}], **top}


class Scanner:
    """The ScannerService of an emulator on a fake clock, through the generated stubs."""

    def __init__(self, emu: Emulator, clock: FakeClock):
        self.emu = emu
        self.clock = clock
        self.channel = grpc.insecure_channel(emu.address)
        self.stub = scanner_service_pb2_grpc.ScannerServiceStub(self.channel)

    def scan(self, image_id: str, key: str | None = None) -> operation_pb2.Operation:
        metadata = [("idempotency-key", key or str(uuid.uuid4()))]
        return self.stub.Scan(scanner_service_pb2.ScanRequest(image_id=image_id), metadata=metadata, timeout=TIMEOUT)

    def refusal(self, image_id: str, key: str | None = None) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            self.scan(image_id, key)
        return caught.value

    def results(self, image_id: str) -> list[Any]:
        request = scanner_service_pb2.ListScanResultsRequest(image_id=image_id)
        return list(self.stub.List(request, timeout=TIMEOUT).scan_results)


@pytest.fixture
def scanner() -> Iterator[Callable[[dict[str, Any]], Scanner]]:
    opened: list[Scanner] = []

    def start(data: dict[str, Any]) -> Scanner:
        clock = FakeClock(500.0)
        client = Scanner(Emulator(scenario_from_dict(data, source="<test>"), clock=clock).start(), clock)
        opened.append(client)
        return client

    yield start
    for client in opened:
        client.channel.close()
        client.emu.stop()


# -- the emulator -----------------------------------------------------------------------------------


def test_the_default_quota_is_ten_concurrent_scans_per_cloud(scanner):
    client = scanner(cloud_scenario(images(11)))
    for n in range(10):
        client.scan(f"crpimg{n}")
    refused = client.refusal("crpimg10", key="refused-key")
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.details() == f"Quota limit {QUOTA_NAME} exceeded"
    # A refused Scan created nothing: no scan result, no operation, the key is not taken.
    assert client.results("crpimg10") == []
    assert client.emu.stats.scans_started == 10
    [entry] = client.emu.stats.scan_log("refused")
    assert (entry.image_id, entry.idempotency_key, entry.code) == ("crpimg10", "refused-key", "RESOURCE_EXHAUSTED")
    assert (entry.operation_id, entry.scan_result_id, entry.cloud_id, entry.in_use) == ("", "", DEFAULT_CLOUD_ID, 10)
    client.clock.advance(10)  # the first ten are done: the same key now starts a scan
    client.scan("crpimg10", key="refused-key")
    assert [e.outcome for e in client.emu.stats.scan_log(image_id="crpimg10")] == ["refused", "started"]


@pytest.mark.parametrize("code", ["RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED"])
def test_the_refusal_code_and_message_are_configurable(scanner, code):
    quota = {"limit": 1, "code": code, "message": "Quota exceeded: parallel scans"}
    client = scanner(cloud_scenario(images(2), quota=quota))
    client.scan("crpimg0")
    refused = client.refusal("crpimg1")
    assert (refused.code().name, refused.details()) == (code, "Quota exceeded: parallel scans")
    assert client.emu.stats.scan_log("refused")[0].code == code


def test_other_clients_hold_the_quota_for_a_set_time(scanner):
    client = scanner(cloud_scenario(images(2), quota={"limit": 10, "others": {"count": 10, "for": 45}}))
    assert client.refusal("crpimg0").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    client.clock.advance(44.9)
    assert client.refusal("crpimg0").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    client.clock.advance(0.1)
    client.scan("crpimg0")
    assert [e.outcome for e in client.emu.stats.scan_log()] == ["refused", "refused", "started"]
    assert client.emu.state.quota_in_use(DEFAULT_CLOUD_ID) == 1


def test_other_clients_scans_can_start_later_and_add_up(scanner):
    others = [{"count": 1, "for": 10}, {"count": 1, "for": 10, "after": 5}]
    client = scanner(cloud_scenario(images(2), quota={"limit": 2, "others": others}))
    client.scan("crpimg0")  # 1 other + this one
    assert client.emu.stats.scan_log("started")[0].in_use == 2
    client.clock.advance(10)  # mine is done; the later other scan runs until 15 s
    client.scan("crpimg1")
    client.clock.advance(1)  # still 2 in use: mine and the later other's
    assert client.refusal("crpimg0").code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_idempotent_repeat_while_the_quota_is_full_returns_the_existing_operation(scanner):
    client = scanner(cloud_scenario(images(2), quota={"limit": 1}))
    first = client.scan("crpimg0", key="k0")
    assert client.refusal("crpimg1").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    again = client.scan("crpimg0", key="k0")
    assert again.id == first.id and client.emu.stats.scans_started == 1
    assert [e.outcome for e in client.emu.stats.scan_log()] == ["started", "refused", "repeated"]
    assert client.emu.stats.scan_log("repeated")[0].operation_id == first.id


def test_the_quota_is_per_cloud(scanner):
    data = {
        "quota": {"limit": 1},
        "clouds": [{"id": "b1gsecond", "quota": {"limit": 2}}],
        "registries": [
            {"id": "crpfirst", "repositories": [{"name": "app", "images": images(2, prefix="crpa")}]},
            {
                "id": "crpsecond",
                "cloud": "b1gsecond",
                "repositories": [{"name": "app", "images": images(3, prefix="crpb")}],
            },
        ],
    }
    client = scanner(data)
    client.scan("crpa0")
    assert client.refusal("crpa1").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    client.scan("crpb0")
    client.scan("crpb1")
    assert client.refusal("crpb2").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    refusals = {(e.image_id, e.cloud_id, e.in_use) for e in client.emu.stats.scan_log("refused")}
    assert refusals == {("crpa1", DEFAULT_CLOUD_ID, 1), ("crpb2", "b1gsecond", 2)}


def test_a_scan_already_running_at_start_takes_a_slot(scanner):
    running = image("crppushed", "pushed", digest(99), running_scan={"remaining_seconds": 5})
    client = scanner(cloud_scenario([running, *images(1)], quota={"limit": 1}))
    assert client.refusal("crpimg0").code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    client.clock.advance(5)
    client.scan("crpimg0")


def test_the_scan_log_tells_a_lost_response_from_a_fault_before_the_scan(scanner):
    faults = [
        {"method": "ScannerService.Scan", "code": "UNAVAILABLE"},
        {"method": "ScannerService.Scan", "code": "UNAVAILABLE", "lost_response": True},
    ]
    client = scanner(cloud_scenario(images(1), faults=faults))
    assert client.refusal("crpimg0", key="k").code() == grpc.StatusCode.UNAVAILABLE  # nothing ran
    assert client.refusal("crpimg0", key="k").code() == grpc.StatusCode.UNAVAILABLE  # ran, answer lost
    client.scan("crpimg0", key="k")
    log = [(e.outcome, e.code, e.idempotency_key) for e in client.emu.stats.scan_log()]
    assert log == [("failed", "UNAVAILABLE", "k"), ("started", "UNAVAILABLE", "k"), ("repeated", "OK", "k")]
    assert client.emu.stats.scans_started == 1


def test_max_concurrent_scans_is_short_for_the_quota_limit():
    assert scenario_from_dict(cloud_scenario([], max_concurrent_scans=3)).clouds[0].quota.limit == 3
    assert scenario_from_dict(cloud_scenario([], quota={"limit": None})).max_concurrent_scans is None


@pytest.mark.parametrize(
    ("top", "key", "fragment"),
    [
        ({"quota": {"limit": 2}, "max_concurrent_scans": 2}, "max_concurrent_scans", "not both"),
        ({"quota": {"limit": 0}}, "quota.limit", "integer >= 1"),
        ({"quota": {"code": "OK"}}, "quota.code", "not OK"),
        ({"quota": {"code": "NOPE"}}, "quota.code", "expected one of"),
        ({"quota": {"others": {"count": 2}}}, "quota.others[0].for", "required"),
        ({"quota": {"others": [{"count": 2, "for": -1}]}}, "quota.others[0].for", "number >= 0"),
        ({"quota": {"limits": 2}}, "quota.limits", "unknown key"),
        ({"clouds": [{"id": DEFAULT_CLOUD_ID}]}, "clouds[0].id", "default cloud"),
        ({"clouds": [{"id": "b1ga"}, {"id": "b1ga"}]}, "clouds[1].id", "duplicate"),
    ],
)
def test_bad_quota_data_names_the_key(top, key, fragment):
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict(cloud_scenario([], **top), source="q.yaml")
    assert f"(key '{key}')" in str(caught.value) and fragment in str(caught.value)


def test_a_registry_in_an_undeclared_cloud_is_refused():
    data = {"registries": [{"id": "crpa", "cloud": "b1gnowhere"}]}
    with pytest.raises(ConfigError, match="no cloud 'b1gnowhere'"):
        scenario_from_dict(data)


# -- crgate against a busy quota, through the CLI ---------------------------------------------------


def refs(count: int) -> list[str]:
    return [f"cr.yandex/crptest/app:t{n}" for n in range(count)]


def assert_each_image_scanned_once(emu: Emulator, count: int) -> None:
    started = emu.stats.scan_log("started")
    assert sorted(e.image_id for e in started) == sorted(f"crpimg{n}" for n in range(count))
    started_keys = {e.idempotency_key for e in started}
    assert len(started_keys) == count
    assert emu.stats.scans_started == count


def test_a_quota_full_for_a_moment_delays_the_run_and_every_image_is_judged(start_emulator):
    emu = start_emulator(cloud_scenario(images(3, duration=0.2), quota={"limit": 3, "others": {"count": 3, "for": 2}}))
    result = run_cli(check_args(emu, *refs(3)))
    assert result.code == 0, result.output
    assert emu.stats.scan_log("refused"), "the quota was never full: the test proves nothing"
    assert_each_image_scanned_once(emu, 3)


def test_thirty_images_at_concurrency_thirty_against_a_quota_of_ten(start_emulator):
    # 0.1 s polls (the server's interval): each wave of ten ends, and frees its slots, without waiting 1.8 s
    emu = start_emulator(cloud_scenario(images(30, duration=0.3, poll_interval=0.1), quota={"limit": 10}))
    result = run_cli(check_args(emu, *refs(30), "--concurrency", "30", "--format", "json"))
    assert result.code == 0, result.output
    assert emu.stats.scan_log("refused"), "the quota was never full: the test proves nothing"
    assert_each_image_scanned_once(emu, 30)
    assert emu.stats.max_concurrent_scans <= 10
    assert all(e.in_use <= 10 for e in emu.stats.scan_log())


def test_a_quota_held_full_by_other_clients_for_12_s_delays_the_run_instead_of_failing_it(start_emulator):
    # 12 s spans six refusals and the slot backoff's 8 s cap (1, 1.5, 2.25, ... jittered down to half):
    # the same path as a longer hold, which would only repeat the capped wait.
    emu = start_emulator(cloud_scenario(images(2, duration=0.2), quota={"others": {"count": 10, "for": 12}}))
    result = run_cli(check_args(emu, *refs(2), "--timeout", "120"))
    assert result.code == 0, result.output
    assert_each_image_scanned_once(emu, 2)
    assert "waiting for a scan slot" in result.stderr
    assert len(emu.stats.scan_log("refused")) >= 4, "the quota was not held long enough to back off: proves little"
