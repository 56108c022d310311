"""The credential sources that need an exchange: service account key, OAuth token, workload identity
federation and the VM metadata service. Each is a ``TokenFetcher``; ``RefreshingTokenSource`` caches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from crgate.errors import ScanTimeoutError
from crgate.scanner.credentials.http import HttpClient, HttpFailure, lifetime_of, require_str, safe_url
from crgate.scanner.credentials.sakey import IAM_TOKEN_AUDIENCE, ServiceAccountKey
from crgate.scanner.credentials.tokens import Token
from crgate.timing import Deadline

log = logging.getLogger("crgate.credentials")

DEFAULT_TOKEN_ENDPOINT = "https://auth.yandex.cloud/oauth/token"
DEFAULT_METADATA_ADDR = "169.254.169.254"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
HTTP_TIMEOUT = 20.0
# GitHub's default OIDC subject names the repository; for repositories created (or renamed, transferred)
# after 2026-06-18, and those that opted in, it carries immutable ids: repo:OWNER@<owner-id>/REPO@<repo-id>.
FEDERATION_HINT = (
    "Check that a federated credential links this service account to the federation with the job's exact "
    "subject (on GitHub repo:ORG/REPO:ref:refs/heads/main, or repo:ORG@<owner-id>/REPO@<repo-id>:ref:refs/heads/main "
    "for repositories created after 2026-06-18; on GitLab project_path:GROUP/PROJECT:ref_type:branch:ref:main) "
    "and that the federation lists the token's issuer and audience"
)
HTTP_ATTEMPTS = 3
PROBE_TIMEOUT = 1.0


class IamExchange(Protocol):
    """``IamTokenService.Create`` (implemented over gRPC in ``crgate.scanner.iam``)."""

    def from_jwt(self, jwt: str, what: str) -> Token: ...

    def from_oauth(self, oauth_token: str, what: str) -> Token: ...


class SubjectTokenProvider(Protocol):
    """An OIDC token of the CI job (GitHub Actions, GitLab ``id_tokens``) for the federation exchange."""

    description: str

    def subject_token(self) -> str: ...


class ServiceAccountKeyFetcher:
    """A PS256 JWT signed with an authorized key, exchanged for an IAM token.

    ``audience`` is the region's IAM token URL (``Region.iam_audience``): it names the real IAM service,
    so it does not change when the exchange itself goes to a proxy or an emulator.
    """

    def __init__(self, key: ServiceAccountKey, iam: IamExchange, audience: str = IAM_TOKEN_AUDIENCE):
        self.description = (
            f"service account key {key.key_id} of service account {key.service_account_id}, from {key.origin}"
        )
        self.audience = audience
        self._key = key
        self._iam = iam

    def fetch(self) -> Token:
        return self._iam.from_jwt(self._key.jwt(audience=self.audience), self.description)


class OAuthFetcher:
    """A Yandex OAuth token (``YC_TOKEN``), exchanged for an IAM token. Deprecated by Yandex."""

    def __init__(self, oauth_token: str, origin: str, iam: IamExchange):
        self.description = f"OAuth token from {origin} (deprecated)"
        self._oauth_token = oauth_token
        self._iam = iam

    def fetch(self) -> Token:
        return self._iam.from_oauth(self._oauth_token, self.description)


class FederationFetcher:
    """Workload identity federation: the job's OIDC token exchanged at the token endpoint (RFC 8693)."""

    def __init__(
        self,
        service_account_id: str,
        origin: str,
        subject: SubjectTokenProvider,
        token_url: str,
        http: HttpClient,
        deadline: Deadline,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.description = (
            f"workload identity federation for service account {service_account_id} ({origin}), "
            f"{subject.description}, exchanged at {safe_url(token_url)}"
        )
        self._service_account_id = service_account_id
        self._subject = subject
        self._url = token_url
        self._http = http
        self._deadline = deadline
        self._sleep = sleep

    def fetch(self) -> Token:
        subject_token = self._subject.subject_token()
        fields = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": self._service_account_id,
            "subject_token": subject_token,
            "subject_token_type": ID_TOKEN_TYPE,
        }
        context = f"could not exchange the OIDC token for an IAM token of service account {self._service_account_id}"
        try:
            answer = with_http_retries(
                lambda timeout: self._http.post_form(self._url, fields, timeout=timeout),
                self._deadline,
                self._sleep,
                what="the token exchange",
            )
        except HttpFailure as failure:
            hint = FEDERATION_HINT if failure.status in (400, 401, 403) else ""
            raise failure.to_scan_error(context, hint=hint) from None
        value = require_str(answer, "access_token", self._url, context)
        return Token(value, lifetime_of(answer))


class MetadataFetcher:
    """The token of the VM's service account from the metadata service (``Metadata-Flavor: Google``)."""

    def __init__(
        self,
        address: str,
        origin: str,
        http: HttpClient,
        deadline: Deadline,
        *,
        probe: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.address = address
        self.url = f"http://{address}{METADATA_TOKEN_PATH}"
        self.description = f"VM metadata service at {address} ({origin})"
        self._http = http
        self._deadline = deadline
        self._probe = probe
        self._sleep = sleep

    def fetch(self) -> Token:
        context = f"could not get a token from the VM metadata service at {self.address}"

        def get(timeout: float) -> dict:
            return self._http.get_json(
                self.url,
                headers={"Metadata-Flavor": "Google"},
                timeout=min(timeout, PROBE_TIMEOUT) if self._probe else timeout,
                use_proxy=False,  # link-local: never through a proxy
            )

        try:
            if self._probe:
                answer = get(PROBE_TIMEOUT)
            else:
                answer = with_http_retries(get, self._deadline, self._sleep, what="the metadata service")
        except HttpFailure as failure:
            hint = (
                "Is this a Yandex Cloud VM with a service account attached (yc compute instance update "
                "--service-account-id ...)? YC_METADATA_ADDR overrides the address"
            )
            raise failure.to_scan_error(context, hint=hint) from None
        value = require_str(answer, "access_token", self.url, context)
        return Token(value, lifetime_of(answer))

    def end_probe(self) -> None:
        """After a successful probe, later refreshes get normal timeouts and retries."""
        self._probe = False


def with_http_retries(
    request: Callable[[float], dict],
    deadline: Deadline,
    sleep: Callable[[float], None],
    *,
    what: str,
    attempts: int = HTTP_ATTEMPTS,
) -> dict:
    """``request(timeout)`` retried on unreachable, 429 and 5xx answers, inside the overall deadline."""
    delay = 0.5
    for attempt in range(1, attempts + 1):
        if deadline.expired():
            raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed before {what} answered")
        try:
            return request(deadline.call_timeout(HTTP_TIMEOUT))
        except HttpFailure as failure:
            if failure.timed_out and deadline.expired():
                raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed while {what} answered") from None
            transient = failure.status is None or failure.status == 429 or failure.status >= 500
            if not transient or attempt == attempts or delay >= deadline.remaining():
                raise
            log.info("%s failed (%s); retry %d in %.1fs", what, failure.status or "unreachable", attempt, delay)
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
