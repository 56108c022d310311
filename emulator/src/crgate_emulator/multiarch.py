"""Scenario keys for the registry side: image platforms and formats, multi-platform indexes with
attestation manifests, and how the emulator's registry endpoint authenticates. Format::

    registry:                     # top level, optional
      auth: bearer                # bearer (default: the distribution token flow) | basic; applies when
                                  # require_auth is true (otherwise manifests are readable anonymously)
      token_lifetime: 300         # seconds a registry token of the bearer flow lives
      anomaly: null               # wrong_digest_header: Docker-Content-Digest names other bytes
      faults: [{status: 503, count: 1}]   # HTTP answers to manifest reads, consumed in order
    registries[].repositories[]:
      images[]:
        platform: linux/arm64/v8  # optional, default linux/amd64
        format: oci               # oci (default) | docker: the image manifest's media types
        artifact: sbom            # optional: not a container image but an artifact in an OCI manifest:
                                  # sbom (oras push of an SPDX SBOM) | attestation (buildx in-toto, SPDX
                                  # predicate) | signature (cosign)
        digest: ...               # optional: omitted, it is the sha256 of the manifest the registry
                                  # endpoint serves (an explicit one that differs makes the image
                                  # service and the registry disagree, as a broken registry would)
      indexes[]:                  # each is also an image of the repository (the one carrying the tag)
        - id: crpdemomulti00000001
          tags: [multi]
          format: oci             # oci: OCI image index (default) | docker: Docker manifest list
          manifests: [crpdemoamd64..., crpdemoarm64...]   # ids of platform images of this repository;
                                  # an item may be {id: ..., annotations: {key: value}} (entry annotations)
          attestations: true      # one provenance attestation manifest per platform (default true);
                                  # each is an untagged image too, with a derived id, as Yandex lists them
          created_at: 2026-01-15T09:30:00Z
          scan: {...}             # optional; default: the scan fails like Yandex's scanner
                                  # ("Image media type is not supported: <index media type>")

The index and its attestations are listed by ``ImageService`` like real pushes show up: the index with
the tag, the platform images and attestation manifests untagged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crgate_emulator import oci

if TYPE_CHECKING:
    from crgate_emulator.scenario import Image

IMAGE_KEYS = ("platform", "format", "artifact")
REPOSITORY_KEYS = ("indexes",)
SCENARIO_KEYS = ("registry",)
REGISTRY_AUTH = ("bearer", "basic")
REGISTRY_ANOMALIES = ("wrong_digest_header",)
UNSUPPORTED_MEDIA_TYPE = "Image media type is not supported: {}"
_PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?")
_INDEX_KEYS = ("id", "tags", "format", "manifests", "attestations", "created_at", "scan")


@dataclass(frozen=True)
class RegistryFault:
    """``count`` manifest reads answered with HTTP ``status``."""

    status: int
    count: int = 1


@dataclass(frozen=True)
class RegistrySettings:
    auth: str = "bearer"
    token_lifetime: float = 300.0
    anomaly: str | None = None
    faults: tuple[RegistryFault, ...] = ()


def parse_registry(parser: Any, value: Any, node: Any) -> RegistrySettings:
    if value is None:
        return RegistrySettings()
    raw = parser.mapping(value, "registry", ("auth", "token_lifetime", "anomaly", "faults"))
    auth = (
        "bearer" if raw.get("auth") is None else parser.choice(raw["auth"], "registry.auth", value, ("BEARER", "BASIC"))
    )
    anomaly = raw.get("anomaly")
    if anomaly is not None and anomaly not in REGISTRY_ANOMALIES:
        parser.fail("registry.anomaly", f"expected one of {', '.join(REGISTRY_ANOMALIES)}, got {anomaly!r}", value)
    faults = []
    for i, item in enumerate(parser.seq(raw.get("faults"), "registry.faults", value)):
        path = f"registry.faults[{i}]"
        fault = parser.mapping(item, path, ("status", "count"), ("status",))
        status = parser.integer(fault["status"], f"{path}.status", item, default=0, minimum=400)
        if status > 599:
            parser.fail(f"{path}.status", f"expected an HTTP error status 400-599, got {status}", item)
        faults.append(
            RegistryFault(status, parser.integer(fault.get("count"), f"{path}.count", item, default=1, minimum=1))
        )
    return RegistrySettings(
        auth=auth.lower(),
        token_lifetime=parser.number(
            raw.get("token_lifetime"), "registry.token_lifetime", value, default=300.0, minimum=1
        ),
        anomaly=anomaly,
        faults=tuple(faults),
    )


def image_fields(parser: Any, raw: dict, path: str, node: Any, image_id: str, repository_name: str) -> dict[str, Any]:
    """``digest``, ``platform``, ``media_type`` and ``manifest`` of a plain image entry."""
    platform = oci.DEFAULT_PLATFORM
    if raw.get("platform") is not None:
        platform = parser.string(raw["platform"], f"{path}.platform", node)
        if not _PLATFORM.fullmatch(platform):
            parser.fail(f"{path}.platform", f"expected OS/ARCH[/VARIANT] in lowercase, got {platform!r}", node)
    fmt = _format(parser, raw, path, node)
    size = raw.get("compressed_size")
    manifest, media_type = oci.image_manifest(
        image_id, repository_name, platform, fmt=fmt, layer_size=size if isinstance(size, int) else 0
    )
    if raw.get("artifact") is not None:
        choices = tuple(kind.upper() for kind in oci.ARTIFACTS)
        kind = str(parser.choice(raw["artifact"], f"{path}.artifact", node, choices)).lower()
        manifest, media_type = oci.artifact_manifest(kind, image_id, repository_name)
    digest = (
        oci.digest_of(manifest) if raw.get("digest") is None else parser.string(raw["digest"], f"{path}.digest", node)
    )
    return {"digest": digest, "platform": platform, "media_type": media_type, "manifest": manifest}


def index_images(
    parser: Any, items: Any, path: str, node: Any, registry_id: str, repository: str, images: tuple[Image, ...]
) -> tuple[Image, ...]:
    """The images an ``indexes`` list adds to a repository: each index, then its attestations."""
    from crgate_emulator.scenario import Image, OperationError, ScanBehaviour

    by_id = {image.id: image for image in images}
    added: list[Image] = []
    for i, item in enumerate(parser.seq(items, f"{path}.indexes", node)):
        where = f"{path}.indexes[{i}]"
        raw = parser.mapping(item, where, _INDEX_KEYS, ("id", "manifests"))
        index_id = parser.ident(raw["id"], f"{where}.id", item)
        fmt = _format(parser, raw, where, item)
        children: list[Image] = []
        annotated: dict[str, tuple[tuple[str, str], ...]] = {}
        for j, child_id in enumerate(parser.seq(raw["manifests"], f"{where}.manifests", item)):
            if isinstance(child_id, dict):
                entry_path = f"{where}.manifests[{j}]"
                spec = parser.mapping(child_id, entry_path, ("id", "annotations"), ("id",))
                child_id = spec["id"]
                notes = spec.get("annotations") or {}
                if not isinstance(notes, dict):
                    parser.fail(f"{entry_path}.annotations", "expected a mapping of strings", item)
                annotated[str(child_id)] = tuple(
                    (parser.string(k, f"{entry_path}.annotations", item), parser.string(v, f"{entry_path}.{k}", item))
                    for k, v in notes.items()
                )
            child = by_id.get(child_id) if isinstance(child_id, str) else None
            if child is None:
                parser.fail(f"{where}.manifests[{j}]", f"{child_id!r} is not an image id of this repository", item)
                raise AssertionError  # fail() raises; this tells the type checker
            if child in children:
                parser.fail(f"{where}.manifests[{j}]", f"{child_id!r} is listed twice", item)
            children.append(child)
        if not children:
            parser.fail(f"{where}.manifests", "an index needs at least one platform image", item)
        entries = [
            oci.Child(c.manifest_digest, len(c.manifest), c.media_type, c.platform or "", annotated.get(c.id, ()))
            for c in children
        ]
        attestations = []
        if parser.boolean(raw.get("attestations"), f"{where}.attestations", item, default=True):
            attestations = [(entry, oci.attestation_manifest(entry.digest)) for entry in entries]
        manifest = oci.index_manifest(entries, attestations, fmt=fmt)
        media_type = oci.DOCKER_MANIFEST_LIST if fmt == "docker" else oci.OCI_INDEX
        tags_path = f"{where}.tags"
        tags = tuple(
            parser.string(t, f"{tags_path}[{k}]", item)
            for k, t in enumerate(parser.seq(raw.get("tags"), tags_path, item))
        )
        created_at = parser.timestamp(raw.get("created_at"), f"{where}.created_at", item)
        refusal = OperationError("INVALID_ARGUMENT", UNSUPPORTED_MEDIA_TYPE.format(media_type))
        scan = (
            ScanBehaviour(status="ERROR", operation_error=refusal)
            if raw.get("scan") is None
            else parser.scan(raw["scan"], f"{where}.scan")
        )
        added.append(
            Image(
                id=index_id,
                registry_id=registry_id,
                repository=repository,
                digest=oci.digest_of(manifest),
                tags=tags,
                created_at=created_at,
                compressed_size=len(manifest),
                scan=scan,
                platform=None,
                media_type=media_type,
                manifest=manifest,
            )
        )
        for entry, data in attestations:
            added.append(
                Image(
                    id=_attestation_id(index_id, entry.digest),
                    registry_id=registry_id,
                    repository=repository,
                    digest=oci.digest_of(data),
                    created_at=created_at,
                    compressed_size=len(data) + 1536,
                    platform="unknown/unknown",
                    media_type=oci.OCI_MANIFEST,
                    manifest=data,
                )
            )
    return tuple(added)


def _attestation_id(index_id: str, subject_digest: str) -> str:
    """A Yandex-shaped id (20 characters) for an attestation manifest, stable across runs."""
    return "crpatt" + hashlib.sha256(f"{index_id}/{subject_digest}".encode()).hexdigest()[:14]


def _format(parser: Any, raw: dict, path: str, node: Any) -> str:
    if raw.get("format") is None:
        return "oci"
    return str(parser.choice(raw["format"], f"{path}.format", node, ("OCI", "DOCKER"))).lower()
