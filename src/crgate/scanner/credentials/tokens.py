"""Bearer tokens and the one interface every credential source implements: ``TokenSource``."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("crgate.credentials")

TokenObserver = Callable[[str], None]
"""Called with every token crgate obtains, before it is used (GitHub Actions masking, log redaction)."""

# Refresh after this share of a token's lifetime, and at the latest after an hour (Yandex's advice for
# IAM tokens, which live up to 12 h): a long scan never runs into an expired token.
REFRESH_FRACTION = 0.8
MAX_REFRESH_AFTER = 3600.0
# A token that claims to be already expired (clock skew) is used, but refreshed at the next call after this.
MIN_LIFETIME = 1.0


@dataclass(frozen=True)
class Token:
    """A bearer token and how long it lives from now (``None``: unknown, never refreshed proactively)."""

    value: str = field(repr=False)
    lifetime: float | None = None

    def __repr__(self) -> str:
        return f"Token(value=<redacted>, lifetime={self.lifetime})"


class TokenSource(ABC):
    """Where a run's bearer tokens come from. Thread-safe; ``description`` never holds a secret."""

    description: str

    @abstractmethod
    def token(self) -> str:
        """A token valid for at least a few more seconds (obtaining a new one when needed)."""

    def invalidate(self, token: str) -> bool:
        """The server rejected ``token``: forget it. True when a call may be retried with a fresh one."""
        return False


class TokenFetcher(Protocol):
    """Obtains one new token from a credential (a key, an OIDC token, the metadata service, ...)."""

    description: str

    def fetch(self) -> Token: ...


class StaticTokenSource(TokenSource):
    """A token given as is (``--iam-token``): used until the server rejects it, never refreshed."""

    def __init__(self, value: str, description: str, observer: TokenObserver | None = None):
        self.description = description
        self._value = value
        self._observed = False
        self._observer = observer
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if not self._observed and self._observer is not None:
                self._observer(self._value)
            self._observed = True
            return self._value

    def __repr__(self) -> str:
        return f"StaticTokenSource({self.description!r})"


class RefreshingTokenSource(TokenSource):
    """Caches the token of a ``TokenFetcher`` and fetches a new one before the old one expires.

    One lock serialises fetching, so concurrent workers that need a fresh token cause a single exchange.
    """

    def __init__(
        self,
        fetcher: TokenFetcher,
        observer: TokenObserver | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.description = fetcher.description
        self._fetcher = fetcher
        self._observer = observer
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._refresh_at = 0.0

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._value is None or now >= self._refresh_at:
                if self._value is not None:
                    log.info("refreshing the token (%s) before it expires", self.description)
                fresh = self._fetcher.fetch()
                if self._observer is not None:
                    self._observer(fresh.value)
                self._value = fresh.value
                self._refresh_at = self._clock() + refresh_after(fresh.lifetime)
                log.debug("obtained a token (%s), lifetime %s", self.description, _seconds(fresh.lifetime))
            return self._value

    def invalidate(self, token: str) -> bool:
        with self._lock:
            if self._value == token:
                self._value = None
        return True

    def __repr__(self) -> str:
        return f"RefreshingTokenSource({self.description!r})"


def refresh_after(lifetime: float | None) -> float:
    """Seconds after obtaining a token with ``lifetime`` at which crgate obtains the next one."""
    if lifetime is None:
        return MAX_REFRESH_AFTER
    if lifetime < MIN_LIFETIME:
        log.warning("a token arrived with a lifetime of %.1fs (clock skew?); it will be refreshed soon", lifetime)
        lifetime = MIN_LIFETIME
    return min(lifetime * REFRESH_FRACTION, MAX_REFRESH_AFTER)


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f}s"
