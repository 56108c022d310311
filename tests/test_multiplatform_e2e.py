"""Multi-platform pushes gated through the CLI (issue 12): each platform image is its own row and its
own scan; the index and attestation manifests are never scanned; references are pinned to what they
resolved to. Against the emulator (registry and scanner side) and against a real registry server
(Debian's docker-registry) with the emulator serving the scanner side for the same digests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import check_args, finding, run_cli
from crgate_emulator import Emulator
from ocipush import Pusher
from realregistry import start_real_registry

TOKEN = "t1.multiplatform-test"
MULTI = "cr.yandex/crptest/app:multi"
PLATFORMS = ("linux/amd64", "linux/arm64/v8")
HIGH = [finding("CVE-2024-0100", "HIGH", package="zlib")]


def scanned_images(emulator: Emulator) -> list[str]:
    return sorted(attempt.image_id for attempt in emulator.stats.scan_log("started"))


def gate(*args: str) -> tuple[Any, dict[str, Any]]:
    result = run_cli([*args, "--format", "json"])
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


# -- against the emulator's registry --------------------------------------------------------------------


def emulator_data(docker: bool = False) -> dict[str, Any]:
    fmt = {"format": "docker"} if docker else {}
    return {
        "registries": [
            {
                "id": "crptest",
                "repositories": [
                    {
                        "name": "app",
                        "images": [
                            {"id": "crpamd64", "platform": "linux/amd64", "scan": {"duration": 0.1}, **fmt},
                            {
                                "id": "crparm64",
                                "platform": "linux/arm64/v8",
                                "findings": HIGH,
                                "scan": {"duration": 0.1},
                                **fmt,
                            },
                            {"id": "crpclean", "tags": ["clean"], "scan": {"duration": 0.1}},
                        ],
                        "indexes": [
                            {"id": "crpmulti", "tags": ["multi"], "manifests": ["crpamd64", "crparm64"], **fmt}
                        ],
                    }
                ],
            }
        ]
    }


@pytest.fixture(params=["oci", "docker"])
def emu(request: pytest.FixtureRequest, start_emulator: Any) -> Emulator:
    return start_emulator(emulator_data(docker=request.param == "docker"))


def test_an_index_is_gated_per_platform_and_never_scanned_itself(emu):
    result, doc = gate(*check_args(emu, MULTI))
    assert result.code == 1, result.output
    rows = [(i["ref"], i["platform"], i["verdict"]) for i in doc["images"]]
    assert rows == [
        (f"{MULTI} [linux/amd64]", "linux/amd64", "pass"),
        (f"{MULTI} [linux/arm64/v8]", "linux/arm64/v8", "fail"),
    ]
    assert scanned_images(emu) == ["crpamd64", "crparm64"]  # not the index, not an attestation
    index = emu.scenario.image("crpmulti")
    assert index is not None
    assert {i["index_digest"] for i in doc["images"]} == {index.digest}
    assert {i["digest"] for i in doc["images"]} == {emu.scenario.image(x).digest for x in ("crpamd64", "crparm64")}
    assert doc["references"] == [
        {"ref": MULTI, "digest": index.digest, "index": True, "pinned": f"cr.yandex/crptest/app@{index.digest}"}
    ]
    assert f"{MULTI} [linux/arm64/v8]  FAIL" in result.stderr  # the human table names the platform


def test_platform_restricts_what_an_index_gates(emu):
    result, doc = gate(*check_args(emu, MULTI, "--platform", "linux/amd64"))
    assert result.code == 0, result.output
    assert [i["ref"] for i in doc["images"]] == [f"{MULTI} [linux/amd64]"]
    assert scanned_images(emu) == ["crpamd64"]


def test_a_platform_the_index_does_not_offer_names_the_ones_it_does(emu):
    result, doc = gate(*check_args(emu, MULTI, "--platform", "linux/s390x"))
    assert result.code == 3, result.output
    message = doc["images"][0]["error"]["message"]
    assert "linux/s390x" in message and "linux/amd64" in message and "linux/arm64/v8" in message
    assert scanned_images(emu) == []


def test_a_bad_platform_is_exit_2_before_any_call(emu):
    result = run_cli(check_args(emu, MULTI, "--platform", "Linux"))
    assert result.code == 2, result.output
    assert "--platform: 'Linux' is not a platform" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_an_index_by_image_id_is_refused_by_the_scanner_with_the_multi_platform_hint(emu):
    result, doc = gate(*check_args(emu, "--image-id", "crpmulti"))
    assert result.code == 3, result.output
    message = doc["images"][0]["error"]["message"]
    assert "Image media type is not supported" in message and "multi-platform" in message


def test_a_child_the_image_service_does_not_know_is_exit_3_named(start_emulator):
    data = emulator_data()
    data["registries"][0]["repositories"][0]["images"][1]["digest"] = "sha256:" + "9" * 64  # listed under another
    emu = start_emulator(data)
    result, doc = gate(*check_args(emu, MULTI))
    assert result.code == 3, result.output
    verdicts = {i["ref"]: (i["verdict"], i["error"]["message"] if i["error"] else None) for i in doc["images"]}
    assert verdicts[f"{MULTI} [linux/amd64]"] == ("pass", None)
    arm = verdicts[f"{MULTI} [linux/arm64/v8]"]
    assert arm[0] == "error" and "its linux/arm64/v8 image" in arm[1] and "has no image with that digest" in arm[1]
    assert scanned_images(emu) == ["crpamd64"]


def test_the_demo_has_a_multi_platform_tag():
    result, doc = gate("check", "--emulator", "--progress", "none", "cr.yandex/crpdemo/app:multi")
    assert result.code == 1, result.output  # arm64 has a high finding
    assert [i["platform"] for i in doc["images"]] == ["linux/amd64", "linux/arm64/v8"]


# -- pinning what deploys -------------------------------------------------------------------------------


def manifest_text() -> str:
    return (
        "# the web tier\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata: {name: web}\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        f"        - name: web\n          image: {MULTI}   # pinned by crgate\n"
        "        - name: proxy\n          image: 'docker.io/envoyproxy/envoy:v1.30.1'\n"
        "---\n"
        "kind: Pod\n"
        "metadata: {name: job}\n"
        "spec:\n"
        "  containers:\n"
        '    - {name: job, image: "cr.yandex/crptest/app:clean"}\n'
    )


def test_pin_to_writes_the_gated_digests_and_keeps_everything_else(start_emulator, tmp_path: Path):
    emu = start_emulator(emulator_data())
    manifest, pinned = tmp_path / "deploy.yaml", tmp_path / "pinned.yaml"
    manifest.write_text(manifest_text())
    args = check_args(emu, "--from-manifest", str(manifest), "--pin-to", str(pinned), "--platform", "linux/amd64")
    result = run_cli(args)
    assert result.code == 0, result.output
    index, clean = emu.scenario.image("crpmulti"), emu.scenario.image("crpclean")
    assert index is not None and clean is not None
    expected = (
        manifest_text()
        .replace(MULTI, f"cr.yandex/crptest/app@{index.digest}")
        .replace("cr.yandex/crptest/app:clean", f"cr.yandex/crptest/app@{clean.digest}")
    )
    assert pinned.read_text() == expected  # comments, quoting, other images and documents untouched
    assert "pinned 2 image(s)" in result.stderr


def test_pin_to_is_not_written_when_the_verdict_is_not_pass(start_emulator, tmp_path: Path):
    emu = start_emulator(emulator_data())
    manifest, pinned = tmp_path / "deploy.yaml", tmp_path / "pinned.yaml"
    manifest.write_text(manifest_text())
    result = run_cli(check_args(emu, "--from-manifest", str(manifest), "--pin-to", str(pinned)))
    assert result.code == 1, result.output  # the arm64 image has a high finding
    assert not pinned.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["deploy.yaml"]
    assert "--pin-to" in result.stderr and "not written" in result.stderr


def test_pin_to_into_a_missing_directory_is_exit_2_before_any_call(start_emulator, tmp_path: Path):
    emu = start_emulator(emulator_data())
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(manifest_text())
    result = run_cli(check_args(emu, "--from-manifest", str(manifest), "--pin-to", str(tmp_path / "no" / "x.yaml")))
    assert result.code == 2, result.output
    assert "--pin-to" in result.stderr and "cannot write" in result.stderr
    assert sum(emu.stats.calls.values()) == 0


def test_pin_to_needs_exactly_one_manifest(start_emulator, tmp_path: Path):
    emu = start_emulator(emulator_data())
    result = run_cli(check_args(emu, MULTI, "--pin-to", str(tmp_path / "x.yaml")))
    assert result.code == 2 and "exactly one --from-manifest" in result.stderr


# -- against a real registry server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    """docker-registry with an OCI index (and attestations) and a Docker manifest list pushed for real."""
    registry = start_real_registry(tmp_path_factory.mktemp("registry"), TOKEN)
    try:
        pusher = Pusher(registry.url, registry.user, registry.password)
        pushed: dict[str, Any] = {}
        for tag, docker in (("multi", False), ("multi-docker", True)):
            images = {platform: pusher.image("crptest/app", platform, docker=docker) for platform in PLATFORMS}
            index, attested = pusher.index("crptest/app", tag, images, docker=docker)
            pushed[tag] = (index, images, attested)
        yield registry, pushed
    finally:
        registry.stop()


@pytest.mark.parametrize("tag", ["multi", "multi-docker"])
def test_a_real_registry_index_is_gated_per_platform(real, tag, start_emulator):
    registry, pushed = real
    index, images, attested = pushed[tag]
    # The scanner side knows the same digests, as Yandex's image service lists every manifest of a push.
    listed = [{"id": "crpidx", "tags": [tag], "digest": index.digest}]
    listed += [
        {
            "id": f"crp{n}",
            "digest": image.digest,
            "findings": HIGH if n else [],
            "scan": {"duration": 0.1},
        }
        for n, image in enumerate(images.values())
    ]
    listed += [{"id": f"crpatt{n}", "digest": a.digest} for n, a in enumerate(attested.values())]
    emu = start_emulator({"registries": [{"id": "crptest", "repositories": [{"name": "app", "images": listed}]}]})
    args = ["check", "--endpoint", emu.address, "--insecure", "--registry-url", registry.url, "--iam-token", TOKEN]
    result, doc = gate(*args, "--progress", "none", f"cr.yandex/crptest/app:{tag}")
    assert result.code == 1, result.output
    assert [(i["platform"], i["verdict"]) for i in doc["images"]] == [
        ("linux/amd64", "pass"),
        ("linux/arm64/v8", "fail"),
    ]
    assert scanned_images(emu) == ["crp0", "crp1"]  # neither the index nor an attestation
    assert doc["references"][0]["pinned"] == f"cr.yandex/crptest/app@{index.digest}"


def test_a_real_registry_refuses_a_wrong_token_and_nothing_is_scanned(real, start_emulator):
    registry, _ = real
    emu = start_emulator(emulator_data())
    args = ["check", "--endpoint", emu.address, "--insecure", "--registry-url", registry.url]
    result, doc = gate(*args, "--iam-token", "t1.wrong", "--progress", "none", MULTI)
    assert result.code == 3, result.output
    assert "container-registry.images.puller" in doc["images"][0]["error"]["message"]
    assert scanned_images(emu) == []
