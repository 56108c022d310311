"""Small helpers shared by the gRPC transport and the HTTP credential code (no gRPC import here)."""

from __future__ import annotations

import ipaddress
import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MAX_SERVER_TEXT = 1000


def server_text(text: str) -> str:
    """Server-supplied text made safe to print: no terminal control sequences, bounded length."""
    # Printable text has no control character and no newline, so it needs no substitution: one C call
    # instead of a regex pass for almost every field of every finding.
    cleaned = text if text.isprintable() else _CONTROL.sub("?", text).replace("\n", " ")
    return cleaned if len(cleaned) <= MAX_SERVER_TEXT else cleaned[:MAX_SERVER_TEXT] + "..."


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (IPv6 with or without brackets)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_address(address: str) -> tuple[str, str]:
    """``HOST:PORT`` (IPv6 in brackets) into host and port; the port is empty when there is none."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest.removeprefix(":")
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, port
    return address, ""


def is_loopback(address: str) -> bool:
    """True when ``HOST:PORT`` (or a bare host) names this machine (plaintext is only allowed there)."""
    return is_loopback_host(split_address(address)[0])
