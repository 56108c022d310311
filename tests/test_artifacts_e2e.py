"""Only container images pass (issue 18, items 1 and 2), through the CLI against a real registry server
(Debian's docker-registry, with the artifacts pushed as oras and buildx push them) and against the
emulator's registry endpoint, which must behave the same:

- an SBOM (oras 1.0 and 1.1 forms), an in-toto attestation or a cosign signature named directly is
  exit 3 naming what it is, and no Scan is called, whatever the policy's ``unscannable`` says;
- an index entry with a real platform is gated whatever its annotations claim, and the contradiction is
  reported; an index whose platform entry is really an SBOM is exit 3, not a skipped entry.
"""

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

TOKEN = "t1.artifacts-test"
REPO = "crptest/app"
HIGH = [finding("CVE-2024-0100", "HIGH", package="zlib")]
ATTESTATION_NOTE = {"vnd.docker.reference.type": "attestation-manifest"}


def gate(args: list[str]) -> tuple[Any, dict[str, Any]]:
    result = run_cli([*args, "--format", "json"])
    assert "Traceback" not in result.output, result.output
    return result, json.loads(result.stdout)


def scans(emulator: Emulator) -> list[str]:
    return sorted(attempt.image_id for attempt in emulator.stats.scan_log("started"))


def scanner_calls(emulator: Emulator) -> int:
    return sum(n for name, n in emulator.stats.calls.items() if name.startswith("ScannerService"))


# -- a real registry ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    registry = start_real_registry(tmp_path_factory.mktemp("registry"), TOKEN)
    try:
        pusher = Pusher(registry.url, registry.user, registry.password)
        amd64 = pusher.image(REPO, "linux/amd64")
        arm64 = pusher.image(REPO, "linux/arm64")
        pushed: dict[str, Any] = {
            "amd64": amd64,
            "arm64": arm64,
            "sbom": pusher.sbom(REPO, "sbom"),
            "sbom11": pusher.sbom(REPO, "sbom11", oras_1_1=True),
            "attestation": pusher.attestation(REPO, amd64, tag="attestation", predicate="https://spdx.dev/Document"),
        }
        # buildx's shape, but the arm64 image's own entry carries the attestation annotation
        pushed["annotated"], _ = pusher.index(
            REPO, "annotated", {"linux/amd64": amd64, "linux/arm64": arm64}, annotate={"linux/arm64": ATTESTATION_NOTE}
        )
        # an index whose linux/arm64 entry is an SBOM, not an image
        sbom = pushed["sbom"]
        pushed["disguised"], _ = pusher.index(REPO, "disguised", {"linux/amd64": amd64, "linux/arm64": sbom})
        yield registry, pushed
    finally:
        registry.stop()


def scanner_for(start_emulator: Any, pushed: dict[str, Any]) -> Emulator:
    """The scanner side knows every digest the registry holds (Yandex lists every manifest of a push)."""
    listed = [
        {
            "id": f"crp{name}",
            "digest": item.digest,
            "findings": HIGH if name == "arm64" else [],
            "scan": {"duration": 0.1},
        }
        for name, item in pushed.items()
    ]
    repository = {"name": "app", "images": listed}
    return start_emulator({"registries": [{"id": "crptest", "repositories": [repository]}]})


def real_args(registry: Any, emulator: Emulator, *refs: str) -> list[str]:
    return [
        "check",
        "--endpoint",
        emulator.address,
        "--insecure",
        "--registry-url",
        registry.url,
        "--iam-token",
        TOKEN,
        "--progress",
        "none",
        "--timeout",
        "60",
        *refs,
    ]


@pytest.mark.parametrize(
    ("tag", "what"),
    [
        ("sbom", "is an SPDX SBOM (config application/vnd.unknown.config.v1+json, layer application/spdx+json)"),
        ("sbom11", "is an SPDX SBOM (artifactType application/spdx+json, config application/vnd.oci.empty.v1+json"),
        ("attestation", "is an in-toto attestation (an SPDX SBOM) (layer application/vnd.in-toto+json)"),
    ],
)
@pytest.mark.parametrize("unscannable", ["warn", "skip"])
def test_a_real_registry_artifact_is_exit_3_and_never_scanned(
    real, start_emulator, tmp_path: Path, tag: str, what: str, unscannable: str
) -> None:
    registry, pushed = real
    emulator = scanner_for(start_emulator, pushed)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nthresholds:\n  critical: 0\nunscannable: {unscannable}\n")
    ref = f"cr.yandex/{REPO}:{tag}"
    result, doc = gate([*real_args(registry, emulator, ref), "--policy", str(policy)])
    assert result.code == 3, result.output
    (image,) = doc["images"]
    assert image["verdict"] == "error" and image["error"]["kind"] == "not_an_image"
    assert f"{ref} {what}" in image["error"]["message"]
    assert "not a container image" in image["error"]["message"] and "not a container image" in result.stderr
    assert scanner_calls(emulator) == 0 and scans(emulator) == []


def test_a_real_registry_annotation_does_not_hide_a_platform(real, start_emulator) -> None:
    registry, pushed = real
    emulator = scanner_for(start_emulator, pushed)
    ref = f"cr.yandex/{REPO}:annotated"
    result, doc = gate(real_args(registry, emulator, ref))
    assert result.code == 1, result.output  # the arm64 image has a high finding: it was gated
    rows = [(i["platform"], i["verdict"]) for i in doc["images"]]
    assert rows == [("linux/amd64", "pass"), ("linux/arm64", "fail")]
    assert scans(emulator) == ["crpamd64", "crparm64"]
    arm64 = doc["images"][1]
    contradiction = [w for w in arm64["warnings"] if "attestation-manifest" in w]
    assert contradiction and pushed["arm64"].digest in contradiction[0] and "gated as an image" in contradiction[0]
    assert "gated as an image" in result.stderr
    assert doc["references"][0]["pinned"] == f"cr.yandex/{REPO}@{pushed['annotated'].digest}"


def test_a_real_registry_platform_entry_that_is_an_sbom_is_exit_3(real, start_emulator) -> None:
    registry, pushed = real
    emulator = scanner_for(start_emulator, pushed)
    result, doc = gate(real_args(registry, emulator, f"cr.yandex/{REPO}:disguised"))
    assert result.code == 3, result.output
    message = doc["images"][0]["error"]["message"]
    assert "for platform linux/arm64" in message and "an SPDX SBOM" in message and pushed["sbom"].digest in message
    assert scans(emulator) == []


# -- the emulator's registry endpoint -------------------------------------------------------------------


def emulated() -> dict[str, Any]:
    images = [
        {"id": "crpamd64", "platform": "linux/amd64", "scan": {"duration": 0.1}},
        {"id": "crparm64", "platform": "linux/arm64", "findings": HIGH, "scan": {"duration": 0.1}},
        {"id": "crpsbom", "tags": ["sbom"], "artifact": "sbom"},
        {"id": "crpintoto", "tags": ["attestation"], "artifact": "attestation"},
        {"id": "crpsig", "tags": ["signature"], "artifact": "signature"},
    ]
    indexes = [
        {
            "id": "crpannotated",
            "tags": ["annotated"],
            "manifests": ["crpamd64", {"id": "crparm64", "annotations": ATTESTATION_NOTE}],
        }
    ]
    return {"registries": [{"id": "crptest", "repositories": [{"name": "app", "images": images, "indexes": indexes}]}]}


@pytest.mark.parametrize(
    ("tag", "what"),
    [
        ("sbom", "an SPDX SBOM"),
        ("attestation", "an in-toto attestation (an SPDX SBOM)"),
        ("signature", "a cosign signature"),
    ],
)
def test_an_emulated_artifact_is_exit_3_and_never_scanned(start_emulator, tag: str, what: str) -> None:
    emulator = start_emulator(emulated())
    ref = f"cr.yandex/{REPO}:{tag}"
    result, doc = gate(check_args(emulator, ref))
    assert result.code == 3, result.output
    assert doc["images"][0]["error"]["kind"] == "not_an_image"
    assert f"{ref} is {what}" in doc["images"][0]["error"]["message"]
    assert scanner_calls(emulator) == 0


def test_an_emulated_annotation_does_not_hide_a_platform(start_emulator) -> None:
    emulator = start_emulator(emulated())
    result, doc = gate(check_args(emulator, f"cr.yandex/{REPO}:annotated"))
    assert result.code == 1, result.output
    assert [(i["platform"], i["verdict"]) for i in doc["images"]] == [("linux/amd64", "pass"), ("linux/arm64", "fail")]
    assert any("gated as an image" in w for w in doc["images"][1]["warnings"])
    assert scans(emulator) == ["crpamd64", "crparm64"]


def test_an_emulated_artifact_fails_a_run_that_also_has_a_passing_image(start_emulator) -> None:
    emulator = start_emulator(emulated())
    result, doc = gate(
        check_args(emulator, f"cr.yandex/{REPO}:sbom", f"cr.yandex/{REPO}:annotated", "--platform", "linux/amd64")
    )
    assert result.code == 3, result.output  # the worst of: an artifact (3), a passing amd64 image
    assert [i["verdict"] for i in doc["images"]] == ["error", "pass"]
