"""The emulated IAM: verifies service-account JWTs and configured tokens, issues short-lived IAM tokens,
and decides whether a bearer token may call a method (UNAUTHENTICATED / PERMISSION_DENIED)."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from crgate.regions import MAIN
from crgate_emulator.identities import SCANNER_ROLE, Identities
from crgate_emulator.rpc import GrpcAbort

IAM_AUDIENCE = MAIN.iam_audience  # the default; an emulated Kazakhstan cloud wants KAZAKHSTAN.iam_audience
MAX_JWT_LIFETIME = 3600
# Roles that allow listing images; scanning and following scan operations need the scanner role.
LIST_ROLES = frozenset({SCANNER_ROLE, "container-registry.images.puller", "container-registry.viewer", "viewer"})
SCAN_ROLES = frozenset({SCANNER_ROLE, "container-registry.admin", "editor", "admin"})
LIST_METHODS = frozenset({"ImageService.List", "ImageService.Get", "ScanPolicyService.GetByRegistry"})


class ExchangeRefused(Exception):
    """An OAuth-style refusal of the HTTP token exchange: HTTP status, ``error`` and description."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class Authority:
    """Thread-safe token bookkeeping for one emulator."""

    def __init__(
        self,
        identities: Identities,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        audience: str = IAM_AUDIENCE,
    ):
        self.identities = identities
        self.audience = audience
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[str, float]] = {}  # token -> (service account id, expiry on clock())
        self._revoked: set[str] = set()
        self._keys = {sa.key_id: sa for sa in identities.service_accounts if sa.key_id}

    # -- issuing

    def issue(self, account_id: str) -> tuple[str, dt.datetime, float]:
        """A new IAM token for ``account_id``: (token, wall-clock expiry, lifetime in seconds)."""
        lifetime = self.identities.token_lifetime
        token = "t1.emu." + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = (account_id, self._clock() + lifetime)
        return token, self._wall() + dt.timedelta(seconds=lifetime), lifetime

    def account_of_jwt(self, token: str) -> str:
        """The service account whose authorized key signed this JWT (PS256, kid, iss, aud, iat, exp).

        ``aud`` must be this IAM's own token URL (the emulated region's), as Yandex's IAM requires.
        """
        import jwt
        from cryptography.hazmat.primitives import serialization

        def reject(why: str) -> GrpcAbort:
            return GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, f"Invalid JWT: {why}")

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise reject("not a JWT") from None
        if header.get("alg") != "PS256":
            raise reject("alg must be PS256")
        account = self._keys.get(str(header.get("kid") or ""))
        if account is None or account.public_key is None:
            raise reject("unknown key id (kid)")
        public_key: Any = serialization.load_pem_public_key(account.public_key.encode())
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["PS256"],
                audience=self.audience,
                issuer=account.id,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise reject("expired") from None
        except jwt.InvalidSignatureError:
            raise reject("signature verification failed") from None
        except jwt.InvalidAudienceError:
            raise reject(f"aud must be {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise reject("iss is not the service account of the key") from None
        except jwt.PyJWTError as error:
            raise reject(str(error)) from None
        if not 0 < claims["exp"] - claims["iat"] <= MAX_JWT_LIFETIME:
            raise reject(f"exp - iat must be in (0, {MAX_JWT_LIFETIME}]")
        return account.id

    def account_of_oauth(self, token: str) -> str:
        grant = next((g for g in self.identities.oauth_tokens if secrets.compare_digest(g.token, token)), None)
        if grant is None:
            raise GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, "Invalid OAuth token")
        return grant.service_account_id

    def account_of_subject_token(self, token: str, audience: str) -> str:
        """Workload identity federation: the subject token must be configured for the audience account."""
        if self.identities.account(audience) is None:
            raise ExchangeRefused(400, "invalid_target", f"service account {audience} not found")
        for grant in self.identities.subject_tokens:
            if secrets.compare_digest(grant.token, token):
                if grant.service_account_id != audience:
                    raise ExchangeRefused(
                        400, "invalid_grant", "no federated credential links this subject to the service account"
                    )
                return audience
        raise ExchangeRefused(400, "invalid_grant", "subject token is not trusted by any federation")

    def revoke(self, authorization: str) -> bool:
        """Revoke the bearer token of an ``authorization`` header for good (as when its key is deleted or
        the account is disabled); False when the header holds none."""
        token = _bearer(authorization)
        if token is None:
            return False
        with self._lock:
            self._revoked.add(token)
        return True

    # -- checking

    def identify(self, authorization: str) -> str:
        """The service account behind an ``authorization`` header; UNAUTHENTICATED otherwise."""
        token = _bearer(authorization)
        if token is None:
            raise GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, "The token is missing")
        with self._lock:
            revoked = token in self._revoked
        if revoked:
            raise GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, "The token has been revoked")
        for grant in self.identities.iam_tokens:
            if secrets.compare_digest(grant.token, token):
                return grant.service_account_id
        with self._lock:
            issued = self._issued.get(token)
            now = self._clock()
        if issued is None:
            raise GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, "The token is invalid")
        if now >= issued[1]:
            raise GrpcAbort(grpc.StatusCode.UNAUTHENTICATED, "The token has expired")
        return issued[0]

    def authorize(self, method: str, authorization: str) -> str:
        """Identify the caller and check its roles for ``method``."""
        account_id = self.identify(authorization)
        account = self.identities.account(account_id)
        roles = set(account.roles) if account else set()
        needed = LIST_ROLES if method in LIST_METHODS else SCAN_ROLES
        if not roles & needed:
            raise GrpcAbort(grpc.StatusCode.PERMISSION_DENIED, "Permission denied")
        return account_id


def _bearer(authorization: str) -> str | None:
    """The token of a ``Bearer <token>`` header, or None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
