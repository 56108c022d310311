"""The CI job's OIDC token for workload identity federation: GitHub Actions' token endpoint, or a variable
(GitLab's ``id_tokens:``, or anything else that can put a JWT into the environment)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from crgate.errors import ConfigError, ScanTimeoutError
from crgate.scanner.credentials.http import HttpClient, HttpFailure, check_url, require_str
from crgate.scanner.credentials.sources import HTTP_TIMEOUT, SubjectTokenProvider
from crgate.scanner.credentials.tokens import TokenObserver
from crgate.timing import Deadline

DEFAULT_OIDC_TOKEN_ENV = "YC_OIDC_TOKEN"
GITHUB_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
GITHUB_PERMISSION_HINT = (
    "GitHub Actions gives a job an OIDC token only with `permissions: id-token: write` in the workflow or job"
)


class EnvSubjectToken:
    """An OIDC token read once from an environment variable."""

    def __init__(self, name: str, value: str):
        self.description = f"OIDC token from ${name}"
        self._value = value

    def subject_token(self) -> str:
        return self._value


class GitHubSubjectToken:
    """A fresh OIDC token from GitHub Actions for every exchange (they live only minutes)."""

    description = "GitHub Actions OIDC token"

    def __init__(
        self,
        request_url: str,
        request_token: str,
        audience: str | None,
        http: HttpClient,
        deadline: Deadline,
        observer: TokenObserver | None = None,
    ):
        self._url = request_url
        if audience:
            separator = "&" if urllib.parse.urlsplit(request_url).query else "?"
            self._url += separator + urllib.parse.urlencode({"audience": audience})
        self._request_token = request_token
        self._http = http
        self._deadline = deadline
        self._observer = observer

    def subject_token(self) -> str:
        context = "could not get an OIDC token from GitHub Actions"
        try:
            answer = self._http.get_json(
                self._url,
                headers={"Authorization": f"bearer {self._request_token}"},
                timeout=self._deadline.call_timeout(HTTP_TIMEOUT),
            )
        except HttpFailure as failure:
            if failure.timed_out and self._deadline.expired():
                raise ScanTimeoutError(
                    f"the --timeout of {self._deadline.seconds:g}s passed while GitHub's OIDC endpoint answered"
                ) from None
            hint = GITHUB_PERMISSION_HINT if failure.status in (401, 403) else ""
            raise failure.to_scan_error(context, hint=hint) from None
        value = require_str(answer, "value", self._url, context)
        if self._observer is not None:
            self._observer(value)
        return value


def subject_token_provider(
    env: Mapping[str, str],
    *,
    token_env: str | None,
    audience: str | None,
    http: HttpClient,
    deadline: Deadline,
    observer: TokenObserver | None = None,
) -> SubjectTokenProvider:
    """Where this job's OIDC token comes from; ConfigError saying how to provide one when there is none."""
    name = token_env or DEFAULT_OIDC_TOKEN_ENV
    value = env.get(name, "").strip()
    if value:
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ConfigError(f"${name} does not hold a token (it contains whitespace or control characters)")
        return EnvSubjectToken(name, value)
    if token_env:
        state = "is empty" if name in env else "is not set"
        raise ConfigError(
            f"--oidc-token-env {name}: ${name} {state}; on GitLab declare it in the job: "
            f"id_tokens: {{{name}: {{aud: <federation audience>}}}}"
        )
    url, request_token = env.get(GITHUB_REQUEST_URL, ""), env.get(GITHUB_REQUEST_TOKEN, "")
    if url and request_token:
        check_url(url, GITHUB_REQUEST_URL)
        return GitHubSubjectToken(url, request_token, audience, http, deadline, observer)
    if env.get("GITHUB_ACTIONS") == "true" or url or request_token:
        raise ConfigError(
            f"workload identity federation: this GitHub Actions job has no OIDC token ({GITHUB_REQUEST_URL} "
            f"is not set). {GITHUB_PERMISSION_HINT}:\n  permissions:\n    id-token: write\n    contents: read"
        )
    raise ConfigError(
        "workload identity federation needs the CI job's OIDC token: on GitHub Actions add "
        f"`permissions: id-token: write`; on GitLab add `id_tokens: {{{DEFAULT_OIDC_TOKEN_ENV}: {{aud: ...}}}}` "
        "to the job; elsewhere put the token in a variable and name it with --oidc-token-env"
    )
