"""The registry's OCI distribution API: which images a reference names (multi-platform indexes
included), read over HTTP(S) with Docker's authentication. No gRPC here.

    client = RegistryClient(token_source=source, registry_url=url_or_None, ca_file=path_or_None)
    resolved = client.resolve(ref, deadline, platforms=[parse_platform("linux/arm64")])
    for child in resolved.children:      # what to find in ImageService.List by digest and scan
        label(ref.raw, child.platform)   # "<ref> [linux/arm64]"
"""

from crgate.registry.client import FetchedManifest, RegistryClient, check_registry_url
from crgate.registry.errors import (
    DigestMismatchError,
    MalformedManifestError,
    ManifestNotFoundError,
    NotAnImageError,
    PlatformNotFoundError,
    RegistryAccessDenied,
    RegistryError,
)
from crgate.registry.index import Platform, PlatformImage, Resolved, SkippedManifest, label, parse_platform

__all__ = [
    "DigestMismatchError",
    "FetchedManifest",
    "MalformedManifestError",
    "ManifestNotFoundError",
    "NotAnImageError",
    "Platform",
    "PlatformImage",
    "PlatformNotFoundError",
    "RegistryAccessDenied",
    "RegistryClient",
    "RegistryError",
    "Resolved",
    "SkippedManifest",
    "check_registry_url",
    "label",
    "parse_platform",
]
