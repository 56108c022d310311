"""Service-account authorized keys (``yc iam key create``): strict loading and the PS256 JWT they sign.

The key comes from a file path or inline JSON (as Terraform accepts in ``YC_SERVICE_ACCOUNT_KEY_FILE``).
Every error names where the key came from and what to do, and never quotes the key itself.
"""

from __future__ import annotations

import json
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crgate import inputs
from crgate.errors import ConfigError
from crgate.regions import MAIN
from crgate.textsafe import safe

# The main region's IAM token URL (https://iam.api.cloud.yandex.net/iam/v1/tokens); other regions have
# their own (crgate.regions.Region.iam_audience).
IAM_TOKEN_AUDIENCE = MAIN.iam_audience
JWT_LIFETIME = 600  # seconds; Yandex accepts at most 3600
KEY_WARNING_PREFIX = "PLEASE DO NOT REMOVE THIS LINE!"
REQUIRED_FIELDS = ("id", "service_account_id", "private_key")
_CREATE_HINT = "create one with: yc iam key create --service-account-id <id> --output key.json"


@dataclass(frozen=True)
class ServiceAccountKey:
    """An authorized key: its id (the JWT ``kid``), its service account, and the RSA private key."""

    key_id: str
    service_account_id: str
    origin: str
    private_key: Any = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"ServiceAccountKey(key_id={self.key_id!r}, service_account_id={self.service_account_id!r})"

    def jwt(self, now: float | None = None, audience: str = IAM_TOKEN_AUDIENCE) -> str:
        """A PS256 JWT for ``IamTokenService.Create``: kid = key id, iss = service account."""
        import jwt

        issued = int(time.time() if now is None else now)
        claims = {"iss": self.service_account_id, "aud": audience, "iat": issued, "exp": issued + JWT_LIFETIME}
        return jwt.encode(claims, self.private_key, algorithm="PS256", headers={"kid": self.key_id})


def load_service_account_key(value: str, option: str) -> ServiceAccountKey:
    """Load a key from ``value`` (a path, or inline JSON starting with ``{``) given by ``option``."""
    text = value.strip()
    if text.startswith("{"):
        origin = f"inline JSON of {option}"
        return parse_service_account_key(text, origin)
    # A path is echoed in errors (made printable); a value holding key material never is.
    origin = f"the value of {option}" if "PRIVATE KEY" in value else f"{safe(value, 300)} ({option})"
    if not text:
        raise ConfigError(f"{option} is empty: give the path of an authorized key JSON file, or the JSON itself")
    path = Path(value).expanduser()

    def too_large(message: str) -> ConfigError:
        return ConfigError(f"service account key {origin}: {message}")

    try:
        raw = inputs.read_file(path, inputs.SERVICE_ACCOUNT_KEY, too_large).decode("utf-8")
    except IsADirectoryError:
        raise ConfigError(f"service account key {origin}: is a directory; give the key JSON file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"service account key {origin}: not UTF-8 text; expected the key JSON") from None
    except OSError as error:
        raise ConfigError(
            f"service account key {origin}: cannot read: {error.strerror or error}; {_CREATE_HINT}"
        ) from error
    return parse_service_account_key(raw, origin)


def key_file_warning(value: str, option: str) -> str | None:
    """A warning when the key file ``value`` (not inline JSON) is readable by group or others:
    whoever can read it can act as the service account. None for inline JSON, a private file, or a path
    that cannot be inspected (loading the key reports that)."""
    text = value.strip()
    if not text or text.startswith("{") or "PRIVATE KEY" in value:
        return None
    path = Path(text).expanduser()
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(mode) or not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    shown = safe(str(path), 300)
    return (
        f"service account key {shown} ({option}) is readable by group or others (mode "
        f"{stat.S_IMODE(mode):04o}): anyone who can read it can act as the service account; "
        f"restrict it: chmod 600 {shown}"
    )


def parse_service_account_key(raw: str, origin: str) -> ServiceAccountKey:
    """Validate the JSON of an authorized key; ConfigError naming ``origin`` and the field at fault."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"service account key {origin}: {why}")

    if raw.lstrip().startswith("-----BEGIN"):
        raise bad(
            f"this is a bare PEM, not an authorized key JSON (id, service_account_id, private_key); {_CREATE_HINT}"
        )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:  # the message holds a position, never the content
        raise bad(f"not valid JSON (line {error.lineno}, column {error.colno}); {_CREATE_HINT}") from None
    if not isinstance(data, dict):
        raise bad(f"expected a JSON object with id, service_account_id and private_key; {_CREATE_HINT}")
    for name in REQUIRED_FIELDS:
        if name not in data:
            raise bad(f"field '{name}' is missing; is this the JSON from yc iam key create? {_CREATE_HINT}")
        if not isinstance(data[name], str) or not data[name].strip():
            raise bad(f"field '{name}' must be a non-empty string")
    for name in ("id", "service_account_id"):
        if any(ch.isspace() or not ch.isprintable() for ch in data[name]):
            raise bad(f"field '{name}' is not an id (it contains whitespace or control characters)")
    private_key = _private_key(data["private_key"], bad)
    public = data.get("public_key")
    if isinstance(public, str) and "BEGIN PUBLIC KEY" in public and not _matches(private_key, public):
        raise bad("fields 'private_key' and 'public_key' are not one key pair; is the file edited or mixed up?")
    return ServiceAccountKey(
        key_id=data["id"], service_account_id=data["service_account_id"], origin=origin, private_key=private_key
    )


def _private_key(text: str, bad: Any) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = text.strip()
    if pem.startswith(KEY_WARNING_PREFIX):  # newer keys carry a warning line before the PEM
        pem = pem.split("\n", 1)[1].strip() if "\n" in pem else ""
    if "BEGIN PUBLIC KEY" in pem or "BEGIN RSA PUBLIC KEY" in pem:
        raise bad("field 'private_key' holds a PUBLIC key; crgate needs the private key from yc iam key create")
    if not pem.startswith("-----BEGIN") or "PRIVATE KEY-----" not in pem:
        raise bad("field 'private_key' is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii", "replace"), password=None)
    except TypeError:
        raise bad("field 'private_key' is encrypted with a password; crgate needs the unencrypted key") from None
    except (ValueError, UnicodeError):
        raise bad("field 'private_key' is not a valid PEM private key (damaged or truncated?)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise bad("field 'private_key' is not an RSA key; Yandex authorized keys are RSA (PS256)")
    return key


def _matches(private_key: Any, public_pem: str) -> bool:
    from cryptography.hazmat.primitives import serialization

    try:
        public = serialization.load_pem_public_key(public_pem.strip().encode("ascii", "replace"))
    except (ValueError, UnicodeError):
        return True  # an unreadable public_key is not used; only a readable mismatch is an error
    return bool(public.public_numbers() == private_key.public_key().public_numbers())  # type: ignore[union-attr]
