"""Pure parts of registry authentication: ``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1) and
where crgate may send credentials.

Docker answers a 401 with the challenge's scheme: ``Basic`` (send ``iam:<IAM token>`` again), or
``Bearer realm=...,service=...`` (the distribution token spec: ask the realm for a token with those
credentials, then send ``Bearer <token>``). The realm is a URL the registry chose, so crgate checks it
before sending an IAM token there: https (plain http only to loopback) on the registry's own host, or on
one of Yandex's documented registry and token hosts for Yandex's registry.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from crgate.regions import AUTH_HOSTS, registry_hosts
from crgate.registry.errors import RegistryError
from crgate.scanner.netutil import is_loopback_host
from crgate.textsafe import safe

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*(?:,|$)")
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$|(?=,))")
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)")
# Where Yandex's registry may send crgate for a token besides its own host: Yandex's registry hosts
# (one service under several names) and its documented token service. Not a domain suffix: anyone can
# serve HTTP under *.yandexcloud.net (functions, API gateways, buckets).
REALM_HOSTS: tuple[str, ...] = (*registry_hosts(), *AUTH_HOSTS)


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
    """The Bearer realm as a URL crgate may send the IAM token to; RegistryError (exit 3) otherwise.

    Allowed: https on the registry's own host (any port); for Yandex's registry, https on another of
    Yandex's documented registry or token hosts (``REALM_HOSTS``: not every ``*.yandexcloud.net``, where
    anyone can serve a function or a bucket); plain http only on the registry's own loopback host (tests
    and emulators). The realm's host is named sanitized: the registry chose it.
    """
    registry = urllib.parse.urlsplit(registry_url)
    try:
        parts = urllib.parse.urlsplit(realm)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unbalanced '[' or ']' in the host
        parts, host = urllib.parse.urlsplit(""), ""
    shown = safe(host, 100)
    if parts.scheme not in ("https", "http") or not host:
        raise RegistryError(
            f"the registry at {registry_url} named a token realm that is not an http(s) URL "
            f"('{safe(realm, 100)}'); crgate sends it no credentials"
        )
    if parts.username is not None or parts.password is not None:
        raise RegistryError(
            f"the registry at {registry_url} named a token realm on {shown} with credentials in its URL; crgate refuses"
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise RegistryError(
            f"the registry at {registry_url} wants credentials sent over plain http to {shown}; crgate refuses"
        )
    registry_host = (registry.hostname or "").lower()
    same_host = host == registry_host
    yandex = registry_host in registry_hosts() and host in REALM_HOSTS and parts.scheme == "https"
    if not (same_host or yandex):
        raise RegistryError(
            f"the registry at {registry_url} wants the IAM token sent to another host ({shown}); "
            "crgate sends credentials only to the registry's own host or Yandex's documented token hosts "
            "(set --registry-url to the registry itself)"
        )
    return realm
