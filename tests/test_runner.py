"""The runner with a fake scanner: isolation of failures, shared scans, bounded concurrency."""

from __future__ import annotations

import random
import threading
import time

from crgate.errors import MalformedResponseError, ScanTimeoutError
from crgate.images import parse_image_ref
from crgate.model import Finding, Policy, ScanResult, SeverityCounts, Target
from crgate.registry import PlatformImage, RegistryAccessDenied, Resolved
from crgate.registry.index import OCI_MANIFEST
from crgate.runner import Run
from crgate.scanner.handle import ScanHandle, Snapshot
from crgate.timing import Deadline, PollPolicy

POLICY = Policy(version=1, thresholds={"critical": 0, "high": 0}, source="test")


class Recorder:
    def __init__(self):
        self.events = []

    def update(self, ref, state, scan_result_id=None):
        self.events.append((ref, state))


class FakeScanner:
    """Resolves ``...:<image-id>`` to ``<image-id>``; scan behaviour per image id."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.scans: list[str] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def last_result(self, image_id, deadline):
        return None

    def running_scan(self, image_id, deadline):
        return None

    def list_findings(self, scan_result_id, deadline, expected):
        image_id = scan_result_id.removeprefix("sr-")
        return tuple(Finding(f"CVE-2024-{n}", "critical", "openssl") for n in range(self.behaviour.get(image_id, 0)))

    def find_images(self, ref, digests, deadline):
        return {digest: digest.removeprefix("sha256:") for digest in digests if digest != "sha256:missing"}

    def join(self, scan_result_id, image_id):
        raise AssertionError("nothing is running: the fake never reports a running scan")

    def start_scan(self, image_id, deadline, *, idempotency_key=None):
        """Scans in the call itself and hands out a handle that is already done (the real ScanHandle)."""
        with self.lock:
            self.scans.append(image_id)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(0.05)
            action = self.behaviour.get(image_id, 0)
            if isinstance(action, BaseException):
                raise action
            result = ScanResult(
                id=f"sr-{image_id}", image_id=image_id, status="READY", counts=SeverityCounts(critical=action)
            )
            return ScanHandle(
                image_id,
                Snapshot(f"op-{image_id}", f"sr-{image_id}", result),
                refresh=lambda handle, deadline: None,
                sleep=time.sleep,
                poll_policy=PollPolicy(),
                rng=random.Random(0),
            )
        finally:
            with self.lock:
                self.active -= 1


class FakeRegistry:
    """Every tag names a single manifest whose "digest" is ``sha256:<tag>`` (the fake image id)."""

    def resolve(self, ref, deadline, platforms=()):
        if ref.tag == "unreadable":
            raise RegistryAccessDenied("the registry refused the read")
        digest = f"sha256:{ref.tag}"
        return Resolved(ref.raw, digest, OCI_MANIFEST, False, (PlatformImage(digest),))


def run(targets, scanner, concurrency=10):
    recorder = Recorder()
    gate = Run(
        targets,
        scanner,
        POLICY,
        Deadline(30),
        registry=FakeRegistry(),
        concurrency=concurrency,
        progress=recorder,
        cancel=threading.Event(),
    )
    gate.start()
    return gate.wait(), recorder


def target(tag):
    raw = f"cr.yandex/crpx/app:{tag}"
    return Target(label=raw, ref=parse_image_ref(raw))


def test_each_failure_stays_with_its_image():
    scanner = FakeScanner(
        {
            "bad": 2,
            "broken": MalformedResponseError("negative count"),
            "slow": ScanTimeoutError("timed out"),
            "bug": RuntimeError("boom"),
        }
    )
    outcomes, _ = run([target(t) for t in ("ok", "bad", "broken", "slow", "missing", "bug")], scanner)
    assert [(o.ref.rsplit(":", 1)[1], o.exit_code) for o in outcomes] == [
        ("ok", 0),
        ("bad", 1),
        ("broken", 3),
        ("slow", 4),
        ("missing", 3),
        ("bug", 3),  # an unexpected exception fails closed as an error, never as a pass
    ]
    kinds = {o.ref.rsplit(":", 1)[1]: o.error.kind for o in outcomes if o.error}
    assert kinds == {"broken": "malformed", "slow": "timeout", "missing": "not_found", "bug": "scan"}
    assert "internal error: RuntimeError: boom" in outcomes[-1].error.message


def test_targets_resolving_to_one_image_share_one_scan():
    scanner = FakeScanner({"same": 1})
    outcomes, _ = run([target("same"), target("same"), Target(label="same", image_id="same")], scanner)
    assert scanner.scans == ["same"]
    assert [o.exit_code for o in outcomes] == [1, 1, 1]
    assert {o.scan_result_id for o in outcomes} == {"sr-same"}


def test_shared_scan_error_reaches_every_target():
    scanner = FakeScanner({"same": MalformedResponseError("bad answer")})
    outcomes, _ = run([target("same"), target("same")], scanner)
    assert scanner.scans == ["same"]
    assert [o.exit_code for o in outcomes] == [3, 3]


def test_concurrency_is_bounded():
    scanner = FakeScanner({})
    run([target(f"img{n}") for n in range(8)], scanner, concurrency=3)
    assert scanner.max_active == 3


def test_progress_reports_each_image_from_queued_to_verdict():
    outcomes, recorder = run([target("ok"), target("bad")], FakeScanner({"bad": 1}))
    for outcome in outcomes:
        states = [state for ref, state in recorder.events if ref == outcome.ref]
        assert states[0] == "queued" and states[-1] == outcome.verdict
        assert "resolving" in states and "starting" in states


def test_unfinished_targets_are_reported_as_interrupted():
    gate = Run(
        [target("a")],
        FakeScanner({}),
        POLICY,
        Deadline(30),
        registry=FakeRegistry(),
        concurrency=1,
        progress=Recorder(),
        cancel=threading.Event(),
    )
    (outcome,) = gate.outcomes()  # never started
    assert outcome.exit_code == 130 and outcome.error.kind == "interrupted"


def test_a_registry_failure_stays_with_its_reference_and_nothing_is_scanned_for_it():
    scanner = FakeScanner({})
    outcomes, _ = run([target("unreadable"), target("ok")], scanner)
    assert [(o.ref.rsplit(":", 1)[1], o.exit_code) for o in outcomes] == [("unreadable", 3), ("ok", 0)]
    assert "the registry refused the read" in outcomes[0].error.message
    assert scanner.scans == ["ok"]


class IndexRegistry(FakeRegistry):
    """``multi`` names an index of two platform images (``amd`` and ``arm``); other tags as the base."""

    def resolve(self, ref, deadline, platforms=()):
        if ref.tag != "multi":
            return super().resolve(ref, deadline, platforms)
        children = (PlatformImage("sha256:amd", "linux/amd64"), PlatformImage("sha256:arm", "linux/arm64"))
        return Resolved(ref.raw, "sha256:index", "application/vnd.oci.image.index.v1+json", True, children)


def test_an_index_becomes_one_row_per_platform_in_place_of_the_reference():
    scanner = FakeScanner({"arm": 1})
    recorder = Recorder()
    gate = Run(
        [target("ok"), target("multi"), target("bad")],
        scanner,
        POLICY,
        Deadline(30),
        registry=IndexRegistry(),
        concurrency=4,
        progress=recorder,
        cancel=threading.Event(),
    )
    gate.start()
    outcomes = gate.wait()
    multi = "cr.yandex/crpx/app:multi"
    assert [o.ref for o in outcomes] == [
        "cr.yandex/crpx/app:ok",
        f"{multi} [linux/amd64]",
        f"{multi} [linux/arm64]",
        "cr.yandex/crpx/app:bad",
    ]
    assert [o.exit_code for o in outcomes] == [0, 0, 1, 0]
    assert sorted(scanner.scans) == ["amd", "arm", "bad", "ok"]  # never the index itself
    arm = outcomes[2].source
    assert (arm.platform, arm.digest, arm.index_digest) == ("linux/arm64", "sha256:arm", "sha256:index")
    assert arm.pinned == "cr.yandex/crpx/app@sha256:index"
    assert ("cr.yandex/crpx/app:multi", "multi-platform: gating each platform image") in recorder.events


class HangingScanner(FakeScanner):
    """A defect stand-in: ``start_scan`` for image ``hang`` ignores the deadline and never returns."""

    def __init__(self, behaviour):
        super().__init__(behaviour)
        self.release = threading.Event()

    def start_scan(self, image_id, deadline, *, idempotency_key=None):
        if image_id == "hang":
            self.release.wait()
            raise RuntimeError("released at the end of the test")
        return super().start_scan(image_id, deadline, idempotency_key=idempotency_key)


def test_a_worker_that_never_finishes_times_its_image_out_instead_of_hanging_the_run(monkeypatch):
    monkeypatch.setattr("crgate.runner.OVERRUN_GRACE", 0.2)
    scanner = HangingScanner({"ok": 0})
    gate = Run(
        [target("hang"), target("ok")],
        scanner,
        POLICY,
        Deadline(0.5),
        registry=FakeRegistry(),
        concurrency=2,
        progress=Recorder(),
        cancel=threading.Event(),
    )
    gate.start()
    try:
        hung, ok = gate.wait()
    finally:
        scanner.release.set()
    assert ok.error is None and ok.verdict == "pass"
    assert hung.error is not None and hung.error.kind == "timeout" and hung.error.exit_code == 4
    assert "no result within the --timeout of 0.5s" in hung.error.message
    assert "crgate stopped waiting 0.2s after it" in hung.error.message
