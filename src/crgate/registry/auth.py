"""Pure parts of registry authentication: ``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1) and
where crgate may send credentials.

Docker answers a 401 with the challenge's scheme: ``Basic`` (send ``iam:<IAM token>`` again), or
``Bearer realm=...,service=...`` (the distribution token spec: ask the realm for a token with those
credentials, then send ``Bearer <token>``). The realm is a URL the registry chose, so crgate checks it
before sending an IAM token there: https (plain http only to loopback) on the registry's own host, or on
a Yandex Cloud domain for Yandex's registry.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from crgate.registry.errors import RegistryError
from crgate.scanner.netutil import is_loopback_host
from crgate.textsafe import safe

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*(?:,|$)")
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$|(?=,))")
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)")
# Domains of Yandex Cloud, where the production registry's token realm may live besides its own host.
YANDEX_DOMAINS = ("yandex.net", "yandex.cloud", "yandexcloud.net", "yandexcloud.kz", "cr.yandex")


@dataclass(frozen=True)
class Challenge:
    """One challenge: its scheme (lowercase) and parameters (names lowercase)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(headers: Sequence[str]) -> list[Challenge]:
    """Every challenge in the ``WWW-Authenticate`` header values; unparseable text ends the parse of
    that value (what was read before stays), so a hostile header cannot loop or blow up."""
    challenges: list[Challenge] = []
    for header in headers:
        text = header[:4096]
        position = 0
        while position < len(text):
            scheme = _SCHEME.match(text, position)
            if scheme is None:
                break
            position = scheme.end()
            params: dict[str, str] = {}
            while position < len(text):
                param = _PARAM.match(text, position)
                if param is None:
                    token68 = _TOKEN68.match(text, position)
                    if token68 is not None and not params:
                        position = token68.end()
                    break
                name, value = param.group(1).lower(), param.group(2)
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                params.setdefault(name, value)
                position = param.end()
            challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


def pick_challenge(challenges: Sequence[Challenge], url: str) -> Challenge:
    """The challenge crgate answers: Bearer (token flow) before Basic; RegistryError for any other."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    offered = ", ".join(sorted({safe(c.scheme, 20) for c in challenges})) or "none"
    raise RegistryError(
        f"the registry at {url} asks for authentication crgate does not speak (schemes offered: {offered}; "
        "crgate answers Basic and Bearer token challenges)"
    )


def check_realm(realm: str, registry_url: str) -> str:
    """The Bearer realm as a URL crgate may send the IAM token to; RegistryError otherwise."""
    parts = urllib.parse.urlsplit(realm)
    registry = urllib.parse.urlsplit(registry_url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise RegistryError(f"the registry at {registry_url} named a token realm that is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise RegistryError(
            f"the registry at {registry_url} wants credentials sent over plain http to {host}; crgate refuses"
        )
    registry_host = (registry.hostname or "").lower()
    same_host = host == registry_host
    yandex = any(host == d or host.endswith("." + d) for d in YANDEX_DOMAINS) and any(
        registry_host == d or registry_host.endswith("." + d) for d in YANDEX_DOMAINS
    )
    if not (same_host or yandex):
        raise RegistryError(
            f"the registry at {registry_url} wants the IAM token sent to another host ({safe(host, 100)}); "
            "crgate sends credentials only to the registry's own host (set --registry-url to the registry itself)"
        )
    return realm
