"""What the emulator saw, for tests to assert on. Updated under a lock; read freely."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class EmulatorStats:
    """Calls per ``Service.Method``, scans really started (and the most running at once), idempotency keys
    and metadata received."""

    calls: Counter[str] = field(default_factory=Counter)
    scans_started: int = 0
    max_concurrent_scans: int = 0
    idempotency_keys: list[str] = field(default_factory=list)
    request_metadata: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    """Error answers per ``Service.Method:CODE`` (e.g. ``ScannerService.Scan:UNAUTHENTICATED``)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_call(self, method: str, metadata: dict[str, str]) -> None:
        """One call of ``method`` with its invocation metadata (an ``idempotency-key`` is noted too)."""
        with self._lock:
            self.calls[method] += 1
            self.request_metadata.append((method, dict(metadata)))
            key = metadata.get("idempotency-key")
            if method == "ScannerService.Scan" and key is not None:
                self.idempotency_keys.append(key)

    def record_error(self, method: str, code: str) -> None:
        """An error answer with status ``code`` to a call of ``method``."""
        with self._lock:
            self.errors[f"{method}:{code}"] += 1

    def record_scan_started(self, running: int = 1) -> None:
        """A new scan; ``running`` scans (this one included) are RUNNING now."""
        with self._lock:
            self.scans_started += 1
            self.max_concurrent_scans = max(self.max_concurrent_scans, running)

    def metadata_of(self, method: str) -> list[dict[str, str]]:
        """Metadata of every call of ``method``, in arrival order."""
        with self._lock:
            return [md for name, md in self.request_metadata if name == method]
