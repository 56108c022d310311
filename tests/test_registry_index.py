"""Pure registry logic: parsing manifest documents fail-closed, choosing what an index gates,
``--platform`` values, labels, ``WWW-Authenticate`` challenges and where credentials may go."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crgate.errors import ConfigError
from crgate.registry import MalformedManifestError, PlatformNotFoundError, label, parse_platform
from crgate.registry.artifacts import OCI_CONFIG
from crgate.registry.auth import check_realm, parse_challenges, pick_challenge
from crgate.registry.errors import RegistryError
from crgate.registry.index import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Platform,
    parse_manifest,
    select,
)

D1, D2, D3, D4 = ("sha256:" + c * 64 for c in "1234")
REF = "cr.yandex/crptest/app:multi"


def entry(digest: str, platform: str | None, media_type: str = OCI_MANIFEST, **annotations: str) -> dict[str, Any]:
    item: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": 400}
    if platform:
        os_name, arch, *variant = platform.split("/")
        item["platform"] = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
    if annotations:
        item["annotations"] = {k.replace("_", "."): v for k, v in annotations.items()}
    return item


def index(*entries: dict[str, Any], media_type: str = OCI_INDEX) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": list(entries)}).encode()


ATTESTATION = {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": D1}
BUILDX = index(
    entry(D1, "linux/amd64"),
    entry(D2, "linux/arm64/v8"),
    {**entry(D3, "unknown/unknown"), "annotations": ATTESTATION},
    {**entry(D4, "unknown/unknown"), "annotations": {**ATTESTATION, "vnd.docker.reference.digest": D2}},
)


def resolve(data: bytes, content_type: str | None = OCI_INDEX, platforms: tuple[str, ...] = ()) -> Any:
    manifest = parse_manifest(data, content_type, reference=REF)
    return select(manifest, reference=REF, digest=D1, platforms=[parse_platform(p) for p in platforms])


def test_buildx_index_gates_each_platform_and_skips_attestations() -> None:
    resolved = resolve(BUILDX)
    assert resolved.is_index
    assert [(c.digest, c.platform) for c in resolved.children] == [(D1, "linux/amd64"), (D2, "linux/arm64/v8")]
    assert [(s.digest, s.reason) for s in resolved.skipped] == [(D3, "attestation"), (D4, "attestation")]
    assert resolved.platforms == ("linux/amd64", "linux/arm64/v8")


def test_an_unknown_platform_is_an_attestation_but_an_annotation_alone_hides_no_platform() -> None:
    only_annotation = {**entry(D3, "linux/arm64"), "annotations": ATTESTATION}
    only_platform = entry(D4, "unknown/unknown")
    resolved = resolve(index(entry(D1, "linux/amd64"), only_annotation, only_platform))
    assert [(c.digest, c.platform) for c in resolved.children] == [(D1, "linux/amd64"), (D3, "linux/arm64")]
    assert [s.digest for s in resolved.skipped] == [D4]
    assert resolved.children[0].notes == ()
    (note,) = resolved.children[1].notes
    assert D3 in note and "platform linux/arm64" in note and "attestation-manifest" in note
    assert "gated as an image" in note and REF in note


def test_docker_manifest_list_and_single_manifests() -> None:
    listed = resolve(index(entry(D1, "linux/amd64", DOCKER_MANIFEST), media_type=DOCKER_MANIFEST_LIST), None)
    assert listed.is_index and listed.children[0].media_type == DOCKER_MANIFEST
    config = {"mediaType": OCI_CONFIG, "digest": D2}
    single = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []})
    resolved = resolve(single.encode(), OCI_MANIFEST, platforms=("linux/s390x",))  # --platform: indexes only
    assert not resolved.is_index and [(c.digest, c.platform) for c in resolved.children] == [(D1, None)]
    # OCI allows a document without mediaType: the Content-Type decides.
    untyped = json.dumps({"schemaVersion": 2, "config": {"mediaType": OCI_CONFIG, "digest": D2}, "layers": []}).encode()
    assert parse_manifest(untyped, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", reference=REF)


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (b"not json", OCI_INDEX, "not valid JSON"),
        (b"\xff\xfe", OCI_INDEX, "not UTF-8"),
        (b"[]", OCI_INDEX, "not a JSON object"),
        (b'{"schemaVersion": 1, "mediaType": "%s"}' % OCI_INDEX.encode(), None, "schemaVersion"),
        (b'{"schemaVersion": true, "manifests": []}', OCI_INDEX, "schemaVersion"),
        (b'{"schemaVersion": 2, "manifests": []}', "application/json", "media type 'application/json'"),
        (b'{"schemaVersion": 2, "manifests": []}', None, "media type missing"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}',
            None,
            "not one crgate reads",
        ),
        (b'{"schemaVersion": 2, "mediaType": "%s", "manifests": []}' % OCI_INDEX.encode(), OCI_MANIFEST, "sent it as"),
        (b'{"schemaVersion": 2, "schemaVersion": 2, "manifests": []}', OCI_INDEX, "duplicate key 'schemaVersion'"),
        (b'{"schemaVersion": 2, "manifests": [], "x": NaN}', OCI_INDEX, "NaN is not valid JSON"),
        (b'{"schemaVersion": 2}', OCI_INDEX, "must list its manifests"),
        (b'{"schemaVersion": 2, "manifests": [], "layers": []}', OCI_INDEX, "must not have config or layers"),
        (b'{"schemaVersion": 2, "layers": []}', OCI_MANIFEST, "config descriptor"),
        (b'{"schemaVersion": 2, "config": {"digest": "x"}}', OCI_MANIFEST, "list its layers"),
        (b'{"schemaVersion": 2, "config": {"digest": "x"}, "layers": [], "manifests": []}', OCI_MANIFEST, "must not"),
        (index({"digest": D1, "size": 1}), OCI_INDEX, "manifests[0] has no mediaType"),
        (index({**entry(D1, None), "digest": "sha256:abc"}), OCI_INDEX, "manifests[0] has digest 'sha256:abc'"),
        (index({**entry(D1, None), "size": -1}), OCI_INDEX, "no valid size"),
        (index({**entry(D1, None), "size": True}), OCI_INDEX, "no valid size"),
        (index({**entry(D1, None), "platform": {"os": "Linux", "architecture": "amd64"}}), OCI_INDEX, "platform.os"),
        (index({**entry(D1, None), "platform": {"os": "linux"}}), OCI_INDEX, "platform.architecture is missing"),
        (index({**entry(D1, None), "annotations": {"a": 1}}), OCI_INDEX, "annotations that are not strings"),
        (index(*[entry(D1, "linux/amd64")] * 1001), OCI_INDEX, "more than crgate's limit of 1000"),
        (b"[" * 100000 + b"]" * 100000, OCI_INDEX, "not valid JSON"),
    ],
)
def test_malformed_documents_fail_closed(data: bytes, content_type: str | None, why: str) -> None:
    with pytest.raises(MalformedManifestError) as caught:
        parse_manifest(data, content_type, reference=REF)
    assert why in str(caught.value) and REF in str(caught.value)
    assert caught.value.exit_code == 3


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ((entry(D1, "linux/amd64", OCI_INDEX),), "nested indexes are not supported"),
        ((entry(D1, "linux/amd64", "application/vnd.cncf.helm.config.v1+json"),), "neither an image manifest"),
        (({**entry(D3, "unknown/unknown"), "annotations": ATTESTATION},), "lists no platform images"),
        ((), "lists no platform images"),
    ],
)
def test_indexes_crgate_cannot_gate_fail_closed(entries: tuple[dict[str, Any], ...], why: str) -> None:
    with pytest.raises(MalformedManifestError, match=why):
        resolve(index(*entries))


def test_control_characters_from_the_server_are_never_printed_raw() -> None:
    hostile = index({**entry(D1, None), "mediaType": "x\x1b[31mred\x07"})
    with pytest.raises(MalformedManifestError) as caught:
        resolve(hostile)
    assert "\x1b" not in str(caught.value) and "\x07" not in str(caught.value)


@pytest.mark.parametrize(
    ("wanted", "gated"),
    [
        (("linux/arm64",), [D2]),
        (("linux/arm64/v8",), [D2]),
        (("linux/amd64", "linux/arm64"), [D1, D2]),
    ],
)
def test_platform_filter(wanted: tuple[str, ...], gated: list[str]) -> None:
    assert [c.digest for c in resolve(BUILDX, platforms=wanted).children] == gated


def test_platform_filter_matching_nothing_names_the_platforms_offered() -> None:
    with pytest.raises(PlatformNotFoundError) as caught:
        resolve(BUILDX, platforms=("linux/arm/v7", "windows/amd64"))
    assert str(caught.value) == (
        f"{REF} is a multi-platform index without linux/arm/v7 or windows/amd64; "
        "it offers linux/amd64, linux/arm64/v8 (adjust --platform)"
    )


def test_one_image_listed_twice_is_gated_once_and_entries_without_platform_only_without_a_filter() -> None:
    data = index(entry(D1, "linux/amd64"), entry(D1, "linux/386"), entry(D2, None))
    assert [(c.digest, c.platform) for c in resolve(data).children] == [(D1, "linux/amd64"), (D2, None)]
    assert [c.digest for c in resolve(data, platforms=("linux/386",)).children] == [D1]


@pytest.mark.parametrize(
    ("have", "want", "matches"),
    [
        ("linux/arm64", "linux/arm64/v8", True),  # arm64 means arm64/v8
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/arm/v6", "linux/arm", True),  # no variant wanted: every variant
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/arm", "linux/arm/v7", True),  # arm means arm/v7
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_platform_matching(have: str, want: str, matches: bool) -> None:
    assert Platform(*have.split("/")).matches(parse_platform(want)) is matches


@pytest.mark.parametrize("text", ["linux", "linux/", "Linux/AMD64", "linux/amd64/v8/x", "linux/am d64", ""])
def test_bad_platform_values_are_usage_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--platform: .* is not a platform; expected OS/ARCH"):
        parse_platform(text)


def test_labels() -> None:
    assert label(REF, "linux/arm64") == f"{REF} [linux/arm64]"
    assert label(REF, None) == REF


# ---------------------------------------------------------------------------------------------- auth


def test_challenges_as_registries_send_them() -> None:
    bearer = 'Bearer realm="https://cr.yandex/token",service="cr.yandex",scope="repository:crp1/app:pull"'
    (challenge,) = parse_challenges([bearer])
    assert challenge.scheme == "bearer" and challenge.realm == "https://cr.yandex/token"
    assert challenge.params == {
        "realm": "https://cr.yandex/token",
        "service": "cr.yandex",
        "scope": "repository:crp1/app:pull",
    }
    several = parse_challenges(
        ['Negotiate, Basic realm="a \\"quoted\\" realm", Bearer realm="https://x/t"', "Foo abc=="]
    )
    assert [(c.scheme, c.realm) for c in several] == [
        ("negotiate", ""),
        ("basic", 'a "quoted" realm'),
        ("bearer", "https://x/t"),
        ("foo", ""),
    ]
    assert pick_challenge(several, "https://x").scheme == "bearer"
    assert pick_challenge(parse_challenges(['Basic realm="r"']), "https://x").scheme == "basic"


@pytest.mark.parametrize("header", ["", "=", ",,,", '"', 'Bearer realm="unterminated', "\x00" * 10000])
def test_garbage_challenges_parse_to_something_harmless(header: str) -> None:
    challenges = parse_challenges([header])
    assert all(c.scheme.isascii() for c in challenges)


def test_an_unknown_scheme_is_an_error_naming_it() -> None:
    with pytest.raises(RegistryError, match=r"schemes offered: negotiate"):
        pick_challenge(parse_challenges(["Negotiate"]), "https://cr.yandex")


@pytest.mark.parametrize(
    ("realm", "registry", "allowed"),
    [
        ("https://cr.yandex/token", "https://cr.yandex", True),
        ("https://cr.yandex:8443/token", "https://cr.yandex", True),  # the registry's host, any port
        ("https://cr.cloud.yandex.net/token", "https://cr.yandex", True),  # Yandex's registry, another name
        ("https://auth.yandex.cloud/registry/token", "https://cr.yandex", True),  # Yandex's token service
        ("http://127.0.0.1:5000/token", "http://127.0.0.1:5000", True),
        ("http://127.0.0.1:6000/token", "http://127.0.0.1:5000", True),  # loopback, same host
        # Not every Yandex domain: anyone can serve functions, gateways and buckets under them.
        ("https://auth.cr.yandex/token", "https://cr.yandex", False),
        ("https://iam.api.cloud.yandex.net/registry", "https://cr.cloud.yandex.net", False),
        ("https://functions.yandexcloud.net/d4e0000000", "https://cr.yandex", False),
        ("https://bucket.website.yandexcloud.net/token", "https://cr.yandex", False),
        ("https://auth.yandex.cloud/token", "https://registry.example", False),  # a foreign registry
        ("http://localhost:5000/token", "http://127.0.0.1:5000", False),  # another loopback name
        ("http://127.0.0.1:6000/token", "https://cr.yandex", False),  # Yandex sending us to this machine
        ("https://user:pw@cr.yandex/token", "https://cr.yandex", False),
        ("https://attacker.example/token", "https://cr.yandex", False),
        ("https://cr.yandex.attacker.example/token", "https://cr.yandex", False),
        ("http://cr.yandex/token", "https://cr.yandex", False),  # plain http off loopback
        ("https://cr.yandex/token", "http://127.0.0.1:5000", False),  # a local registry sending us to Yandex
        ("ftp://cr.yandex/token", "https://cr.yandex", False),
        ("", "https://cr.yandex", False),
    ],
)
def test_where_the_iam_token_may_go(realm: str, registry: str, allowed: bool) -> None:
    if allowed:
        assert check_realm(realm, registry) == realm
    else:
        with pytest.raises(RegistryError):
            check_realm(realm, registry)
