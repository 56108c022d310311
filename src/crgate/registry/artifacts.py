"""Pure: whether an image manifest describes a container image, and what it is when it does not.

A registry stores more than images under the image-manifest media types: ``oras push`` stores an SBOM
as an OCI manifest with config ``application/vnd.unknown.config.v1+json`` (or the empty config and an
``artifactType``), ``docker buildx`` and cosign store in-toto attestations and signatures beside the
images they describe. The scanner would scan (and bill) such a manifest and find nothing, which would
read as a pass. Only a container image may pass: a manifest is one when it has no ``artifactType`` other
than an image config's, its config is an OCI or Docker image config, and every layer is an image layer.
Anything else is an artifact, named for people by its most telling media type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crgate.textsafe import safe

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
IN_TOTO = "application/vnd.in-toto+json"
PREDICATE_TYPE = "in-toto.io/predicate-type"
_LAYER_PREFIXES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")
"""OCI layers (``.v1.tar``, ``+gzip``, ``+zstd``, non-distributable) and Docker's (``diff.tar.gzip``, foreign)."""
_NO_INFORMATION = frozenset(
    {"application/vnd.oci.empty.v1+json", "application/vnd.unknown.config.v1+json", "application/octet-stream"}
)
"""Config types that say nothing of what the artifact is (oras' default, OCI's empty descriptor)."""

_KNOWN: Mapping[str, str] = {
    "application/spdx+json": "an SPDX SBOM",
    "application/vnd.spdx+json": "an SPDX SBOM",
    "text/spdx": "an SPDX SBOM",
    "text/spdx+json": "an SPDX SBOM",
    "application/vnd.cyclonedx+json": "a CycloneDX SBOM",
    "application/vnd.cyclonedx+xml": "a CycloneDX SBOM",
    "application/vnd.cyclonedx": "a CycloneDX SBOM",
    "application/vnd.syft+json": "a Syft SBOM",
    IN_TOTO: "an in-toto attestation",
    "application/vnd.dsse.envelope.v1+json": "a signed (DSSE) attestation",
    "application/vnd.dev.cosign.simplesigning.v1+json": "a cosign signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "a Sigstore bundle",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "a Sigstore bundle",
    "application/vnd.cncf.notary.signature": "a Notary signature",
    "application/vnd.cncf.helm.config.v1+json": "a Helm chart",
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip": "a Helm chart",
    "application/vnd.wasm.config.v0+json": "a WebAssembly module",
    "application/vnd.module.wasm.content.layer.v1+wasm": "a WebAssembly module",
    "application/vnd.oci.image.manifest.v1+json": "a manifest nested as a layer",
}
_PREDICATES: Mapping[str, str] = {
    "https://spdx.dev/Document": "an SPDX SBOM",
    "https://cyclonedx.org/bom": "a CycloneDX SBOM",
    "https://slsa.dev/provenance/v0.2": "SLSA provenance",
    "https://slsa.dev/provenance/v1": "SLSA provenance",
    "https://cosign.sigstore.dev/attestation/vuln/v1": "a vulnerability report",
    "https://openvex.dev/ns": "a VEX document",
}


def is_image_layer(media_type: str) -> bool:
    return media_type.startswith(_LAYER_PREFIXES)


def artifact_kind(
    *, artifact_type: str | None, config_type: str, layers: Iterable[tuple[str, Mapping[str, str]]]
) -> str | None:
    """None for a container image; otherwise what the manifest is, for people ("an SPDX SBOM (layer
    application/spdx+json)"). ``layers`` are (media type, annotations) pairs."""
    layers = list(layers)
    foreign = [(media_type, notes) for media_type, notes in layers if not is_image_layer(media_type)]
    if artifact_type is None and config_type in IMAGE_CONFIG_TYPES and not foreign:
        return None
    evidence: list[str] = []
    named: str | None = None
    if artifact_type is not None:
        evidence.append(f"artifactType {_shown(artifact_type)}")
        named = _KNOWN.get(artifact_type)
    if config_type not in IMAGE_CONFIG_TYPES:
        evidence.append(f"config {_shown(config_type)}")
        named = named or _KNOWN.get(config_type)
    for media_type, notes in foreign[:2]:
        evidence.append(f"layer {_shown(media_type)}")
        named = named or _layer_kind(media_type, notes)
    if named is None:
        telling = artifact_type if artifact_type and artifact_type not in _NO_INFORMATION else None
        telling = telling or (config_type if config_type not in _NO_INFORMATION | IMAGE_CONFIG_TYPES else None)
        telling = telling or (foreign[0][0] if foreign else None)
        named = f"an OCI artifact of type {_shown(telling)}" if telling else "an OCI artifact without a type"
    return f"{named} ({', '.join(evidence)})"


def descriptor_artifact(artifact_type: str | None) -> str | None:
    """What an index entry's own ``artifactType`` says it is (None when it has none or an image config's)."""
    if artifact_type is None or artifact_type in IMAGE_CONFIG_TYPES:
        return None
    return f"{_KNOWN.get(artifact_type) or 'an OCI artifact'} (artifactType {_shown(artifact_type)})"


def _layer_kind(media_type: str, annotations: Mapping[str, str]) -> str | None:
    kind = _KNOWN.get(media_type)
    predicate = annotations.get(PREDICATE_TYPE)
    if media_type == IN_TOTO and predicate:
        about = _PREDICATES.get(predicate) or f"predicate {_shown(predicate)}"
        return f"an in-toto attestation ({about})"
    return kind


def _shown(value: Any) -> str:
    return safe(str(value), 100)
