"""The manifest documents the emulator's registry endpoint serves for scenario images (pure).

Every image gets a deterministic OCI (or Docker v2) image manifest derived from its id, repository and
platform, so its digest (the sha256 of those bytes, as in any registry) is stable across runs and is
what ``ImageService`` lists. An index is built from its platform images, plus one attestation manifest
per platform in the shape ``docker buildx`` pushes (annotation ``vnd.docker.reference.type:
attestation-manifest``, platform ``unknown/unknown``). Config and layer blobs are described, not served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
PROVENANCE = "https://slsa.dev/provenance/v0.2"
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_LAYER_SIZE = 2 * 1024 * 1024
FORMATS = ("oci", "docker")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _fake_digest(*parts: str) -> str:
    return digest_of("\0".join(("crgate-emulator", *parts)).encode())


def _platform(text: str) -> dict[str, str]:
    os_name, architecture, *variant = text.split("/")
    return {"architecture": architecture, "os": os_name, **({"variant": variant[0]} if variant else {})}


@dataclass(frozen=True)
class Child:
    """An index entry: a platform image's manifest."""

    digest: str
    size: int
    media_type: str
    platform: str
    annotations: tuple[tuple[str, str], ...] = ()


def image_manifest(
    image_id: str, repository_name: str, platform: str, *, fmt: str = "oci", layer_size: int = 0
) -> tuple[bytes, str]:
    """An image manifest for a scenario image: (bytes, media type)."""
    docker = fmt == "docker"
    config = _canonical(
        {
            **_platform(platform),
            "rootfs": {"type": "layers", "diff_ids": [_fake_digest("diff", repository_name, image_id)]},
            "config": {"Labels": {"org.crgate.emulator.image-id": image_id}},
        }
    )
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                "digest": _fake_digest("layer", repository_name, image_id),
                "size": layer_size or DEFAULT_LAYER_SIZE,
            }
        ],
    }
    return _canonical(document), media_type


ARTIFACTS = ("sbom", "attestation", "signature")
"""What an ``artifact`` image is: an SPDX SBOM as ``oras push`` stores it, a buildx in-toto attestation
(SPDX predicate), a cosign signature."""
_ARTIFACT_SHAPES = {
    "sbom": ("application/vnd.unknown.config.v1+json", "application/spdx+json", {}),
    "attestation": (OCI_CONFIG, IN_TOTO, {"in-toto.io/predicate-type": "https://spdx.dev/Document"}),
    "signature": (OCI_CONFIG, "application/vnd.dev.cosign.simplesigning.v1+json", {}),
}


def artifact_manifest(kind: str, image_id: str, repository_name: str) -> tuple[bytes, str]:
    """The OCI manifest of an ``artifact`` scenario image (not a container image): (bytes, media type)."""
    config_type, layer_type, annotations = _ARTIFACT_SHAPES[kind]
    config = b"{}"
    layer: dict = {"mediaType": layer_type, "digest": _fake_digest(kind, repository_name, image_id), "size": 4096}
    if annotations:
        layer["annotations"] = annotations
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest_of(config), "size": len(config)},
        "layers": [layer],
    }
    return _canonical(document), OCI_MANIFEST


def attestation_manifest(subject_digest: str) -> bytes:
    """A provenance attestation manifest for ``subject_digest`` (always OCI, as buildx writes them)."""
    config = _canonical({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers"}})
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [
            {
                "mediaType": IN_TOTO,
                "digest": _fake_digest("provenance", subject_digest),
                "size": 1536,
                "annotations": {"in-toto.io/predicate-type": PROVENANCE},
            }
        ],
    }
    return _canonical(document)


def index_manifest(
    children: Sequence[Child], attestations: Sequence[tuple[Child, bytes]], *, fmt: str = "oci"
) -> bytes:
    """An index (``fmt`` oci) or Docker manifest list (``docker``) of ``children``; each attestation is
    (the child it describes, the attestation manifest's bytes)."""
    entries: list[dict] = [
        {
            "mediaType": c.media_type,
            "digest": c.digest,
            "size": c.size,
            **({"annotations": dict(c.annotations)} if c.annotations else {}),
            "platform": _platform(c.platform),
        }
        for c in children
    ]
    for subject, data in attestations:
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(data),
                "size": len(data),
                "annotations": {
                    "vnd.docker.reference.digest": subject.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
        )
    media_type = DOCKER_MANIFEST_LIST if fmt == "docker" else OCI_INDEX
    return _canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
