"""Pure: which manifests are container images, and what the others are called (issue 18, items 1-2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crgate.registry import NotAnImageError
from crgate.registry.artifacts import DOCKER_CONFIG, IN_TOTO, OCI_CONFIG, artifact_kind
from crgate.registry.index import OCI_INDEX, OCI_MANIFEST, Manifest, parse_manifest, select

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
REF = "cr.yandex/crptest/app:x"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def manifest(config: str, *layers: tuple[str, dict[str, str]], artifact_type: str | None = None) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config, "digest": D3, "size": 2},
        "layers": [{"mediaType": t, "digest": D3, "size": 1, "annotations": a} for t, a in layers],
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    return json.dumps(document).encode()


def what(data: bytes) -> str:
    with pytest.raises(NotAnImageError) as caught:
        select(parse_manifest(data, None, reference=REF), reference=REF, digest=D1)
    assert caught.value.exit_code == 3 and caught.value.kind.value == "not_an_image"
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (manifest("application/vnd.unknown.config.v1+json", ("application/spdx+json", {})), "is an SPDX SBOM ("),
        (
            manifest(
                "application/vnd.oci.empty.v1+json",
                ("application/spdx+json", {}),
                artifact_type="application/spdx+json",
            ),
            "is an SPDX SBOM (artifactType application/spdx+json",
        ),
        (
            manifest(OCI_CONFIG, (IN_TOTO, {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v1"})),
            "SLSA provenance",
        ),
        (manifest(OCI_CONFIG, ("application/vnd.dev.cosign.simplesigning.v1+json", {})), "is a cosign signature"),
        (
            manifest(
                "application/vnd.cncf.helm.config.v1+json", ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", {})
            ),
            "is a Helm chart",
        ),
        (manifest("application/vnd.example.thing+json"), "an OCI artifact of type application/vnd.example.thing+json"),
        (manifest("application/vnd.oci.empty.v1+json"), "an OCI artifact without a type"),
        (
            manifest(OCI_CONFIG, (LAYER, {}), artifact_type="application/vnd.example+json"),
            "artifactType application/vnd.example+json",
        ),
        (manifest("application/vnd.unknown.config.v1+json", ("text/plain\x1b[31m", {})), "text/plain"),
    ],
)
def test_artifacts_named_directly_are_not_images(data: bytes, expected: str) -> None:
    message = what(data)
    assert expected in message and "not a container image" in message and REF in message
    assert "\x1b" not in message


@pytest.mark.parametrize("config", [OCI_CONFIG, DOCKER_CONFIG])
@pytest.mark.parametrize(
    "layer",
    [LAYER, "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip"],
)
def test_container_images_are_images(config: str, layer: str) -> None:
    resolved = select(parse_manifest(manifest(config, (layer, {})), None, reference=REF), reference=REF, digest=D1)
    assert [c.digest for c in resolved.children] == [D1]


@given(
    st.sampled_from([OCI_CONFIG, DOCKER_CONFIG, "application/vnd.unknown.config.v1+json"]),
    st.lists(st.text(min_size=1, max_size=40), max_size=4),
    st.one_of(st.none(), st.text(min_size=1, max_size=40)),
)
def test_only_image_configs_with_image_layers_and_no_artifact_type_are_images(
    config: str, layers: list[str], artifact_type: str | None
) -> None:
    kind = artifact_kind(artifact_type=artifact_type, config_type=config, layers=[(t, {}) for t in layers])
    is_image = (
        config in (OCI_CONFIG, DOCKER_CONFIG)
        and artifact_type in (None, OCI_CONFIG, DOCKER_CONFIG)
        and all(
            t.startswith(("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")) for t in layers
        )
    )
    assert (kind is None) == (is_image and artifact_type is None)


def index(*entries: dict[str, Any]) -> Manifest:
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()
    return parse_manifest(data, None, reference=REF)


def entry(digest: str, platform: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 10, **extra}
    if platform:
        os_name, arch = platform.split("/")
        item["platform"] = {"os": os_name, "architecture": arch}
    return item


SBOM = parse_manifest(
    manifest("application/vnd.unknown.config.v1+json", ("application/spdx+json", {})), None, reference=REF
)
IMAGE = parse_manifest(manifest(OCI_CONFIG, (LAYER, {})), None, reference=REF)
NOTE = {"vnd.docker.reference.type": "attestation-manifest"}


def test_an_entry_without_platform_is_skipped_only_when_its_manifest_is_an_artifact() -> None:
    read: list[str] = []

    def child(digest: str) -> Manifest:
        read.append(digest)
        return SBOM if digest == D2 else IMAGE

    resolved = select(
        index(entry(D1, "linux/amd64"), entry(D2, annotations=NOTE), entry(D3, artifactType="application/spdx+json")),
        reference=REF,
        digest=D1,
        child=child,
    )
    assert [c.digest for c in resolved.children] == [D1]
    assert [(s.digest, s.reason.split(" (")[0]) for s in resolved.skipped] == [
        (D2, "an SPDX SBOM"),
        (D3, "attestation"),
    ]
    assert read == [D1, D2]  # an entry whose descriptor says artifact is not read


def test_an_annotated_entry_without_platform_that_is_an_image_is_gated_with_a_note() -> None:
    resolved = select(index(entry(D2, annotations=NOTE)), reference=REF, digest=D1, child=lambda _: IMAGE)
    (gated,) = resolved.children
    assert gated.digest == D2 and gated.notes and "no platform" in gated.notes[0]


def test_an_entry_with_a_real_platform_and_an_artifact_type_is_gated_with_a_note() -> None:
    resolved = select(
        index(entry(D2, "linux/arm64", artifactType="application/spdx+json")),
        reference=REF,
        digest=D1,
        child=lambda _: IMAGE,
    )
    assert resolved.children[0].platform == "linux/arm64"
    assert "artifactType application/spdx+json" in resolved.children[0].notes[0]


def test_a_real_platform_entry_that_is_an_artifact_fails_the_reference() -> None:
    with pytest.raises(NotAnImageError, match="for platform linux/arm64, but it is an SPDX SBOM"):
        select(
            index(entry(D1, "linux/amd64"), entry(D2, "linux/arm64")),
            reference=REF,
            digest=D1,
            child=lambda d: SBOM if d == D2 else IMAGE,
        )


def test_a_layer_without_media_type_or_a_config_without_one_is_malformed() -> None:
    from crgate.registry import MalformedManifestError

    bad_layer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": D3},
            "layers": [{}],
        }
    )
    with pytest.raises(MalformedManifestError, match=r"layers\[0\] has no mediaType"):
        parse_manifest(bad_layer.encode(), None, reference=REF)
    bad_config = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": D3}, "layers": []})
    with pytest.raises(MalformedManifestError, match="config descriptor has no mediaType"):
        parse_manifest(bad_config.encode(), None, reference=REF)
    typed = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": 3,
            "config": {"mediaType": OCI_CONFIG, "digest": D3},
            "layers": [],
        }
    )
    with pytest.raises(MalformedManifestError, match="artifactType is not a string"):
        parse_manifest(typed.encode(), None, reference=REF)
