"""Which credential source a run uses, decided from flags and environment before any network call.

Rules (README "Use with Yandex Cloud" has the table):
- a flag beats an environment variable; the same source given by its flag and its variable is fine;
- two different sources given by flags, or (without a flag) by variables, are a conflict: exit 2;
- nothing given: against loopback (an emulator) no credentials, unless ``YC_METADATA_ADDR`` is set;
  elsewhere the VM metadata service is probed briefly, and if it does not answer, exit 2 listing options.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from crgate.errors import ConfigError, CrgateError
from crgate.regions import AUTH_HOSTS, refuse_foreign_override
from crgate.scanner.credentials.http import HttpClient, check_url, safe_url
from crgate.scanner.credentials.oidc import subject_token_provider
from crgate.scanner.credentials.sakey import IAM_TOKEN_AUDIENCE, key_file_warning, load_service_account_key
from crgate.scanner.credentials.sources import (
    DEFAULT_METADATA_ADDR,
    DEFAULT_TOKEN_ENDPOINT,
    FederationFetcher,
    IamExchange,
    MetadataFetcher,
    OAuthFetcher,
    ServiceAccountKeyFetcher,
)
from crgate.scanner.credentials.tokens import (
    RefreshingTokenSource,
    StaticTokenSource,
    TokenObserver,
    TokenSource,
)
from crgate.textsafe import safe
from crgate.timing import Deadline

log = logging.getLogger("crgate.credentials")

ENV_IAM_TOKEN = "YC_IAM_TOKEN"
ENV_SA_KEY = "YC_SERVICE_ACCOUNT_KEY_FILE"
ENV_SA_ID = "YC_SA_ID"
ENV_TOKEN = "YC_TOKEN"
ENV_METADATA_ADDR = "YC_METADATA_ADDR"
ENV_TOKEN_ENDPOINT = "YC_TOKEN_ENDPOINT"
IAM_TOKEN_PREFIX = "t1."

# (kind, flag, environment variable), in the documented order.
SOURCES: tuple[tuple[str, str | None, str | None], ...] = (
    ("iam-token", "--iam-token", ENV_IAM_TOKEN),
    ("sa-key", "--sa-key", ENV_SA_KEY),
    ("federation", "--federation-sa-id", ENV_SA_ID),
    ("yc-token", None, ENV_TOKEN),
    ("metadata", "--metadata", None),
)

NO_CREDENTIALS_HELP = (
    "give one of:\n"
    "  --iam-token TOKEN or YC_IAM_TOKEN            an IAM token (yc iam create-token)\n"
    "  --sa-key FILE|JSON or YC_SERVICE_ACCOUNT_KEY_FILE\n"
    "                                               a service account key (yc iam key create --output key.json)\n"
    "  --federation-sa-id ID or YC_SA_ID            keyless CI: workload identity federation (GitHub, GitLab)\n"
    "  YC_TOKEN                                     an IAM token, or a (deprecated) OAuth token\n"
    "  --metadata                                   the service account of this Yandex Cloud VM\n"
    "or check against a local emulator: --emulator, or --endpoint HOST:PORT --insecure"
)


@dataclass(frozen=True)
class CredentialOptions:
    """The credential flags of a command (environment variables are read separately)."""

    iam_token: str | None = field(default=None, repr=False)
    sa_key: str | None = field(default=None, repr=False)  # a path, or inline JSON holding the key
    federation_sa_id: str | None = None
    oidc_token_env: str | None = None
    oidc_audience: str | None = None
    token_endpoint: str | None = None
    metadata: bool = False

    def flag_values(self) -> dict[str, str | None]:
        return {
            "iam-token": self.iam_token,
            "sa-key": self.sa_key,
            "federation": self.federation_sa_id,
            "metadata": "on" if self.metadata else None,
        }


@dataclass(frozen=True)
class Candidate:
    """A credential source the user gave: which kind, by which flag or variable, and its value."""

    kind: str
    origin: str
    value: str = field(repr=False)
    from_flag: bool


@dataclass(frozen=True)
class CredentialChoice:
    """The source a run will use (``None``: no explicit one) and what to do without one."""

    candidate: Candidate | None
    probe_metadata: bool = False
    ignored: tuple[str, ...] = ()
    empty_variables: tuple[str, ...] = ()

    def describe(self) -> str:
        """The chosen source for humans, never its value."""
        if self.candidate is not None:
            return f"{self.candidate.kind} from {self.candidate.origin}"
        if self.probe_metadata:
            return "none given; trying the VM metadata service"
        return "none (loopback endpoint: calls carry no token)"


def choose_credentials(options: CredentialOptions, env: Mapping[str, str], *, loopback: bool) -> CredentialChoice:
    """Pick the credential source; ConfigError (exit 2) naming both sides of a conflict."""
    flags: list[Candidate] = []
    variables: list[Candidate] = []
    empty: list[str] = []
    values = options.flag_values()
    for kind, flag, variable in SOURCES:
        flag_value = values.get(kind)
        if flag and flag_value is not None:
            if not flag_value.strip():
                raise ConfigError(f"{flag} is empty")
            flags.append(Candidate(kind, flag, flag_value, True))
        if variable and variable in env:
            if env[variable].strip():
                variables.append(Candidate(kind, variable, env[variable], False))
            else:
                empty.append(variable)
    for extra, flag in ((options.oidc_token_env, "--oidc-token-env"), (options.oidc_audience, "--oidc-audience")):
        if extra is not None and not any(c.kind == "federation" for c in flags + variables):
            raise ConfigError(f"{flag} only applies to workload identity federation (--federation-sa-id or YC_SA_ID)")
    pool = flags or variables
    kinds = {c.kind for c in pool}
    if len(kinds) > 1:
        first, second = pool[0], next(c for c in pool if c.kind != pool[0].kind)
        how = "flags" if flags else "environment variables"
        raise ConfigError(
            f"conflicting credentials: {first.origin} and {second.origin} both given (as {how}); "
            + (
                "pass only one of them"
                if flags
                else "unset one, or choose one with its flag (a flag beats the environment)"
            )
        )
    if pool:
        chosen = next((c for c in pool if c.from_flag), pool[0])
        if chosen.kind == "federation":
            token_endpoint(options, env)  # refused here, before any network call
        ignored = tuple(c.origin for c in variables if flags and c.kind != chosen.kind)
        for origin in ignored:
            log.info("ignoring %s: %s chooses the credentials", origin, chosen.origin)
        return CredentialChoice(chosen, ignored=ignored, empty_variables=tuple(empty))
    probe = not loopback or bool(env.get(ENV_METADATA_ADDR, "").strip())
    return CredentialChoice(None, probe_metadata=probe, empty_variables=tuple(empty))


def build_token_source(
    choice: CredentialChoice,
    options: CredentialOptions,
    env: Mapping[str, str],
    *,
    iam: IamExchange,
    http: HttpClient,
    deadline: Deadline,
    observer: TokenObserver | None = None,
    target: str = "Yandex Cloud",
    iam_audience: str = IAM_TOKEN_AUDIENCE,
) -> TokenSource | None:
    """The ``TokenSource`` for ``choice`` (no network yet, except the metadata probe); None = no credentials.

    ``iam_audience`` is the ``aud`` of service-account JWTs: the region's IAM token URL.
    """
    candidate = choice.candidate
    if candidate is None:
        if not choice.probe_metadata:
            return None
        return _probe_metadata(choice, env, http, deadline, observer, target)
    kind, origin = candidate.kind, candidate.origin
    if kind == "iam-token":
        return StaticTokenSource(_token_text(candidate.value, origin), f"IAM token from {origin}", observer)
    if kind == "sa-key":
        key = load_service_account_key(candidate.value, origin)
        log.debug("service account JWTs name the audience %s", iam_audience)
        return RefreshingTokenSource(ServiceAccountKeyFetcher(key, iam, iam_audience), observer)
    if kind == "federation":
        sa_id = candidate.value.strip()
        if any(ch.isspace() or not ch.isprintable() for ch in sa_id) or len(sa_id) > 50:
            raise ConfigError(f"{origin}: '{safe(sa_id, 60)}' is not a service account id")
        url = token_endpoint(options, env)
        subject = subject_token_provider(
            env,
            token_env=options.oidc_token_env,
            audience=options.oidc_audience,
            http=http,
            deadline=deadline,
            observer=observer,
        )
        return RefreshingTokenSource(FederationFetcher(sa_id, origin, subject, url, http, deadline), observer)
    if kind == "yc-token":
        value = _token_text(candidate.value, origin)
        if value.startswith(IAM_TOKEN_PREFIX):
            return StaticTokenSource(value, f"IAM token from {origin}", observer)
        return RefreshingTokenSource(OAuthFetcher(value, origin, iam), observer)
    if kind == "metadata":
        return RefreshingTokenSource(MetadataFetcher(_metadata_addr(env), origin, http, deadline), observer)
    raise AssertionError(f"unknown credential kind {kind}")


def token_endpoint(options: CredentialOptions, env: Mapping[str, str]) -> str:
    """Where federation exchanges the job's OIDC token: ``--token-endpoint``, else ``YC_TOKEN_ENDPOINT``
    (only Yandex's own token host: the endpoint receives the OIDC token), else Yandex's documented one."""
    if options.token_endpoint:
        return check_url(options.token_endpoint, "--token-endpoint")
    url = env.get(ENV_TOKEN_ENDPOINT, "").strip()
    if not url:
        return DEFAULT_TOKEN_ENDPOINT
    check_url(url, ENV_TOKEN_ENDPOINT)
    refuse_foreign_override(
        urllib.parse.urlsplit(url).hostname or "",
        safe_url(url),
        variable=ENV_TOKEN_ENDPOINT,
        flag="--token-endpoint",
        known=AUTH_HOSTS,
        what="Yandex's token service",
    )
    return url


def credential_notes(choice: CredentialChoice) -> list[str]:
    """Warnings a user should read about the chosen source (printed after any token is masked)."""
    notes = []
    candidate = choice.candidate
    if (
        candidate is not None
        and candidate.kind == "yc-token"
        and not candidate.value.strip().startswith(IAM_TOKEN_PREFIX)
    ):
        notes.append(
            f"{candidate.origin} holds an OAuth token; Yandex is retiring OAuth tokens for API access: switch to "
            "a service account key (--sa-key) or workload identity federation (--federation-sa-id)"
        )
    if candidate is not None and candidate.kind == "sa-key":
        warning = key_file_warning(candidate.value, candidate.origin)
        if warning:
            notes.append(warning)
    notes += [f"{origin} is ignored: a flag chose the credentials" for origin in choice.ignored]
    return notes


def _probe_metadata(
    choice: CredentialChoice,
    env: Mapping[str, str],
    http: HttpClient,
    deadline: Deadline,
    observer: TokenObserver | None,
    target: str,
) -> TokenSource:
    fetcher = MetadataFetcher(_metadata_addr(env), "no other credentials given", http, deadline, probe=True)
    source = RefreshingTokenSource(fetcher, observer)
    try:
        source.token()
    except CrgateError as error:
        notes = [f"the VM metadata service at {fetcher.address} did not give a token either ({_first(error)})"]
        notes += [f"{name} is set but empty (a missing CI secret?)" for name in choice.empty_variables]
        raise ConfigError(f"no credentials for {target}; " + "; ".join(notes) + ".\n" + NO_CREDENTIALS_HELP) from None
    fetcher.end_probe()
    log.info("using the VM metadata service at %s (no other credentials given)", fetcher.address)
    return source


def _metadata_addr(env: Mapping[str, str]) -> str:
    address = env.get(ENV_METADATA_ADDR, "").strip() or DEFAULT_METADATA_ADDR
    if "/" in address or any(ch.isspace() or not ch.isprintable() for ch in address):
        raise ConfigError(f"{ENV_METADATA_ADDR}: '{safe(address, 200)}' is not HOST[:PORT]")
    return address


def _token_text(value: str, origin: str) -> str:
    token = value.strip()
    if not token:
        raise ConfigError(f"{origin} is empty")
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in token):
        raise ConfigError(f"{origin} does not hold a token (it contains whitespace, control or non-ASCII characters)")
    return token


def _first(error: CrgateError) -> str:
    return str(error).split(". ", 1)[0]
