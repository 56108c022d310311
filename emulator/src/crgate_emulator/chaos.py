"""Chaos mode: random faults on a share of the emulator's calls, the same ones for the same seed.

Scripted ``faults`` say exactly which call fails; chaos says how often, and lets a seed pick which. A
scenario key (all optional but ``seed``)::

    chaos:
      seed: 42                 # an integer: the same seed gives the same faults
      rate: 0.3                # share of calls that get a fault, 0 to 1
      kinds: [drop, lost_response, stall, transient, malformed, quota, revoke]   # default: all of KINDS
      methods: [OperationService.Get, ...]   # default: every method of METHODS
      stall_seconds: 2.0       # a stall lasts up to this long (or until the client gives up)
      quota_seconds: 1.0       # how long other clients fill the cloud's quota after a quota fault

Kinds (each call that gets a fault gets one kind, picked among those that apply to the call):

- ``drop``: the connection drops before the call runs; the client sees UNAVAILABLE, nothing happened.
- ``lost_response``: the call runs (a ``Scan`` really starts a scan), then the answer is lost: UNAVAILABLE.
- ``stall``: the answer waits up to ``stall_seconds`` after the call ran; a client whose deadline passes
  first never sees it (its own DEADLINE_EXCEEDED, as for a lost answer).
- ``transient``: the call is refused before it runs with UNAVAILABLE, INTERNAL or RESOURCE_EXHAUSTED.
- ``malformed``: the answer gets one of the ``anomaly`` shapes (``ANOMALIES`` in scenario.py) that
  applies to it: ``Scan`` and ``OperationService.Get`` answers, ``ScannerService.Get``/``GetLast``
  results. ``missing_stats`` is a legitimate answer (judged by the listed findings); every other anomaly
  must make a client fail closed.
- ``quota``: other clients fill the image's cloud quota for ``quota_seconds`` (``clouds.py``), so this
  ``Scan`` and others in that time are refused as past the quota (an idempotent repeat still gets its
  operation). Only ``ScannerService.Scan``, only in a cloud with a limit.
- ``revoke``: the caller's token is revoked before the call is checked: UNAUTHENTICATED now and for every
  later use of that token (a client holding a key gets a new one). Only with ``require_auth: true``.

The decision for a call is a pure function of the seed, the method, the call's subject (the image it is
about, or the repository an ``ImageService.List`` names) and how many calls of that method about that
subject came before: threads that interleave differently still get the same faults for the same calls.
Every fault is logged (``EmulatorStats.chaos_log``) with what the client was told.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from crgate_emulator.fields import FieldParser, join

KINDS: tuple[str, ...] = ("drop", "lost_response", "stall", "transient", "malformed", "quota", "revoke")
TRANSIENT_CODES: tuple[str, ...] = ("UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED")
# Methods whose answers a malformed fault can shape (an Operation or a ScanResult).
MALFORMABLE_METHODS = frozenset(
    {"ScannerService.Scan", "OperationService.Get", "ScannerService.Get", "ScannerService.GetLast"}
)
CHAOS_KEYS = ("seed", "rate", "kinds", "methods", "stall_seconds", "quota_seconds")
DEFAULT_RATE = 0.2
DEFAULT_STALL_SECONDS = 2.0
DEFAULT_QUOTA_SECONDS = 1.0


@dataclass(frozen=True)
class ChaosSettings:
    """The ``chaos:`` key of a scenario."""

    seed: int
    rate: float = DEFAULT_RATE
    kinds: tuple[str, ...] = KINDS
    methods: tuple[str, ...] = ()
    """Methods that may get faults; empty means every method."""
    stall_seconds: float = DEFAULT_STALL_SECONDS
    quota_seconds: float = DEFAULT_QUOTA_SECONDS


@dataclass(frozen=True)
class ChaosFault:
    """The fault one call gets. ``pick`` (in [0, 1)) chooses the anomaly once the answer is known."""

    kind: str
    code: str = "UNAVAILABLE"
    seconds: float = 0.0
    pick: float = 0.0


def decide(
    settings: ChaosSettings, method: str, subject: str, number: int, applicable: Collection[str]
) -> ChaosFault | None:
    """The fault of the ``number``-th call (1-based) of ``method`` about ``subject``, or None.

    Pure: a function of its arguments only. ``applicable`` are the kinds that can apply to this call."""
    if settings.methods and method not in settings.methods:
        return None
    digest = hashlib.sha256(f"{settings.seed}\0{method}\0{subject}\0{number}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    if rng.random() >= settings.rate:
        return None
    kinds = [kind for kind in settings.kinds if kind in applicable]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    code = rng.choice(TRANSIENT_CODES) if kind == "transient" else "UNAVAILABLE"
    seconds = rng.uniform(0.0, settings.stall_seconds) if kind == "stall" else settings.quota_seconds
    return ChaosFault(kind, code=code, seconds=seconds if kind in ("stall", "quota") else 0.0, pick=rng.random())


def applicable_kinds(method: str, *, authenticated: bool, quota_limited: bool) -> frozenset[str]:
    """The kinds that can apply to a call of ``method`` (``authenticated``: the call's token is checked)."""
    kinds = {"drop", "lost_response", "stall", "transient"}
    if method in MALFORMABLE_METHODS:
        kinds.add("malformed")
    if method == "ScannerService.Scan" and quota_limited:
        kinds.add("quota")
    if authenticated:
        kinds.add("revoke")
    return frozenset(kinds)


class Chaos:
    """The running chaos of one emulator: counts calls per (method, subject) and decides their faults."""

    def __init__(self, settings: ChaosSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()

    def next_call(self, method: str, subject: str, applicable: Collection[str]) -> tuple[int, ChaosFault | None]:
        """Count one call and decide its fault: (its number for this method and subject, the fault)."""
        with self._lock:
            self._calls[(method, subject)] += 1
            number = self._calls[(method, subject)]
        return number, decide(self.settings, method, subject, number, applicable)


def parse_chaos(parser: FieldParser, data: Any, methods: tuple[str, ...]) -> ChaosSettings | None:
    """The ``chaos:`` mapping of a scenario (None when absent), checked with the scenario's field readers."""
    if data is None:
        return None
    path = "chaos"
    raw = parser.mapping(data, path, CHAOS_KEYS, ("seed",))
    seed = raw["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        parser.fail(join(path, "seed"), f"expected an integer, got {seed!r}", data)
    rate = parser.number(raw.get("rate"), join(path, "rate"), data, default=DEFAULT_RATE)
    if rate > 1:
        parser.fail(join(path, "rate"), f"expected a share of calls from 0 to 1, got {rate!r}", data)
    kinds = _names(parser, raw.get("kinds"), join(path, "kinds"), data, KINDS) or KINDS
    chosen_methods = _names(parser, raw.get("methods"), join(path, "methods"), data, methods)
    return ChaosSettings(
        seed=seed,
        rate=rate,
        kinds=kinds,
        methods=chosen_methods,
        stall_seconds=parser.number(
            raw.get("stall_seconds"), join(path, "stall_seconds"), data, default=DEFAULT_STALL_SECONDS
        ),
        quota_seconds=parser.number(
            raw.get("quota_seconds"), join(path, "quota_seconds"), data, default=DEFAULT_QUOTA_SECONDS
        ),
    )


def _names(parser: FieldParser, value: Any, path: str, node: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = []
    for i, item in enumerate(parser.seq(value, path, node)):
        if not isinstance(item, str) or item not in allowed:
            parser.fail(f"{path}[{i}]", f"expected one of {', '.join(allowed)}, got {item!r}", node)
        if item in names:
            parser.fail(f"{path}[{i}]", f"{item!r} is listed twice", node)
        names.append(item)
    return tuple(names)
