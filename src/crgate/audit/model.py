"""The audit's plain data: what it looks at (``AuditItem``), what it found (``AuditEntry``), the whole run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from crgate.exitcodes import ExitCode, worst
from crgate.model import ImageOutcome, Policy, Verdict, Word
from crgate.provenance import Loosening

DEFAULT_MAX_AGE = dt.timedelta(days=7)
"""Yandex Cloud's security standard (APPSEC4): every image scanned in the last 7 days."""


class AuditState(Word):
    """What the audit found for one image; ``PRECEDENCE`` orders them, the worst first."""

    ERROR = "error"
    NEVER_SCANNED = "never_scanned"
    FAILING = "failing"
    STALE = "stale"
    FRESH = "fresh"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PASS if self is AuditState.FRESH else ExitCode.VIOLATION


PRECEDENCE: tuple[AuditState, ...] = tuple(AuditState)


@dataclass(frozen=True)
class AuditItem:
    """One image to audit: listed by the image service, or resolved from a reference or a manifest."""

    ref: str
    image_id: str | None
    digest: str | None = None
    created_at: dt.datetime | None = None
    failure: BaseException | None = None
    """Why it cannot be audited, found while selecting (the entry becomes an error)."""
    listed: bool = False
    """An image of a listing: without a READY result it may be an index (or an artifact), read from the
    registry to tell."""


@dataclass(frozen=True)
class AuditEntry:
    """The audit's finding for one image."""

    ref: str
    image_id: str | None
    digest: str | None
    state: AuditState
    scan_result_id: str | None = None
    scanned_at: dt.datetime | None = None
    age_seconds: float | None = None
    outcome: ImageOutcome | None = None
    """The judgement of its last READY result (or of its new scan); None when it has none."""
    error_exit: ExitCode | None = None
    """For ``error``: exit 3 (API) or 4 (timeout)."""
    notes: tuple[str, ...] = ()
    rescanned: bool = False

    @property
    def verdict(self) -> Verdict | None:
        """The policy's verdict on its last READY result; ``error`` for an error; None when never scanned."""
        if self.state is AuditState.ERROR:
            return Verdict.ERROR
        return self.outcome.verdict if self.outcome is not None else None

    @property
    def exit_code(self) -> ExitCode:
        if self.state is AuditState.ERROR:
            return self.error_exit or ExitCode.SCAN_ERROR
        return self.state.exit_code


@dataclass(frozen=True)
class AuditReport:
    """The whole audit: what every audit format renders."""

    policy: Policy
    entries: tuple[AuditEntry, ...]
    max_age: dt.timedelta
    started_at: dt.datetime
    finished_at: dt.datetime
    tool_version: str
    scans_started: int = 0
    scopes: tuple[str, ...] = ()
    """What was audited, for people: ``registry crp...``, ``3 reference(s)``."""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    interrupted: bool = False
    loosenings: tuple[Loosening, ...] = ()
    """What made this audit weaker than its policy file (``crgate.provenance``), as ``check`` reports them."""
    unscannable: tuple[str, ...] = ()
    """Images the manifests name outside Yandex Container Registry (``image (where)``): the policy's
    ``unscannable`` decides (``fail`` makes them a finding)."""

    @property
    def exit_code(self) -> ExitCode:
        """The worst entry's code (errors outrank findings); 130 when interrupted."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        codes = [entry.exit_code for entry in self.entries]
        if self.unscannable and self.policy.unscannable not in ("warn", "skip"):
            codes.append(ExitCode.VIOLATION)
        return worst(codes)

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.exit_code)

    def counts(self) -> dict[str, int]:
        """Images per state, every state included, in precedence order."""
        return {str(state): sum(1 for e in self.entries if e.state is state) for state in PRECEDENCE}
