"""Keeping obtained tokens out of every output: GitHub Actions masking and a redacting log filter.

``SecretMasker`` is the ``TokenObserver`` the CLI hands to credential sources. For every new token it
(1) on GitHub Actions prints ``::add-mask::<token>`` on stderr (the runner reads workflow commands on
both streams; stdout stays clean for ``--format json``) before anything else can print it, and
(2) remembers it so that ``redact`` and the log filter replace it with ``***`` should it ever appear.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

MASK = "***"


class SecretMasker:
    """Observer of obtained tokens; thread-safe."""

    def __init__(self, env: Mapping[str, str], write: Callable[[str], None]):
        self.github = env.get("GITHUB_ACTIONS") == "true"
        self._write = write
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, secret: str) -> None:
        with self._lock:
            if not secret or secret in self._secrets:
                return
            self._secrets.add(secret)
            if self.github:
                self._write(f"::add-mask::{secret}")

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def log_filter(self) -> logging.Filter:
        """A filter that redacts log records before any handler formats them."""
        masker = self

        class _Redact(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                message = record.getMessage()
                redacted = masker.redact(message)
                if redacted != message:
                    record.msg, record.args = redacted, ()
                return True

        return _Redact()
