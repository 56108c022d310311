"""Property tests of the decoder and the scan handle, fed arbitrary protobuf messages (pure, no network).

Whatever a server sends, decoding ends in one of two ways: a well-formed READY ``ScanResult`` for the
image that was asked about, with non-negative counts, or a crgate ``ScanError`` (``MalformedResponseError``
for an answer that makes no sense) whose message is printable as it is. Never another exception, never a
pass made of an anomaly: an operation that is done with neither error nor response, one with an error, a
response that is not a READY ScanResult of the image, all raise. The scan handle never returns a result
after the server contradicted itself, and always stops by its deadline. Short runs by default; the long
profile (``CRGATE_HYPOTHESIS_PROFILE=long``) runs thousands of examples and fails any slow one.
"""

from __future__ import annotations

import random

import pytest
from google.rpc import status_pb2
from hypothesis import event, given
from hypothesis import strategies as st

from crgate._proto.yandex.cloud.containerregistry.v1 import scanner_pb2
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate.errors import MalformedResponseError, ScanError, ScanFailedError, ScanTimeoutError
from crgate.images import ID_PATTERN
from crgate.model import SEVERITIES, ScanResult
from crgate.scanner.decode import (
    MAX_FINDING_TEXT,
    OperationState,
    decode_operation,
    decode_scan_result,
    decode_vulnerability,
)
from crgate.scanner.handle import ScanHandle, Snapshot
from crgate.textsafe import safe
from crgate.timing import Deadline, PollPolicy
from fakeclock import FakeClock
from hostile import IMAGE_ID, OP_ID, SCAN_ID
from protostrategies import operations, packed, sane_operations, scan_results, vulnerabilities
from test_untrusted_output import assert_clean

READY = scanner_pb2.ScanResult.READY


def assert_usable(result: ScanResult, *, image_id: str = IMAGE_ID) -> None:
    """What every result handed out must be: READY, for the image asked about, identified, counts >= 0."""
    assert result.status == "READY"
    assert result.image_id == image_id
    assert ID_PATTERN.fullmatch(result.id), result.id
    assert all(count >= 0 for count in result.counts.as_dict().values()), result.counts


def assert_printable(error: BaseException) -> None:
    """A crgate error's message may be printed as it is: no control character, no CI command."""
    assert_clean(str(error))


def unpacked_result(op: operation_pb2.Operation) -> scanner_pb2.ScanResult | None:
    """The ScanResult the operation's response holds, when it holds one that parses."""
    message = scanner_pb2.ScanResult()
    try:
        return message if op.response.Unpack(message) else None
    except Exception:  # noqa: BLE001 - bytes that do not parse: no ScanResult
        return None


@given(operations())
def test_an_operation_decodes_to_a_usable_state_or_a_scan_error(op: operation_pb2.Operation) -> None:
    try:
        state = decode_operation(op, image_id=IMAGE_ID, request_ids=["req-1"])
    except ScanError as error:
        event(f"raised {type(error).__name__}")
        assert_printable(error)
        return
    event("running" if state.result is None else "READY")
    assert isinstance(state, OperationState)
    assert state.operation_id == op.id and ID_PATTERN.fullmatch(op.id)
    # The anomalies that must never come out as a state, let alone a pass:
    assert not op.HasField("error"), "an operation carrying an error was accepted"
    if state.result is None:
        assert not op.done, "a done operation without a result was taken as still running"
        assert not op.HasField("response"), "a response before done was accepted"
        return
    assert op.done and op.HasField("response")
    assert_usable(state.result)
    message = unpacked_result(op)
    assert message is not None and message.status == READY, "a response that is not a READY ScanResult"
    assert state.result.counts.as_dict() == {name: getattr(message.vulnerabilities, name) for name in SEVERITIES}
    assert state.result.statistics_missing == (not message.HasField("vulnerabilities"))


# The id crgate asks about is one it checked before (from the operation's metadata, or a listed scan).
EXPECTED_IDS = st.sampled_from([None, SCAN_ID]) | st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True)


@given(scan_results(), EXPECTED_IDS)
def test_a_scan_result_decodes_to_a_usable_result_or_a_scan_error(
    message: scanner_pb2.ScanResult, expected_id: str | None
) -> None:
    try:
        result = decode_scan_result(message, image_id=IMAGE_ID, expected_id=expected_id, method="ScannerService.Get")
    except ScanError as error:
        event(f"raised {type(error).__name__}")
        assert_printable(error)
        if message.status == scanner_pb2.ScanResult.ERROR and ID_PATTERN.fullmatch(message.id or expected_id or ""):
            assert isinstance(error, ScanFailedError)  # the scanner's own verdict is not "malformed"
        return
    event("READY")
    assert_usable(result)
    assert message.status == READY
    if expected_id and message.id:
        assert message.id == expected_id, "a result with another id than the one asked for was accepted"
    assert result.id == (message.id or expected_id)


@given(vulnerabilities())
def test_a_finding_decodes_with_a_known_severity_and_an_id_or_is_malformed(message: scanner_pb2.Vulnerability) -> None:
    try:
        finding = decode_vulnerability(message, scan_result_id=SCAN_ID)
    except MalformedResponseError as error:
        event("malformed")
        assert_printable(error)
        return
    event("finding")
    assert finding.severity in SEVERITIES
    assert finding.cve
    fields = (finding.cve, finding.package, finding.version, finding.fixed_by, finding.link, finding.source)
    sent = message.package
    for text, original in zip(
        (*fields, finding.origin, finding.type),
        (sent.name, sent.package, sent.version, sent.fixed_by, sent.link, sent.source, sent.origin, sent.type),
        strict=True,
    ):
        # Lossless for machine formats (bounded), and inert wherever it is printed for people.
        assert text == (original if len(original) <= MAX_FINDING_TEXT else original[:MAX_FINDING_TEXT] + "...")
        assert_clean(safe(text))


# -- the scan handle ---------------------------------------------------------------------------------


FAILURES = st.sampled_from(
    [
        ScanError("could not follow", code="UNAVAILABLE", method="OperationService.Get"),
        ScanFailedError("the scan failed", code="INTERNAL"),
        MalformedResponseError("broken answer"),
        ScanTimeoutError("the --timeout passed"),
    ]
)
# One poll's answer: an operation to decode (as the client does), nothing new yet, or a failed call.
POLLS = st.one_of(
    operations(done=False).map(lambda op: ("op", op)),
    operations(done=True).map(lambda op: ("op", op)),
    st.just(("none", None)),
    FAILURES.map(lambda e: ("fail", e)),
)
HINTS = st.none() | st.floats(allow_nan=True, allow_infinity=True)


def decoded(op: operation_pb2.Operation, hint: float | None) -> Snapshot:
    state = decode_operation(op, image_id=IMAGE_ID, method="OperationService.Get")
    return Snapshot(
        state.operation_id, state.scan_result_id, state.result, poll_hint=hint, method="OperationService.Get"
    )


# The Scan call's answer: mostly a sane running operation (else start_scan raises and there is no handle).
FIRST_ANSWERS = sane_operations(OP_ID, SCAN_ID, False) | operations(done=False)


@given(FIRST_ANSWERS, st.lists(st.tuples(POLLS, HINTS), max_size=8), st.floats(0.5, 120))
def test_the_scan_handle_returns_only_a_consistent_usable_result_and_stops_by_its_deadline(
    first_op: operation_pb2.Operation, polls: list, seconds: float
) -> None:
    try:
        first = decoded(first_op, None)  # the Scan call's own answer
    except ScanError:
        event("the Scan answer itself raised")
        return  # start_scan raises it: there is no handle to wait on
    clock = FakeClock()
    deadline = Deadline(seconds, clock=clock)
    answers = iter(polls)
    taken: list[Snapshot] = [first]

    def refresh(handle: ScanHandle, deadline: Deadline) -> Snapshot | None:
        """One poll: the next scripted answer with its x-operation-poll-interval hint; then nothing new."""
        (kind, value), hint = next(answers, (("none", None), None))
        if kind == "fail":
            raise value
        if kind == "none":
            return None
        snapshot = decoded(value, hint)  # a malformed operation raises here, as in the client
        taken.append(snapshot)
        return snapshot

    handle = ScanHandle(
        IMAGE_ID, first, refresh=refresh, sleep=clock.sleep, poll_policy=PollPolicy(), rng=random.Random(0)
    )
    try:
        result = handle.result(deadline)
    except (ScanError, ScanTimeoutError) as error:
        event(f"raised {type(error).__name__}")
        assert_printable(error)
        assert clock.now <= deadline.expires  # it stopped, by the deadline at the latest
        if isinstance(error, ScanTimeoutError):
            assert not handle.done
        return
    event(f"READY after {handle.polls} polls")
    assert_usable(result)
    assert handle.done and result is taken[-1].result
    # Every answer taken in named the same operation, and at most one scan result.
    assert {snapshot.operation_id for snapshot in taken} == {first.operation_id}
    assert len({snapshot.scan_result_id for snapshot in taken} - {None}) <= 1


def _operation(**fields: object) -> operation_pb2.Operation:
    return operation_pb2.Operation(id="crpop1", **fields)


def _result(**fields: object) -> scanner_pb2.ScanResult:
    return scanner_pb2.ScanResult(**{"id": SCAN_ID, "image_id": IMAGE_ID, "status": READY, **fields})


PINNED_ANOMALIES = {
    "done without error or response": _operation(done=True),
    "an error": _operation(done=True, error=status_pb2.Status(code=13, message="scanner crashed")),
    "an error before done": _operation(done=False, error=status_pb2.Status(code=9, message="an index")),
    "a response of another type": _operation(done=True, response=packed(operation_pb2.Operation(id="x"))),
    "a result of another image": _operation(done=True, response=packed(_result(image_id="crpother"))),
    "a RUNNING result": _operation(done=True, response=packed(_result(status=scanner_pb2.ScanResult.RUNNING))),
    "a negative count": _operation(
        done=True, response=packed(_result(vulnerabilities=scanner_pb2.VulnerabilityStats(low=-1)))
    ),
    "another operation": operation_pb2.Operation(id="crpop2", done=True, response=packed(_result())),
}


@pytest.mark.parametrize("anomaly", sorted(PINNED_ANOMALIES))
def test_the_handle_never_turns_an_anomalous_poll_into_a_result(anomaly: str) -> None:
    """The property above, pinned for the anomalies the design names: each one raises."""
    clock = FakeClock()
    handle = ScanHandle(
        IMAGE_ID,
        decoded(_operation(done=False), None),
        refresh=lambda handle, deadline: decoded(PINNED_ANOMALIES[anomaly], None),
        sleep=clock.sleep,
        poll_policy=PollPolicy(),
        rng=random.Random(0),
    )
    with pytest.raises(ScanError):
        handle.result(Deadline(30, clock=clock))
