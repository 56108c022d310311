"""Identity data of a scenario: service accounts with roles and authorized keys, and the tokens the
emulated IAM accepts (OAuth tokens, pre-issued IAM tokens, federation subject tokens, the VM metadata
service's account, GitHub Actions' OIDC endpoint). Format (all top-level keys, all optional)::

    token_lifetime: 43200            # seconds every issued IAM token lives (small values test refresh)
    service_accounts:
      - id: ajesa0000000000000001
        roles: [container-registry.images.scanner]
        key_id: ajekey000000000000001      # an authorized key: JWTs with this kid ...
        public_key: "-----BEGIN PUBLIC KEY-----..."   # ... must be signed by its private key (PS256)
    oauth_tokens: [{token: y0_xxx, service_account_id: ajesa0000000000000001}]
    iam_tokens: [{token: t1.xxx, service_account_id: ajesa0000000000000001}]
    federation:
      subject_tokens: [{token: <OIDC JWT>, service_account_id: ajesa0000000000000001}]
      github: {request_token: <ACTIONS_ID_TOKEN_REQUEST_TOKEN>, id_token: <what GitHub answers>}
    metadata: {service_account_id: ajesa0000000000000001}   # the VM's service account

The emulator models every identity, users included, as a service account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCANNER_ROLE = "container-registry.images.scanner"
IDENTITY_KEYS = ("token_lifetime", "service_accounts", "oauth_tokens", "iam_tokens", "federation", "metadata")
DEFAULT_TOKEN_LIFETIME = 43200.0


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    roles: tuple[str, ...] = ()
    key_id: str | None = None
    public_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TokenGrant:
    """A configured token and the service account it stands for."""

    token: str = field(repr=False)
    service_account_id: str = ""


@dataclass(frozen=True)
class GitHubOidc:
    """The emulated GitHub Actions OIDC endpoint: answers ``id_token`` to ``bearer request_token``."""

    request_token: str = field(repr=False)
    id_token: str = field(repr=False)


@dataclass(frozen=True)
class Identities:
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME
    service_accounts: tuple[ServiceAccount, ...] = ()
    oauth_tokens: tuple[TokenGrant, ...] = ()
    iam_tokens: tuple[TokenGrant, ...] = ()
    subject_tokens: tuple[TokenGrant, ...] = ()
    github: GitHubOidc | None = None
    metadata_service_account: str | None = None

    @property
    def needs_http(self) -> bool:
        """Whether the HTTP endpoints (token exchange, metadata, GitHub OIDC) have anything to serve."""
        return bool(self.subject_tokens or self.github or self.metadata_service_account)

    def account(self, account_id: str) -> ServiceAccount | None:
        return next((sa for sa in self.service_accounts if sa.id == account_id), None)


def parse_identities(parser: Any, raw: dict[str, Any], node: Any) -> Identities:
    """Parse the identity keys of a scenario with the scenario parser's helpers (same error style)."""
    accounts = tuple(
        _account(parser, item, f"service_accounts[{i}]")
        for i, item in enumerate(parser.seq(raw.get("service_accounts"), "service_accounts", node))
    )
    ids = [sa.id for sa in accounts]
    for i, account_id in enumerate(ids):
        if account_id in ids[:i]:
            parser.fail(f"service_accounts[{i}].id", f"duplicate service account {account_id!r}", node)
    key_ids = [sa.key_id for sa in accounts if sa.key_id]
    if len(set(key_ids)) != len(key_ids):
        parser.fail("service_accounts", "duplicate key_id", node)

    def grants(value: Any, path: str) -> tuple[TokenGrant, ...]:
        result = []
        for i, item in enumerate(parser.seq(value, path, node)):
            entry = parser.mapping(
                item, f"{path}[{i}]", ("token", "service_account_id"), ("token", "service_account_id")
            )
            token = parser.string(entry["token"], f"{path}[{i}].token", item)
            account_id = parser.string(entry["service_account_id"], f"{path}[{i}].service_account_id", item)
            if account_id not in ids:
                parser.fail(f"{path}[{i}].service_account_id", f"no service account {account_id!r}", item)
            result.append(TokenGrant(token, account_id))
        return tuple(result)

    subject_tokens: tuple[TokenGrant, ...] = ()
    github = None
    if raw.get("federation") is not None:
        fed = parser.mapping(raw["federation"], "federation", ("subject_tokens", "github"))
        subject_tokens = grants(fed.get("subject_tokens"), "federation.subject_tokens")
        if fed.get("github") is not None:
            gh = parser.mapping(
                fed["github"], "federation.github", ("request_token", "id_token"), ("request_token", "id_token")
            )
            github = GitHubOidc(
                request_token=parser.string(gh["request_token"], "federation.github.request_token", fed),
                id_token=parser.string(gh["id_token"], "federation.github.id_token", fed),
            )
    metadata_account = None
    if raw.get("metadata") is not None:
        meta = parser.mapping(raw["metadata"], "metadata", ("service_account_id",), ("service_account_id",))
        metadata_account = parser.string(meta["service_account_id"], "metadata.service_account_id", node)
        if metadata_account not in ids:
            parser.fail("metadata.service_account_id", f"no service account {metadata_account!r}", node)
    return Identities(
        token_lifetime=parser.number(
            raw.get("token_lifetime"), "token_lifetime", node, default=DEFAULT_TOKEN_LIFETIME, minimum=0.1
        ),
        service_accounts=accounts,
        oauth_tokens=grants(raw.get("oauth_tokens"), "oauth_tokens"),
        iam_tokens=grants(raw.get("iam_tokens"), "iam_tokens"),
        subject_tokens=subject_tokens,
        github=github,
        metadata_service_account=metadata_account,
    )


def _account(parser: Any, data: Any, path: str) -> ServiceAccount:
    from cryptography.hazmat.primitives import serialization

    raw = parser.mapping(data, path, ("id", "roles", "key_id", "public_key"), ("id",))
    roles = tuple(
        parser.string(role, f"{path}.roles[{i}]", data)
        for i, role in enumerate(parser.seq(raw.get("roles"), f"{path}.roles", data))
    )
    key_id = None if raw.get("key_id") is None else parser.string(raw["key_id"], f"{path}.key_id", data)
    public_key = None if raw.get("public_key") is None else parser.string(raw["public_key"], f"{path}.public_key", data)
    if (key_id is None) != (public_key is None):
        parser.fail(path, "key_id and public_key go together", data)
    if public_key is not None:
        try:
            serialization.load_pem_public_key(public_key.encode())
        except (ValueError, UnicodeError):
            parser.fail(f"{path}.public_key", "not a PEM public key (-----BEGIN PUBLIC KEY-----)", data)
    return ServiceAccount(
        id=parser.string(raw["id"], f"{path}.id", data), roles=roles, key_id=key_id, public_key=public_key
    )
