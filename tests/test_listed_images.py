"""``ImageService.List`` entries are decoded fail-closed: an entry crgate cannot name exactly is malformed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crgate._proto.yandex.cloud.containerregistry.v1 import image_pb2
from crgate.errors import MalformedResponseError
from crgate.scanner.decode import decode_listed_image

DIGEST = "sha256:" + "ab" * 32


def message(**fields: object) -> image_pb2.Image:
    values = {"id": "crpimage01", "name": "crpreg/team/app", "digest": DIGEST, "tags": ["1.0", "latest"], **fields}
    image = image_pb2.Image(**values)
    image.created_at.FromSeconds(1_760_000_000)
    return image


def test_a_good_entry_is_decoded_losslessly():
    image = decode_listed_image(message(), method="ImageService.List")
    assert (image.id, image.repository_name, image.digest, image.tags) == (
        "crpimage01",
        "crpreg/team/app",
        DIGEST,
        ("1.0", "latest"),
    )
    assert (image.registry_id, image.repository) == ("crpreg", "team/app")
    assert image.created_at is not None and image.created_at.year == 2025


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"id": ""}, "not an identifier"),
        ({"name": "crpreg"}, "is not <registry-id>/<repository>"),
        ({"name": "crpreg/App"}, "is not <registry-id>/<repository>"),
        ({"digest": "sha256:abc"}, "is not sha256:<64 hex digits>"),
        ({"digest": ""}, "is not sha256:<64 hex digits>"),
        ({"tags": ["ok", "\x1b[31mred"]}, "is not a tag"),
        ({"tags": ["x" * 129]}, "is not a tag"),
        ({"tags": [f"t{n}" for n in range(1001)]}, "more than 1000"),
    ],
)
def test_a_malformed_entry_is_refused_naming_what_is_wrong(fields, why):
    with pytest.raises(MalformedResponseError, match="malformed image|not an identifier") as raised:
        decode_listed_image(message(**fields), method="ImageService.List")
    assert why in str(raised.value) and "\x1b" not in str(raised.value)


@given(  # each field either well-formed or arbitrary text, so both branches are exercised
    name=st.one_of(
        st.from_regex(r"[a-z0-9]{1,10}/[a-z0-9]{1,10}(/[a-z0-9]{1,5})?", fullmatch=True), st.text(max_size=80)
    ),
    digest=st.one_of(st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True), st.text(max_size=80)),
    tags=st.lists(
        st.one_of(st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,20}", fullmatch=True), st.text(max_size=40)), max_size=5
    ),
)
def test_any_entry_decodes_to_exactly_what_was_sent_or_is_malformed(name, digest, tags):
    try:
        image = decode_listed_image(message(name=name, digest=digest, tags=tags), method="ImageService.List")
    except MalformedResponseError:
        return
    assert (image.repository_name, image.digest, list(image.tags)) == (name, digest, tags)
