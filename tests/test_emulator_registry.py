"""The emulator's registry side: multi-platform scenario data, what ImageService lists for it, the
registry endpoint's faults and anomalies, and what scanning an index does (fails like Yandex's)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import grpc
import pytest

from conftest import check_args, run_cli
from crgate._proto.yandex.cloud.containerregistry.v1 import image_service_pb2, image_service_pb2_grpc
from crgate.errors import ConfigError
from crgate.images import parse_image_ref
from crgate.registry import DigestMismatchError, RegistryClient, RegistryError
from crgate.timing import Deadline
from crgate_emulator import Emulator, scenario_from_dict

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def multi(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "registries": [
            {
                "id": "crptest",
                "repositories": [
                    {
                        "name": "app",
                        "images": [
                            {"id": "crpamd64", "platform": "linux/amd64", "scan": {"duration": 0.1}},
                            {
                                "id": "crparm64",
                                "platform": "linux/arm64/v8",
                                "scan": {"duration": 0.1},
                                "findings": [{"name": "CVE-2024-1", "severity": "CRITICAL", "package": "libc6"}],
                            },
                        ],
                        "indexes": [{"id": "crpmulti", "tags": ["multi"], "manifests": ["crpamd64", "crparm64"]}],
                    }
                ],
            }
        ]
    }
    data.update(extra)
    return data


def listed(emulator: Emulator) -> list[Any]:
    with grpc.insecure_channel(emulator.address) as channel:
        stub = image_service_pb2_grpc.ImageServiceStub(channel)
        request = image_service_pb2.ListImagesRequest(repository_name="crptest/app")
        return list(stub.List(request, timeout=5).images)


def test_image_service_lists_a_push_like_yandex_and_digests_are_the_manifests_own(start_emulator) -> None:
    emulator = start_emulator(multi())
    images = {image.id: image for image in listed(emulator)}
    attestations = sorted(i for i in images if i.startswith("crpatt"))
    assert sorted(images) == sorted(["crpamd64", "crparm64", "crpmulti", *attestations]) and len(attestations) == 2
    assert [list(images[i].tags) for i in ("crpmulti", "crpamd64", "crparm64", *attestations)] == [["multi"]] + [[]] * 4
    index = emulator.scenario.image("crpmulti")
    assert index is not None and index.media_type == INDEX_TYPE
    document = json.loads(index.manifest)
    assert [m["digest"] for m in document["manifests"][:2]] == [images["crpamd64"].digest, images["crparm64"].digest]
    assert {m["digest"] for m in document["manifests"][2:]} == {images[i].digest for i in attestations}
    for image in emulator.scenario.images():  # the registry and the image service agree on every digest
        assert image.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert all(images[i].compressed_size < 4096 for i in attestations)  # small, like real ones (~1.7 KB)


def test_without_attestations_and_as_a_docker_manifest_list(start_emulator) -> None:
    data = multi()
    data["registries"][0]["repositories"][0]["indexes"][0].update(attestations=False, format="docker")
    emulator = start_emulator(data)
    assert sorted(i.id for i in listed(emulator)) == ["crpamd64", "crparm64", "crpmulti"]
    client = RegistryClient(token_source=None, registry_url=emulator.registry_url)
    resolved = client.resolve(parse_image_ref("cr.yandex/crptest/app:multi"), Deadline(5))
    assert resolved.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert [c.platform for c in resolved.children] == ["linux/amd64", "linux/arm64/v8"] and not resolved.skipped


def index_entry(**changes: Any) -> dict[str, Any]:
    data = multi()
    data["registries"][0]["repositories"][0]["indexes"][0].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (index_entry(manifests=["crpnope"]), "indexes[0].manifests[0]'): 'crpnope' is not an image id"),
        (index_entry(manifests=["crpamd64", "crpamd64"]), "'crpamd64' is listed twice"),
        (index_entry(manifests=[]), "an index needs at least one platform image"),
        (index_entry(manifests=["crpmulti"]), "'crpmulti' is not an image id of this repository"),
        (index_entry(format="oci-ish"), "indexes[0].format'): expected one of OCI, DOCKER"),
        (index_entry(tags=["multi", 1]), "expected a non-empty string, got a number (quote it)"),
        (index_entry(colour="blue"), "indexes[0].colour'): unknown key"),
        (index_entry(id="Bad-Id"), "is not an id"),
        (multi(registry={"auth": "digest"}), "registry.auth'): expected one of BEARER, BASIC"),
        (multi(registry={"faults": [{"status": 200}]}), "registry.faults[0].status'): expected an integer >= 400"),
        (multi(registry={"faults": [{"status": 700}]}), "expected an HTTP error status 400-599"),
        (multi(registry={"anomaly": "sometimes"}), "expected one of wrong_digest_header"),
    ],
)
def test_bad_registry_scenario_data_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict(data, source="s.yaml")
    assert message in str(caught.value), str(caught.value)


def test_tags_of_indexes_and_images_share_one_namespace_and_platforms_are_checked() -> None:
    clash = copy.deepcopy(multi())
    clash["registries"][0]["repositories"][0]["images"][0]["tags"] = ["multi"]
    with pytest.raises(ConfigError, match="tag 'multi' already names image crpamd64"):
        scenario_from_dict(clash)
    bad = copy.deepcopy(multi())
    bad["registries"][0]["repositories"][0]["images"][0]["platform"] = "Linux/AMD64"
    with pytest.raises(ConfigError, match="platform'\\): expected OS/ARCH"):
        scenario_from_dict(bad)


def test_an_explicit_digest_that_is_not_the_manifests_makes_registry_and_image_service_disagree() -> None:
    data = multi()
    data["registries"][0]["repositories"][0]["images"][0].update(digest="sha256:" + "a" * 64, tags=["x"])
    with Emulator(scenario_from_dict(data)) as emulator:
        image = emulator.scenario.image("crpamd64")
        assert image is not None and image.digest == "sha256:" + "a" * 64 != image.manifest_digest
        client = RegistryClient(token_source=None, registry_url=emulator.registry_url)
        assert client.fetch(parse_image_ref("cr.yandex/crptest/app:x"), Deadline(5)).digest == image.manifest_digest


def test_registry_faults_are_retried_then_reported(start_emulator) -> None:
    emulator = start_emulator(multi(registry={"faults": [{"status": 503, "count": 2}, {"status": 500, "count": 3}]}))
    client = RegistryClient(token_source=None, registry_url=emulator.registry_url, sleep=lambda _: None)
    ref = parse_image_ref("cr.yandex/crptest/app:multi")
    with pytest.raises(RegistryError, match="answered HTTP 500; UNAVAILABLE: injected fault: HTTP 500"):
        client.resolve(ref, Deadline(5))  # 503, 503, 500: three attempts, all failed
    assert client.resolve(ref, Deadline(5)).is_index  # 500, 500, then the manifest
    assert emulator.stats.calls["HTTP registry manifest"] == 8  # and the index's two platform manifests


def test_a_wrong_digest_header_is_caught(start_emulator) -> None:
    emulator = start_emulator(multi(registry={"anomaly": "wrong_digest_header"}))
    client = RegistryClient(token_source=None, registry_url=emulator.registry_url)
    with pytest.raises(DigestMismatchError, match="but the bytes hash to"):
        client.resolve(parse_image_ref("cr.yandex/crptest/app:multi"), Deadline(5))


def test_scanning_an_index_by_id_fails_like_yandex_with_the_way_out(start_emulator) -> None:
    emulator = start_emulator(multi())
    result = run_cli(check_args(emulator, "--image-id", "crpmulti"))
    assert result.code == 3, result.output
    assert f"Image media type is not supported: {INDEX_TYPE}" in result.stdout
    assert "multi-platform index" in result.stdout and "--provenance=false" in result.stdout
    assert "code INVALID_ARGUMENT" in result.stdout
    assert emulator.stats.scans_started == 1
    platform = run_cli(check_args(emulator, "--image-id", "crparm64"))
    assert platform.code == 1, platform.output  # a platform image scans like any image


def test_emulator_exposes_its_registry_url() -> None:
    with Emulator(scenario_from_dict(multi())) as emulator:
        url = emulator.registry_url
        assert url.startswith("http://127.0.0.1:") and url != f"http://{emulator.address}"
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.registry_url
