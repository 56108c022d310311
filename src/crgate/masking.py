"""Keeping obtained tokens out of every output: GitHub Actions masking and a redacting log filter.

``SecretMasker`` is the ``TokenObserver`` the CLI hands to credential sources. For every new token it
(1) on GitHub Actions prints ``::add-mask::<token>`` on stderr (the runner reads workflow commands on
both streams; stdout stays clean for ``--format json``) before anything else can print it, and
(2) remembers it so that ``redact`` and the log filter replace it with ``***`` should it ever appear.

Tokens come from servers (IAM, the VM metadata service, a federation endpoint), so the mask command
encodes its value the way the runner decodes it: a token holding a newline cannot end the command and
start another (``::stop-commands::`` would switch off every later mask and annotation). The log filter
also makes every record printable (``crgate.textsafe``): log arguments carry ids, URLs and messages
from servers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from crgate.textsafe import LINE_LIMIT, github_data, safe, safe_text

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
            # The token as crgate would print it, too: redact() and the runner must know both forms.
            forms = dict.fromkeys((secret, safe(secret, 10 * len(secret) + 3)))
            self._secrets.update(forms)
            if self.github:
                for form in forms:
                    self._write(f"::add-mask::{github_data(form)}")

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    def log_filter(self) -> logging.Filter:
        """A filter that redacts log records, then makes them printable, before any handler formats them."""
        return SafeRecords(self)


class SafeRecords(logging.Filter):
    """Log records made fit for a terminal or CI log: known secrets redacted (with a masker), then the
    message rendered as one printable line and any traceback line by line (``crgate.textsafe``)."""

    def __init__(self, masker: SecretMasker | None = None):
        super().__init__()
        self._masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in a log call must not hide the rest of the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = self._clean(message, LINE_LIMIT), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean_text(record.stack_info)
        return True

    def _clean(self, text: str, limit: int) -> str:
        return safe(self._masker.redact(text) if self._masker else text, limit)

    def _clean_text(self, text: str) -> str:
        return safe_text(self._masker.redact(text) if self._masker else text)
