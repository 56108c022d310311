"""Pure manifest logic: parse what the registry answered, and decide which images a reference gates.

A reference names one of four documents (the media types crgate asks for): an OCI image index or a
Docker manifest list (multi-platform: every platform image in it is gated, never the index itself and
never an attestation manifest), or an OCI / Docker v2 image manifest (one image, gated as it is).
Anything else (another media type, malformed JSON, a duplicate key, a child of an unknown kind, an index
with nothing to gate) fails closed with an error naming the reference; nothing here prints server text
raw. No I/O: ``crgate.registry.client`` fetches the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crgate.errors import ConfigError
from crgate.registry.artifacts import artifact_kind, descriptor_artifact
from crgate.registry.errors import MalformedManifestError, NotAnImageError, PlatformNotFoundError
from crgate.textsafe import safe

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPTED_TYPES: tuple[str, ...] = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
"""Every media type crgate understands, in the order of its ``Accept`` header."""

REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION = "attestation-manifest"
MAX_CHILDREN = 1000
"""More entries than any real multi-platform push has; a longer index is refused, not truncated."""

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PLATFORM_PART = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# The variant an architecture has when none is written (containerd's normalisation).
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True, order=True)
class Platform:
    """``os/architecture[/variant]`` as Docker writes it (``linux/arm64/v8``)."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    def matches(self, wanted: Platform) -> bool:
        """Whether this (an index entry) is what ``wanted`` (a ``--platform`` value) asks for.

        A wanted platform without a variant takes every variant of its architecture (gating more is
        the safe side); with one, the variant must agree, ``arm64`` meaning ``arm64/v8``.
        """
        if (self.os, self.architecture) != (wanted.os, wanted.architecture):
            return False
        if not wanted.variant:
            return True
        default = _DEFAULT_VARIANT.get(self.architecture, "")
        return (self.variant or default) == (wanted.variant or default)

    @property
    def is_unknown(self) -> bool:
        return self.os == "unknown" and self.architecture == "unknown"


def parse_platform(text: str, option: str = "--platform") -> Platform:
    """A ``--platform`` value ``OS/ARCH[/VARIANT]`` (lowercase); ConfigError naming the option otherwise."""
    parts = text.strip().split("/")
    if not 2 <= len(parts) <= 3 or not all(_PLATFORM_PART.fullmatch(part) for part in parts):
        raise ConfigError(
            f"{option}: '{safe(text, 80)}' is not a platform; expected OS/ARCH or OS/ARCH/VARIANT "
            "in lowercase, e.g. linux/amd64 or linux/arm64/v8"
        )
    return Platform(*parts)


@dataclass(frozen=True)
class PlatformImage:
    """One image to gate: the manifest's digest and, for an index entry, its platform."""

    digest: str
    platform: str | None = None
    """``linux/arm64/v8`` for a child of an index; None for a single-manifest image."""
    media_type: str = OCI_MANIFEST
    notes: tuple[str, ...] = ()
    """What contradicted itself about the entry (an attestation annotation on a real platform image)."""


@dataclass(frozen=True)
class SkippedManifest:
    """An index entry that is not gated, and why (``attestation``, ``platform filter``, or what the
    artifact is)."""

    digest: str
    platform: str | None
    reason: str


@dataclass(frozen=True)
class Resolved:
    """What a reference resolved to in the registry.

    ``digest`` is the sha256 of the document the reference names (the index's, for an index): the value
    to pin. ``children`` are the images to gate, at least one: the platform images of an index, or the
    manifest itself (platform None) for a single image.
    """

    reference: str
    digest: str
    media_type: str
    is_index: bool
    children: tuple[PlatformImage, ...]
    skipped: tuple[SkippedManifest, ...] = ()
    platforms: tuple[str, ...] = ()
    """Every platform the index offers (attestations excluded), for messages and reports."""


@dataclass(frozen=True)
class Descriptor:
    """An entry of an index, as parsed."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None
    annotations: Mapping[str, str]
    artifact_type: str | None = None

    @property
    def has_real_platform(self) -> bool:
        return self.platform is not None and not self.platform.is_unknown


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest document: an index (``entries``) or an image manifest (no entries)."""

    media_type: str
    entries: tuple[Descriptor, ...] = ()
    artifact: str | None = None
    """For an image manifest that is not a container image: what it is ("an SPDX SBOM (...)")."""

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def label(reference: str, platform: str | None) -> str:
    """How reports name one gated image: ``<ref> [linux/arm64]``, or the reference alone."""
    return f"{reference} [{platform}]" if platform else reference


def media_type_of(content_type: str | None) -> str | None:
    """The media type of a ``Content-Type`` header, without parameters, lowercase."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def parse_manifest(data: bytes, content_type: str | None, *, reference: str) -> Manifest:
    """Parse a manifest document strictly; MalformedManifestError naming ``reference`` otherwise.

    The media type is the document's ``mediaType``; when the document has none (OCI allows that), the
    ``Content-Type`` the registry sent. When both are present they must agree.
    """

    def bad(why: str) -> MalformedManifestError:
        return MalformedManifestError(f"the registry's manifest of {reference} is unusable: {why}")

    document = _strict_json(data, bad)
    if not isinstance(document, dict):
        raise bad("it is not a JSON object")
    if document.get("schemaVersion") != 2 or isinstance(document.get("schemaVersion"), bool):
        raise bad(f"schemaVersion is {_shown(document.get('schemaVersion'))}, expected 2")
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise bad("mediaType is not a string")
    sent = media_type_of(content_type)
    media_type = declared or sent
    if media_type not in ACCEPTED_TYPES:
        raise bad(
            f"media type {_shown(media_type)} is not one crgate reads (expected one of {', '.join(ACCEPTED_TYPES)})"
        )
    if declared and sent in ACCEPTED_TYPES and sent != declared:
        raise bad(f"the registry sent it as {sent}, but the document says {declared}")
    if media_type in INDEX_TYPES:
        if "config" in document or "layers" in document:
            raise bad("an index must not have config or layers")
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise bad("an index must list its manifests")
        if len(entries) > MAX_CHILDREN:
            raise bad(f"it lists {len(entries)} manifests, more than crgate's limit of {MAX_CHILDREN}")
        return Manifest(media_type, tuple(_descriptor(entry, i, bad) for i, entry in enumerate(entries)))
    if "manifests" in document:
        raise bad("an image manifest must not list manifests")
    config = document.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise bad("an image manifest must have a config descriptor")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise bad("an image manifest must list its layers")
    if not isinstance(config.get("mediaType"), str):
        raise bad("the config descriptor has no mediaType")
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise bad("artifactType is not a string")
    if len(layers) > MAX_CHILDREN:
        raise bad(f"it lists {len(layers)} layers, more than crgate's limit of {MAX_CHILDREN}")
    described = [_layer(layer, i, bad) for i, layer in enumerate(layers)]
    kind = artifact_kind(artifact_type=artifact_type, config_type=config["mediaType"], layers=described)
    return Manifest(media_type, artifact=kind)


def select(
    manifest: Manifest,
    *,
    reference: str,
    digest: str,
    platforms: Sequence[Platform] = (),
    child: Callable[[str], Manifest] | None = None,
) -> Resolved:
    """The images a reference gates: every platform image of an index (restricted to ``platforms`` when
    given), never an attestation; an image manifest gates itself (``platforms`` do not apply to it).

    Only container images are gated: a manifest that is an artifact (an SBOM, an attestation, a
    signature) is a NotAnImageError. In an index, an entry is skipped as an attestation only when it is
    one: platform ``unknown/unknown``, or no platform and an artifact's ``artifactType`` or manifest.
    Every other entry's manifest is read with ``child(digest)`` (parsed, verified); one with a real
    platform is gated whatever its annotations claim (the contradiction becomes a note), and one that
    turns out to be an artifact is an error, never skipped.
    """
    if not manifest.is_index:
        if manifest.artifact is not None:
            raise NotAnImageError(
                f"{reference} is {manifest.artifact}, not a container image: crgate gates only container "
                "images (it did not ask for a scan). Name the image it belongs to instead"
            )
        itself = PlatformImage(digest, None, manifest.media_type)
        return Resolved(reference, digest, manifest.media_type, False, (itself,))
    children: list[PlatformImage] = []
    skipped: list[SkippedManifest] = []
    offered: list[str] = []
    seen: set[str] = set()
    for entry in manifest.entries:
        shown = str(entry.platform) if entry.platform else None
        if not entry.has_real_platform and (entry.platform is not None or descriptor_artifact(entry.artifact_type)):
            skipped.append(SkippedManifest(entry.digest, shown, "attestation"))
            continue
        if entry.media_type in INDEX_TYPES:
            raise MalformedManifestError(
                f"the index of {reference} contains another index ({entry.digest}); nested indexes are not "
                "supported: name the inner index's reference instead"
            )
        if entry.media_type not in IMAGE_TYPES:
            raise MalformedManifestError(
                f"the index of {reference} lists {entry.digest} of media type {_shown(entry.media_type)}, "
                "which is neither an image manifest nor an attestation: crgate cannot tell what to gate"
            )
        if shown and shown not in offered:
            offered.append(shown)
        if platforms and not (entry.platform and any(entry.platform.matches(p) for p in platforms)):
            skipped.append(SkippedManifest(entry.digest, shown, "platform filter"))
            continue
        if entry.digest in seen:  # one image listed for two platforms is gated once
            continue
        artifact = child(entry.digest).artifact if child is not None else None
        if artifact is not None and not entry.has_real_platform:
            skipped.append(SkippedManifest(entry.digest, shown, artifact))
            continue
        if artifact is not None:
            raise NotAnImageError(
                f"the index of {reference} lists {entry.digest} for platform {shown}, but it is {artifact}, "
                "not a container image: crgate cannot gate that platform (it did not ask for a scan)"
            )
        seen.add(entry.digest)
        children.append(PlatformImage(entry.digest, shown, entry.media_type, _contradictions(entry, reference)))
    if not children:
        if platforms:
            raise PlatformNotFoundError(
                f"{reference} is a multi-platform index without {' or '.join(str(p) for p in platforms)}; "
                f"it offers {', '.join(offered) or 'no platform images'} (adjust --platform)"
            )
        raise MalformedManifestError(
            f"{reference} is an index that lists no platform images (only attestations or nothing): nothing to gate"
        )
    return Resolved(reference, digest, manifest.media_type, True, tuple(children), tuple(skipped), tuple(offered))


def _contradictions(entry: Descriptor, reference: str) -> tuple[str, ...]:
    """Notes on an entry gated as an image although it claims to be an attestation or artifact."""
    claims = []
    if entry.annotations.get(REFERENCE_TYPE) == ATTESTATION:
        claims.append(f"the annotation {REFERENCE_TYPE}: {ATTESTATION}")
    if descriptor_artifact(entry.artifact_type):
        claims.append(f"artifactType {safe(entry.artifact_type or '', 100)}")
    if not claims:
        return ()
    where = f"platform {entry.platform}" if entry.platform else "no platform"
    return (
        f"the index of {reference} marks {entry.digest} ({where}) as an attestation or artifact "
        f"({' and '.join(claims)}), but its manifest is a container image: gated as an image",
    )


def _layer(layer: Any, number: int, bad: Any) -> tuple[str, Mapping[str, str]]:
    where = f"layers[{number}]"
    if not isinstance(layer, dict) or not isinstance(layer.get("mediaType"), str):
        raise bad(f"{where} has no mediaType")
    annotations = layer.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise bad(f"{where} has annotations that are not strings")
    return layer["mediaType"], annotations


def _descriptor(entry: Any, number: int, bad: Any) -> Descriptor:
    where = f"manifests[{number}]"
    if not isinstance(entry, dict):
        raise bad(f"{where} is not an object")
    media_type, digest, size = entry.get("mediaType"), entry.get("digest"), entry.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise bad(f"{where} has no mediaType")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise bad(f"{where} has digest {_shown(digest)}, expected sha256:<64 lowercase hex digits>")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise bad(f"{where} has no valid size")
    annotations = entry.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise bad(f"{where} has annotations that are not strings")
    artifact_type = entry.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise bad(f"{where}.artifactType is not a string")
    platform = _entry_platform(entry.get("platform"), where, bad)
    return Descriptor(media_type, digest, size, platform, annotations, artifact_type)


def _entry_platform(value: Any, where: str, bad: Any) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(f"{where}.platform is not an object")
    parts = []
    for name in ("os", "architecture", "variant"):
        part = value.get(name, "" if name == "variant" else None)
        if not isinstance(part, str) or not (_PLATFORM_PART.fullmatch(part) or (name == "variant" and not part)):
            raise bad(f"{where}.platform.{name} is {_shown(part)}")
        parts.append(part)
    return Platform(*parts)


def _strict_json(data: bytes, bad: Any) -> Any:
    """JSON without duplicate keys or NaN/Infinity: two parsers must never read one manifest differently."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise bad(f"duplicate key {_shown(key)}")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise bad(f"{name} is not valid JSON")

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("it is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError):
        raise bad("it is not valid JSON") from None


def _shown(value: Any) -> str:
    if value is None:
        return "missing"
    text = safe(str(value))
    return f"'{text[:80]}'" + ("..." if len(text) > 80 else "")
