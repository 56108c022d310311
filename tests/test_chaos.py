"""Soak: many short gates through the real CLI against emulators in chaos mode, judged by the emulator.

Each run draws (from its own seed) a few images, clean or vulnerable, scans of 0.1-0.5 s, a chaos rate
and mix, sometimes a small quota, sometimes service-account auth (so revoked tokens are refreshed), and
runs ``crgate check --format json`` once. The emulator knows the truth (each image's findings) and logs
what it did (``scan_log``: every Scan call; ``chaos_log``: every fault it injected), so every run must hold:

(a) an image that passed or failed truly does, with its true counts; exit 0 only when every image passes;
(b) exit 1 only when every image has a verdict and one truly violates (an error anywhere outranks it);
    an image that was served a malformed answer (any anomaly but ``missing_stats``) has no verdict at all;
(c) at most one scan started per image: retries after lost answers reuse the idempotency key, and a
    refusal started nothing;
(d) the run ended within its ``--timeout`` plus a margin (a liveness bound, not a speed target);
(e) clean output (no terminal control, no CI command) and one schema-valid JSON report with the exit code;
and a run the chaos left alone gets the true exit code.

The default suite runs ``SOAK_RUNS`` runs (about a minute); ``CRGATE_SOAK_RUNS=400`` (or the hypothesis
long profile, ``CRGATE_HYPOTHESIS_PROFILE=long``) soaks longer. A failing run names its seed: rerun it
alone with ``CRGATE_SOAK_SEEDS=<seed>``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authkit import SCANNER_ROLE, key_text, public_pem, rsa_key
from conftest import DIGEST_A, finding, image, run_cli, scenario
from crgate_emulator import Emulator, scenario_from_dict
from crgate_emulator.chaos import KINDS
from hostile import REPORT_VALIDATOR
from test_untrusted_output import assert_clean

LONG = os.environ.get("CRGATE_HYPOTHESIS_PROFILE") == "long"
SOAK_RUNS = int(os.environ.get("CRGATE_SOAK_RUNS") or (400 if LONG else 20))
SEEDS = [int(seed) for seed in os.environ.get("CRGATE_SOAK_SEEDS", "").split(",") if seed] or list(
    range(1000, 1000 + SOAK_RUNS)
)
TIMEOUT = 8.0
SHORT_TIMEOUT = 2.0
MARGIN = 10.0  # seconds past --timeout a run may take to wind down (start-up, the last call's own deadline)
SA = "ajechaosscanner00001"
KEY_ID = "ajechaoskey000000001"
POLICY = "version: 1\nthresholds:\n  critical: 0\n  high: 0\n"
REUSE = "reuse:\n  max_age: 2h\n"  # a READY result an hour old is reused (ScannerService.GetLast)
VULNERABLE = [finding("CVE-2024-0001", "CRITICAL", fixed_by="1.0.1"), finding("CVE-2024-0002", "HIGH", "zlib")]
HARMLESS = [finding("CVE-2024-0003", "LOW", "bash")]  # passes the policy: counted, not over any limit


@dataclass(frozen=True)
class Plan:
    """One soak run, all drawn from its seed."""

    seed: int
    scenario: dict[str, Any]
    images: tuple[str, ...]
    auth: bool
    timeout: float = TIMEOUT
    reuse: bool = False

    def refs(self) -> list[str]:
        return [f"cr.yandex/crptest/app:t{image_id[-1]}" for image_id in self.images]


def plan(seed: int, *, kinds: list[str] | None = None, rate: float | None = None, auth: bool | None = None) -> Plan:
    """The run of ``seed``; ``kinds``, ``rate`` and ``auth`` replace what the seed would draw."""
    rng = random.Random(seed)
    images = []
    for n in range(rng.randint(1, 3)):
        findings = rng.choice([[], HARMLESS, VULNERABLE])
        duration = round(rng.uniform(0.1, 0.5), 2)
        # poll_interval: the server asks for quick polls (x-operation-poll-interval), so runs stay short
        images.append(
            image(f"crpchaos{n}", f"t{n}", f"sha256:{n + 1:064x}", findings, duration=duration, poll_interval=0.2)
        )
        situation = rng.choice(["new", "new", "new", "running", "scanned"])
        if situation == "running":  # scan-on-push is already scanning it: crgate joins (ScannerService.Get)
            images[-1]["scan"]["running_scan"] = {"remaining_seconds": round(rng.uniform(0.3, 0.8), 2)}
        elif situation == "scanned":  # a READY result from an hour ago: reused under the reuse policy
            images[-1]["scan"]["last_result"] = {"status": "READY", "age_seconds": 3600}
    chaos = {
        "seed": seed,
        "rate": round(rng.uniform(0.0, 0.35), 2),
        "kinds": sorted(rng.sample(KINDS, rng.randint(1, len(KINDS)))),
        "stall_seconds": 1.0,
        "quota_seconds": round(rng.uniform(0.2, 1.5), 2),
    }
    chaos.update({key: value for key, value in (("kinds", kinds), ("rate", rate)) if value is not None})
    data = {**scenario(*images), "chaos": chaos}
    if rng.random() < 0.3:
        data["quota"] = {"limit": 1}  # the run's own scans compete for the one slot
    drawn_auth = rng.random() < 0.4
    auth = drawn_auth if auth is None else auth
    if auth:
        data.update(
            require_auth=True,
            service_accounts=[
                {"id": SA, "roles": [SCANNER_ROLE], "key_id": KEY_ID, "public_key": public_pem(rsa_key("chaos"))}
            ],
        )
    timeout = rng.choice([TIMEOUT, TIMEOUT, TIMEOUT, SHORT_TIMEOUT])  # a short one makes stalls and waits time out
    reuse = rng.random() < 0.4
    return Plan(seed, data, tuple(entry["id"] for entry in images), auth, timeout, reuse)


def truly_violates(emu: Emulator, image_id: str) -> bool:
    truth = emu.scenario.image(image_id)
    assert truth is not None
    counts = truth.counts()
    return counts.critical > 0 or counts.high > 0


def served_malformed(emu: Emulator, image_id: str) -> list[str]:
    """The anomalies chaos served about the image that must make crgate fail closed."""
    return [e.detail for e in emu.stats.chaos_log("malformed", subject=image_id) if e.detail != "missing_stats"]


@dataclass(frozen=True)
class Outcome:
    """What one soak run came to: its exit code, the chaos kinds it met, how its verdicts were obtained."""

    code: int
    kinds: tuple[str, ...]
    origins: tuple[str, ...] = ()


def soak_run(run: Plan, tmp_path: Path) -> Outcome:
    """One gate; asserts (a) to (e) for it."""
    emu = Emulator(scenario_from_dict(run.scenario, source=f"<soak seed {run.seed}>")).start()
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY + (REUSE if run.reuse else ""))
        args = ["check", "--endpoint", emu.address, "--registry-url", emu.registry_url, "--insecure"]
        args += ["--progress", "lines", "--timeout", str(run.timeout)]
        args += ["--policy", str(policy), "--format", "json", *run.refs()]
        if run.auth:
            key = tmp_path / "key.json"
            key.write_text(key_text(KEY_ID, SA, rsa_key("chaos")))
            args += ["--sa-key", str(key)]
        started = time.monotonic()
        result = run_cli(args)
        elapsed = time.monotonic() - started
    finally:
        emu.stop()
    why = f"soak seed {run.seed} (rerun: CRGATE_SOAK_SEEDS={run.seed}); output:\n{result.output}"
    events = emu.stats.chaos_log()
    log = emu.stats.scan_log()
    why += "\nchaos: " + "; ".join(f"{e.method}#{e.number} {e.subject} {e.kind} {e.detail}" for e in events)
    why += "\nscans: " + "; ".join(f"{a.image_id} {a.outcome} {a.code} {a.idempotency_key[:8]}" for a in log)

    # (e) no traceback, clean output, one schema-valid JSON document carrying the exit code
    assert "Traceback" not in result.output and "internal error" not in result.output, why
    assert_clean(result.output)
    assert result.code in (0, 1, 3, 4), why
    if not result.stdout.strip():
        # the run stopped before gating (the first token could not be obtained): nothing was judged
        assert result.code in (3, 4) and "crgate: error:" in result.stderr, why
        assert emu.stats.scans_started == 0 and elapsed < run.timeout + MARGIN, why
        return Outcome(result.code, tuple(e.kind for e in events))
    doc = json.loads(result.stdout)
    REPORT_VALIDATOR.validate(doc)
    assert doc["exit_code"] == result.code, why

    # (a), (b): every verdict is the truth; a malformed answer leaves no verdict; errors outrank violations
    by_id = {}
    for image_id, ref, report in zip(run.images, run.refs(), doc["images"], strict=True):
        assert report["ref"] == ref and report["image_id"] in (image_id, None), why
        by_id[image_id] = report
    for image_id, report in by_id.items():
        if report["verdict"] == "error":
            assert report["error"] is not None and report["counts"] is None, why
            continue
        assert not served_malformed(emu, image_id), f"{image_id} got a verdict despite a malformed answer; {why}"
        truth = emu.scenario.image(image_id)
        assert truth is not None
        assert report["counts"] == truth.counts().as_dict(), why
        assert report["verdict"] == ("fail" if truly_violates(emu, image_id) else "pass"), why
    verdicts = [report["verdict"] for report in by_id.values()]
    if result.code == 0:
        assert set(verdicts) == {"pass"}, why
    elif result.code == 1:
        assert "error" not in verdicts and "fail" in verdicts, why
    else:
        assert "error" in verdicts, why

    # (c) one scan at most per image in this run
    started_per_image = Counter(a.image_id for a in log if a.outcome == "started")
    assert all(count <= 1 for count in started_per_image.values()), f"a scan was started twice; {why}"
    keys = {a.idempotency_key for a in log if a.outcome == "started"}
    assert all(a.idempotency_key in keys for a in log if a.outcome == "repeated"), why

    # (d) liveness: the run ended, within its timeout plus a margin
    assert elapsed < run.timeout + MARGIN, f"the run took {elapsed:.1f}s; {why}"

    # a run the chaos left alone (no quota wait either) must reach the true verdict, given time for the poll
    # schedule (a joined scan is polled after 0.25 s, then every 1.8 s: a 2 s --timeout may end first)
    if not events and not any(a.outcome == "refused" for a in log) and run.timeout >= TIMEOUT:
        truth_code = 1 if any(truly_violates(emu, image_id) for image_id in run.images) else 0
        assert result.code == truth_code, why
    origins = tuple(report["origin"] for report in by_id.values() if report["verdict"] != "error")
    return Outcome(result.code, tuple(e.kind for e in events), origins)


def test_chaos_soak(tmp_path: Path) -> None:
    codes: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    for seed in SEEDS:
        outcome = soak_run(plan(seed), tmp_path)
        codes[outcome.code] += 1
        kinds.update(outcome.kinds)
        origins.update(outcome.origins)
    # The soak exercised what it claims to: passes, violations and errors came out, verdicts on new,
    # joined and reused scans, and the faults covered most kinds (the mix is drawn per run, so a short
    # custom seed list may see fewer).
    if len(SEEDS) >= 20:
        assert codes[0] and codes[1] and codes[3] + codes[4], codes
        assert set(origins) == {"scanned", "joined", "reused"}, origins
        assert len(kinds) >= len(KINDS) - 1, kinds


@pytest.mark.parametrize("kind", KINDS)
def test_each_chaos_kind_alone_never_breaks_the_gates_promises(kind: str, tmp_path: Path) -> None:
    """One kind at a time, on about a third of the calls, so each is proven on its own (the soak mixes them)."""
    run = plan(501, kinds=[kind], rate=0.35, auth=True if kind == "revoke" else None)
    soak_run(dataclasses.replace(run, timeout=4.0), tmp_path)


# -- what chaos found --------------------------------------------------------------------------------


def test_a_refusal_after_a_lost_answer_does_not_start_a_second_scan(tmp_path: Path) -> None:
    faults = [
        {"method": "ScannerService.Scan", "code": "UNAVAILABLE", "lost_response": True},  # scan 1 runs, unseen
        {"method": "ScannerService.Scan", "code": "RESOURCE_EXHAUSTED", "message": "Too many requests"},
    ]
    data = scenario(image("crpimg1", "t", DIGEST_A, duration=0.1), faults=faults)
    emu = Emulator(scenario_from_dict(data, source="<double start>")).start()
    try:
        args = ["check", "--endpoint", emu.address, "--registry-url", emu.registry_url, "--insecure"]
        args += ["--progress", "none", "--timeout", str(TIMEOUT)]
        result = run_cli([*args, "--format", "json", "cr.yandex/crptest/app:t"])
    finally:
        emu.stop()
    log = emu.stats.scan_log()
    assert [a.outcome for a in log][:2] == ["started", "failed"], log  # the scenario did what it says
    started = [a for a in log if a.outcome == "started"]
    assert len(started) == 1, f"{len(started)} scans started for one logical scan: {log}; {result.output}"
