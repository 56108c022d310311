"""Errors of the registry's distribution API, each a crgate error that ends the run with exit 3.

They subclass the general kinds in ``crgate.errors`` so the CLI needs no new cases: a denied or failed
read is a scan/API error, a tag or digest the registry does not know is "image not found", bytes that do
not parse or do not match their digest are a malformed answer.
"""

from __future__ import annotations

from crgate.errors import ImageNotFoundError, MalformedResponseError, ScanError
from crgate.model import ErrorKind

ROLES_HINT = (
    "Reading manifests needs a role that may download images: container-registry.images.scanner (the role "
    "crgate needs anyway; it includes downloading images) or container-registry.images.puller, on the "
    "registry or its folder."
)


class RegistryError(ScanError):
    """The registry could not be asked, or answered with an error (unreachable, 5xx, a bad redirect)."""


class RegistryAccessDenied(RegistryError):
    """The registry refused the read after crgate authenticated (or had no credentials to offer)."""


class ManifestNotFoundError(ImageNotFoundError):
    """The registry does not know the tag or digest (``MANIFEST_UNKNOWN`` / ``NAME_UNKNOWN``)."""


class PlatformNotFoundError(ImageNotFoundError):
    """``--platform`` asked for platforms an index does not offer."""


class MalformedManifestError(MalformedResponseError):
    """The manifest is not one crgate understands: bad JSON, unknown media type, inconsistent fields."""


class DigestMismatchError(MalformedResponseError):
    """The bytes' sha256 is not the digest asked for, or not the ``Docker-Content-Digest`` sent."""


class NotAnImageError(ScanError):
    """The reference (or a platform entry of its index) names an artifact, not a container image: an SBOM,
    an attestation, a signature. Never scanned, never a pass, whatever the policy's ``unscannable`` says."""

    kind = ErrorKind.NOT_AN_IMAGE
