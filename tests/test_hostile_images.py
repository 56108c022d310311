"""Hostile ImageService.List answers: paging that cycles or never ends, ambiguous or inexact
matches, error codes, retries and garbage on the wire.
"""

from __future__ import annotations

import pytest

from hostile import (
    DIGEST_A,
    DIGEST_B,
    C,
    answer,
    assert_fails_closed,
    check,
    error_of,
    fail,
    images_page,
    img,
    raw,
    sequence,
)


def test_image_list_tokens_that_cycle_stop_at_the_first_repeat(server):
    tokens = ["a", "b", "c", "a", "b", "c"]
    server.handlers["ImageService.List"] = lambda request, context, n: images_page(token=tokens[(n - 1) % 3])
    result = check(server)
    assert_fails_closed(result, 3, "repeated page token 'a'", "malformed")
    assert server.calls["ImageService.List"] == 4
    assert [r.page_token for r in server.requests["ImageService.List"]] == ["", "a", "b", "c"]
    assert server.calls["ScannerService.Scan"] == 0


def test_image_list_that_never_ends_is_bounded(server):
    server.handlers["ImageService.List"] = lambda request, context, n: images_page(token=f"t{n}")
    result = check(server, timeout=30)
    assert_fails_closed(result, 3, "more than 1000 pages", "malformed")
    assert server.calls["ImageService.List"] == 1000
    assert server.calls["ScannerService.Scan"] == 0


def test_empty_pages_with_tokens_then_the_image_resolve(server):
    server.handlers["ImageService.List"] = sequence(
        answer(images_page(token="p2")), answer(images_page(token="p3")), answer(images_page(img()))
    )
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ImageService.List"] == 3


def test_the_same_image_on_two_pages_is_scanned_once(server):
    server.handlers["ImageService.List"] = sequence(answer(images_page(img(), token="p2")), answer(images_page(img())))
    result = check(server)
    assert result.code == 0, result.output
    assert server.calls["ScannerService.Scan"] == 1


def test_matching_image_with_an_empty_id_is_malformed(server):
    server.handlers["ImageService.List"] = answer(images_page(img(image_id="")))
    result = check(server)
    assert_fails_closed(result, 3, "image id that is not an identifier (empty)", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


def test_the_digest_of_a_tag_on_two_images_across_pages_is_ambiguous(server):
    """The registry says which manifest the tag names; two images of that digest (on two pages) are
    not a choice crgate makes."""
    server.handlers["ImageService.List"] = sequence(
        answer(images_page(img("crpimg1"), token="p2")), answer(images_page(img("crpimg2", tags=())))
    )
    result = check(server)
    assert_fails_closed(result, 3, "ambiguous", "malformed")
    assert "crpimg1" in error_of(result)["message"] and "crpimg2" in error_of(result)["message"]
    assert server.calls["ScannerService.Scan"] == 0


def test_digest_two_images_share_is_ambiguous(server):
    server.handlers["ImageService.List"] = answer(images_page(img("crpimg1", tags=()), img("crpimg2", tags=())))
    result = check(server, refs=(f"cr.yandex/crptest/app@{DIGEST_A}",))
    assert_fails_closed(result, 3, "ambiguous", "malformed")
    assert server.calls["ScannerService.Scan"] == 0


def test_digest_in_upper_case_does_not_match(server):
    server.handlers["ImageService.List"] = answer(images_page(img(digest=DIGEST_A.upper())))
    result = check(server, refs=(f"cr.yandex/crptest/app@{DIGEST_A}",))
    assert_fails_closed(result, 3, "not found", "not_found")
    assert server.calls["ScannerService.Scan"] == 0


def test_the_registry_decides_what_a_tag_names_not_the_image_listing(server):
    """The image service lists the tag on an image of another digest (a tag that moved, or a stale
    listing): crgate gates what the registry serves for the tag, never a look-alike by tag."""
    server.registry.tags["tag"] = DIGEST_B
    server.handlers["ImageService.List"] = answer(images_page(img(tags=("tag", "Tag", "tag2", "latest"))))
    result = check(server)
    assert_fails_closed(result, 3, f"the registry serves manifest {DIGEST_B}", "not_found")
    assert "has no image with that digest" in error_of(result)["message"]
    assert server.calls["ScannerService.Scan"] == 0


def test_image_of_another_repository_is_not_taken(server):
    server.handlers["ImageService.List"] = answer(images_page(img(name="crptest/other")))
    result = check(server)
    assert result.code == 3, result.output
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize(
    "code",
    [
        C.UNIMPLEMENTED,
        C.UNKNOWN,
        C.DATA_LOSS,
        C.ABORTED,
        C.OUT_OF_RANGE,
        C.FAILED_PRECONDITION,
        C.INVALID_ARGUMENT,
        C.ALREADY_EXISTS,
        C.CANCELLED,
        C.PERMISSION_DENIED,
        C.UNAUTHENTICATED,
    ],
)
def test_image_list_error_codes_are_exit_3_without_retry(server, code):
    server.handlers["ImageService.List"] = fail(code, "listing refused")
    result = check(server)
    error = assert_fails_closed(result, 3, "could not list images of repository crptest/app: listing refused")
    assert error["code"] == code.name
    assert error["method"] == "ImageService.List"
    assert error["request_ids"]
    assert server.calls["ImageService.List"] == 1
    assert server.calls["ScannerService.Scan"] == 0


@pytest.mark.parametrize("code", [C.UNAVAILABLE, C.INTERNAL, C.RESOURCE_EXHAUSTED])
def test_image_list_transient_errors_are_retried_a_bounded_number_of_times(server, code):
    server.handlers["ImageService.List"] = fail(code, "flaky")
    result = check(server, timeout=2)
    error = assert_fails_closed(result, 3, "could not list images")
    assert error["code"] == code.name
    assert "attempts" in error["message"]
    assert 2 <= server.calls["ImageService.List"] <= 8


def test_image_list_garbage_on_the_wire_is_exit_3(server):
    server.handlers["ImageService.List"] = raw(b"\xff\xff\xff\xff\x0f garbage")
    result = check(server, timeout=2)
    assert_fails_closed(result, 3, "could not list images")
    assert 1 <= server.calls["ImageService.List"] <= 8
