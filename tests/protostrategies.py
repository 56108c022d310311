"""Hypothesis strategies for arbitrary Yandex scanner protobuf messages (the decoder and wire properties).

Every field can hold what a broken or hostile server might send: ids that are empty, hostile text or
another object's; strings with control characters and CI commands; enum numbers outside the enums;
negative and huge int64 counts; timestamps outside the range protobuf's ``Timestamp`` allows; ``Any``
values with arbitrary type URLs, bytes that do not parse, or a message of another type. The sane value
of each field is drawn often enough that whole consistent answers come up too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, timestamp_pb2
from google.rpc import status_pb2
from hypothesis import strategies as st

from crgate._proto.yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    scanner_pb2,
    scanner_service_pb2,
)
from crgate._proto.yandex.cloud.operation import operation_pb2
from hostile import IMAGE_ID, OP_ID, REPO, SCAN_ID

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
TYPE_PREFIX = "type.googleapis.com/"

# Text a server may put in any string field: controls, escapes, newlines with CI commands, bidi, long runs.
HOSTILE_FRAGMENTS = ["\x1b[2J", "\x1b]0;t\x07", "\n::warning::x", "\r##[error]x", "section_start:1:x", "\u202e", "\x9b"]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30) | st.lists(
    st.sampled_from(HOSTILE_FRAGMENTS) | st.text(max_size=3), max_size=5
).map("".join)


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` five times in six: an answer with several fields sane and one odd is the telling case, and
    whole consistent answers must come up too. Shrinking goes towards ``usual`` (the odd field stays)."""
    return st.integers(0, 5).flatmap(lambda n: other if n == 5 else usual)


def ids(*usual: str) -> st.SearchStrategy[str]:
    """An id field: one of the ``usual`` (the consistent answer), another well-formed id, or anything."""
    well_formed = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True)
    return mostly(st.sampled_from(usual), well_formed | st.just("") | TEXT)


def int64s() -> st.SearchStrategy[int]:
    return mostly(st.integers(0, 3), st.sampled_from([-1, INT64[0], INT64[1]]) | st.integers(*INT64))  # counts


def enum_numbers(*usual: int) -> st.SearchStrategy[int]:
    """An enum field: its known values, or any int32 (proto3 enums are open: unknown numbers arrive)."""
    return mostly(st.sampled_from(usual), st.integers(*INT32))


@st.composite
def timestamps(draw: st.DrawFn) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.seconds = draw(mostly(st.integers(1_600_000_000, 1_900_000_000), st.integers(*INT64)))
    stamp.nanos = draw(mostly(st.integers(0, 999_999_999), st.integers(*INT32)))
    return stamp


@st.composite
def stats(draw: st.DrawFn) -> scanner_pb2.VulnerabilityStats:
    names = ("critical", "high", "medium", "low", "negligible", "undefined")
    message = scanner_pb2.VulnerabilityStats()
    for name in names:
        setattr(message, name, draw(int64s()))
    return message


@st.composite
def sane_stats(draw: st.DrawFn) -> scanner_pb2.VulnerabilityStats:
    names = ("critical", "high", "medium", "low", "negligible", "undefined")
    return scanner_pb2.VulnerabilityStats(**{name: draw(st.integers(0, 3)) for name in names})


@st.composite
def sane_scan_results(draw: st.DrawFn, scan_id: str = SCAN_ID, image_id: str = IMAGE_ID) -> scanner_pb2.ScanResult:
    """The consistent answer: READY, the ids asked about, small counts, a valid time (statistics may be unset)."""
    message = scanner_pb2.ScanResult(id=scan_id, image_id=image_id, status=scanner_pb2.ScanResult.READY)
    if draw(mostly(st.just(True), st.just(False))):
        message.vulnerabilities.CopyFrom(draw(sane_stats()))
    message.scanned_at.FromSeconds(draw(st.integers(1_600_000_000, 1_900_000_000)))
    return message


@st.composite
def odd_scan_results(draw: st.DrawFn, scan_id: str = SCAN_ID, image_id: str = IMAGE_ID) -> scanner_pb2.ScanResult:
    Status = scanner_pb2.ScanResult
    message = scanner_pb2.ScanResult(
        id=draw(ids(scan_id)),
        image_id=draw(ids(image_id)),
        status=draw(enum_numbers(Status.READY, Status.READY, Status.RUNNING, Status.ERROR, 0)),
    )
    if draw(mostly(st.just(True), st.just(False))):
        message.vulnerabilities.CopyFrom(draw(stats()))
    if draw(st.booleans()):
        message.scanned_at.CopyFrom(draw(timestamps()))
    return message


def scan_results(scan_id: str = SCAN_ID, image_id: str = IMAGE_ID) -> st.SearchStrategy[scanner_pb2.ScanResult]:
    """A ScanResult: a third of them the consistent answer, the others with any field odd."""
    sane = sane_scan_results(scan_id, image_id)
    odd = odd_scan_results(scan_id, image_id)
    return st.integers(0, 2).flatmap(lambda n: sane if n == 0 else odd)


@st.composite
def other_messages(draw: st.DrawFn) -> Any:
    """A message of a type no scan answer should carry."""
    choice = draw(st.sampled_from(["image", "delete", "status", "operation"]))
    if choice == "image":
        return image_pb2.Image(id=draw(ids(IMAGE_ID)), name=REPO)
    if choice == "delete":
        return image_service_pb2.DeleteImageMetadata(image_id=draw(ids(IMAGE_ID)))
    if choice == "status":
        return status_pb2.Status(code=draw(st.integers(*INT32)), message=draw(TEXT))
    return operation_pb2.Operation(id=draw(ids(OP_ID)), done=draw(st.booleans()))


def packed(message: Any) -> any_pb2.Any:
    value = any_pb2.Any()
    value.Pack(message)
    return value


@st.composite
def anys(draw: st.DrawFn, usual: st.SearchStrategy[Any]) -> any_pb2.Any:
    """An ``Any``: usually the expected message, else another type, garbage bytes or an odd type URL."""
    kind = draw(mostly(st.just("usual"), st.sampled_from(["other", "garbage", "right_url_wrong_bytes", "odd_url"])))
    if kind == "usual":
        return packed(draw(usual))
    if kind == "other":
        return packed(draw(other_messages()))
    value = any_pb2.Any(value=draw(st.binary(max_size=40)))
    if kind == "right_url_wrong_bytes":
        full_name = draw(usual).DESCRIPTOR.full_name
        value.type_url = TYPE_PREFIX + full_name
        if draw(st.booleans()):  # a valid message of another type, under the expected type's URL
            value.value = draw(other_messages()).SerializeToString()
    elif kind == "odd_url":
        value.type_url = draw(TEXT | st.just(TYPE_PREFIX) | TEXT.map(lambda text: TYPE_PREFIX + text))
    else:
        value.type_url = draw(TEXT)
    return value


@st.composite
def sane_operations(draw: st.DrawFn, op_id: str, scan_id: str, done: bool) -> operation_pb2.Operation:
    """The consistent answer: the operation asked about with its ScanMetadata; when done, a READY result."""
    op = operation_pb2.Operation(id=op_id, done=done, description="Scan image")
    op.metadata.CopyFrom(packed(scanner_service_pb2.ScanMetadata(scan_result_id=scan_id)))
    if done:
        op.response.CopyFrom(packed(draw(sane_scan_results(scan_id))))
    return op


@st.composite
def odd_operations(draw: st.DrawFn, op_id: str, scan_id: str, done: bool) -> operation_pb2.Operation:
    op = operation_pb2.Operation(id=draw(ids(op_id)), done=draw(mostly(st.just(done), st.just(not done))))
    op.description = draw(mostly(st.just("Scan image"), TEXT))
    if draw(mostly(st.just(True), st.just(False))):
        metadata = st.builds(scanner_service_pb2.ScanMetadata, scan_result_id=ids(scan_id))
        op.metadata.CopyFrom(draw(anys(metadata)))
    usual = "response" if done else "none"
    result = draw(mostly(st.just(usual), st.sampled_from(["none", "response", "error", "both"])))
    if result in ("error", "both"):
        op.error.CopyFrom(status_pb2.Status(code=draw(st.integers(*INT32)), message=draw(TEXT)))
    if result in ("response", "both"):
        op.response.CopyFrom(draw(anys(scan_results(scan_id))))
    return op


def operations(
    op_id: str = OP_ID, scan_id: str = SCAN_ID, done: bool | None = None
) -> st.SearchStrategy[operation_pb2.Operation]:
    """A scan ``Operation``: a third of them consistent, the others with any of id, done, metadata, error
    and response odd (both error and response may be set in turn: they are a oneof). ``done`` decides what
    is usual: a running operation carries neither result, a done one a response (None: either)."""
    finished = st.booleans() if done is None else st.just(done)
    return st.tuples(st.integers(0, 2), finished).flatmap(
        lambda pick: (sane_operations if pick[0] == 0 else odd_operations)(op_id, scan_id, pick[1])
    )


@st.composite
def vulnerabilities(draw: st.DrawFn) -> scanner_pb2.Vulnerability:
    Severity = scanner_pb2.Vulnerability.Severity
    return scanner_pb2.Vulnerability(
        severity=draw(enum_numbers(*Severity.values())),
        package=scanner_pb2.PackageVulnerability(
            name=draw(st.sampled_from(["CVE-2024-0001", "TEMP-0001"]) | TEXT),
            link=draw(TEXT),
            package=draw(st.just("openssl") | TEXT),
            source=draw(TEXT),
            version=draw(TEXT),
            fixed_by=draw(TEXT),
            origin=draw(st.sampled_from(["os", "lang"]) | TEXT),
            type=draw(TEXT),
        ),
    )


@st.composite
def images(draw: st.DrawFn) -> image_pb2.Image:
    return image_pb2.Image(
        id=draw(ids(IMAGE_ID)),
        name=draw(st.sampled_from([REPO, REPO, ""]) | TEXT),
        digest=draw(st.just("sha256:" + "a" * 64) | TEXT),
        tags=draw(st.lists(st.sampled_from(["tag", "tag", "other"]) | TEXT, max_size=3)),
    )


def page_tokens() -> st.SearchStrategy[str]:
    return st.sampled_from(["", "", "", "next"]) | TEXT


@st.composite
def image_pages(draw: st.DrawFn) -> image_service_pb2.ListImagesResponse:
    return image_service_pb2.ListImagesResponse(
        images=draw(st.lists(images(), max_size=3)), next_page_token=draw(page_tokens())
    )


@st.composite
def scan_result_pages(draw: st.DrawFn) -> scanner_service_pb2.ListScanResultsResponse:
    return scanner_service_pb2.ListScanResultsResponse(
        scan_results=draw(st.lists(scan_results(), max_size=2)), next_page_token=draw(page_tokens())
    )


@st.composite
def vulnerability_pages(draw: st.DrawFn) -> scanner_service_pb2.ListVulnerabilitiesResponse:
    return scanner_service_pb2.ListVulnerabilitiesResponse(
        vulnerabilities=draw(st.lists(vulnerabilities(), max_size=3)), next_page_token=draw(page_tokens())
    )
