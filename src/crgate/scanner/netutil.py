"""Small helpers shared by the gRPC transport and the HTTP credential code (no gRPC import here).

Text from a server is made printable by ``crgate.textsafe.safe``, the one sanitizer.
"""

from __future__ import annotations

import ipaddress


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
