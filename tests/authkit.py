"""Test credentials made at test time (never committed): RSA keys, authorized key JSON, identity data."""

from __future__ import annotations

import functools
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SCANNER_ROLE = "container-registry.images.scanner"
KEY_WARNING = "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{}>"


@functools.cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """One 2048-bit key per name, generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_json(key_id: str, account_id: str, key: rsa.RSAPrivateKey, **override: Any) -> dict[str, Any]:
    """An authorized key as ``yc iam key create --output key.json`` writes it."""
    data = {
        "id": key_id,
        "service_account_id": account_id,
        "created_at": "2026-01-01T00:00:00Z",
        "key_algorithm": "RSA_2048",
        "public_key": public_pem(key),
        "private_key": KEY_WARNING.format(key_id) + "\n" + private_pem(key),
    }
    data.update(override)
    return data


def key_text(key_id: str, account_id: str, key: rsa.RSAPrivateKey, **override: Any) -> str:
    return json.dumps(key_json(key_id, account_id, key, **override), indent=2)
