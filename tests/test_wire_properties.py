"""A property through the wire: a hostile gRPC server answers every method with arbitrary messages, random
bytes or error codes, and ``crgate check`` runs through the CLI against it.

Whatever it answers: no traceback or internal error, output free of terminal controls and CI commands,
one schema-valid JSON report whose exit code is the process's, never exit 2 (a server's answer is not a
usage error), and never a verdict (0 or 1) unless the server really served a consistent READY result: an
image it listed under the tag, a READY ScanResult of that image with that scan result id and non-negative
counts, the counts the report judged and the findings it listed. Each run is bounded by a short
``--timeout``; the default profile runs a handful of examples, the long one hundreds.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crgate._proto.yandex.cloud.containerregistry.v1 import image_service_pb2, scanner_pb2, scanner_service_pb2
from crgate._proto.yandex.cloud.operation import operation_pb2
from crgate.model import SEVERITIES
from hostile import (
    SEV,
    C,
    Handler,
    HostileServer,
    answer,
    check,
    done_op,
    fail,
    sane_handlers,
    scan_result,
    stats,
    vuln,
    vulns_page,
)
from protostrategies import (
    TEXT,
    image_pages,
    operations,
    scan_result_pages,
    scan_results,
    vulnerability_pages,
)
from test_untrusted_output import assert_clean

LONG = os.environ.get("CRGATE_HYPOTHESIS_PROFILE") == "long"
# Each example is one crgate run of up to --timeout seconds: few in the default suite.
EXAMPLES = 300 if LONG else 12
TIMEOUT = 1.0

# Arbitrary messages of each method's own response type (answers of a wrong type are the raw bytes case).
MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "ImageService.List": image_pages(),
    "ScannerService.List": scan_result_pages(),
    "ScannerService.GetLast": scan_results(),  # asked under the reuse policy
    "ScannerService.Scan": operations(done=False) | operations(),
    "OperationService.Get": operations(done=True) | operations(),
    "ScannerService.Get": scan_results(),
    "ScannerService.ListVulnerabilities": vulnerability_pages(),
}
CODES = st.sampled_from([C.UNAVAILABLE, C.INTERNAL, C.RESOURCE_EXHAUSTED, C.NOT_FOUND, C.INVALID_ARGUMENT, C.UNKNOWN])
# One answer: the sane one (so whole consistent runs come up), a message, bytes, or an error.
ANSWERS = {
    method: st.one_of(
        st.just(("sane", None)),
        st.just(("sane", None)),
        messages.map(lambda message: ("message", message)),
        st.binary(max_size=60).map(lambda data: ("bytes", data)),
        st.tuples(CODES, TEXT).map(lambda error: ("error", error)),
    )
    for method, messages in MESSAGES.items()
}
SCRIPTS = st.fixed_dictionaries(
    {method: st.lists(answers, min_size=1, max_size=3) for method, answers in ANSWERS.items()}
)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, str]:
    """The default limits, without and with ``reuse`` (then the image's last result, GetLast, may be judged)."""
    directory = tmp_path_factory.mktemp("policies")
    paths = {}
    for reuse in (False, True):
        path = directory / f"policy-{reuse}.yaml"
        path.write_text(
            "version: 1\nthresholds: {critical: 0, high: 0}\n" + ("reuse: {max_age: 24h}\n" if reuse else "")
        )
        paths[reuse] = str(path)
    return paths


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.stop()


class Served:
    """What the server answered, per method, in order (errors leave no answer)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Any]] = defaultdict(list)
        self._lock = threading.Lock()

    def recording(self, method: str, handler: Handler) -> Handler:
        def record(request: Any, context: Any, n: int) -> Any:
            value = handler(request, context, n)
            with self._lock:
                self.answers[method].append(value)
            return value

        return record

    def parsed(self, method: str, message_type: Any) -> list[Any]:
        """Every answer of ``method`` that a client could have read as ``message_type``."""
        messages = []
        for value in self.answers[method]:
            if isinstance(value, bytes):
                try:
                    value = message_type.FromString(value)
                except Exception:  # noqa: BLE001 - garbage: the client could not read it either
                    continue
            if isinstance(value, message_type):
                messages.append(value)
        return messages


def sane_answers(high: int) -> dict[str, Handler]:
    """The well-behaved registry of ``hostile.sane_handlers``, its scan finding ``high`` HIGH vulnerabilities
    (and, unlike it, a last READY result from just now for GetLast)."""
    handlers = sane_handlers()
    result = scan_result(vulns=stats(high=high))
    handlers["OperationService.Get"] = answer(done_op(response=result))
    handlers["ScannerService.Get"] = answer(result)
    handlers["ScannerService.GetLast"] = answer(result)  # fresh: reused under the reuse policy
    handlers["ScannerService.ListVulnerabilities"] = answer(
        vulns_page(*(vuln(f"CVE-2024-{n:04d}", SEV.HIGH) for n in range(high)))
    )
    return handlers


def handler_for(method: str, script: list[tuple[str, Any]], sane: Handler) -> Handler:

    def one(step: tuple[str, Any]) -> Handler:
        kind, value = step
        if kind == "sane":
            return sane
        if kind == "error":
            code, details = value
            return fail(code, details)
        return lambda request, context, n: value

    steps = [one(step) for step in script]
    return lambda request, context, n: steps[min(n, len(steps)) - 1](request, context, n)


def served_results(served: Served) -> list[scanner_pb2.ScanResult]:
    """Every ScanResult the server handed out, wherever it was (operation responses, Get, GetLast, List)."""
    results = served.parsed("ScannerService.Get", scanner_pb2.ScanResult)
    results += served.parsed("ScannerService.GetLast", scanner_pb2.ScanResult)
    for page in served.parsed("ScannerService.List", scanner_service_pb2.ListScanResultsResponse):
        results.extend(page.scan_results)
    for method in ("ScannerService.Scan", "OperationService.Get"):
        for op in served.parsed(method, operation_pb2.Operation):
            message = scanner_pb2.ScanResult()
            try:
                if op.response.Unpack(message):
                    results.append(message)
            except Exception:  # noqa: BLE001 - a response that does not parse carries no result
                continue
    return results


def assert_verdict_was_served(image: dict[str, Any], served: Served) -> None:
    """A verdict (pass or fail) must rest on what the server really said, consistently."""
    listed = {
        listed.id
        for page in served.parsed("ImageService.List", image_service_pb2.ListImagesResponse)
        for listed in page.images
        if "tag" in listed.tags
    }
    assert image["image_id"] in listed, "judged an image the server never listed under the tag"
    matching = [
        result
        for result in served_results(served)
        if result.id == image["scan_result_id"]
        and result.image_id == image["image_id"]
        and result.status == scanner_pb2.ScanResult.READY
    ]
    assert matching, "judged without a READY result of the image from the server"
    counts = image["counts"]
    assert all(counts[name] >= 0 for name in SEVERITIES)

    def consistent(result: scanner_pb2.ScanResult) -> bool:
        """Its statistics are the judged counts; one without any is judged by its listed findings."""
        stats = result.vulnerabilities
        return not result.HasField("vulnerabilities") or all(getattr(stats, n) == counts[n] for n in SEVERITIES)

    assert any(consistent(result) for result in matching), "judged counts no READY result of the image carried"
    assert len(image["findings"]) == sum(counts[name] for name in SEVERITIES)
    served_findings = sum(
        len(page.vulnerabilities)
        for page in served.parsed("ScannerService.ListVulnerabilities", scanner_service_pb2.ListVulnerabilitiesResponse)
    )
    assert served_findings >= len(image["findings"]), "judged findings the server never listed"


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(SCRIPTS, st.integers(0, 2), st.booleans())
def test_crgate_check_against_arbitrary_answers_never_invents_a_verdict(
    hostile: HostileServer, policies: dict[bool, str], scripts: dict[str, list[tuple[str, Any]]], high: int, reuse: bool
) -> None:
    served = Served()
    sane = sane_answers(high)
    hostile.calls = Counter()
    hostile.handlers = {
        method: served.recording(method, handler_for(method, script, sane[method]))
        for method, script in scripts.items()
    }
    # no traceback, no internal error, one schema-valid JSON report with the exit code
    result = check(hostile, "--policy", policies[reuse], timeout=TIMEOUT)
    assert_clean(result.output)
    event(f"exit {result.code}")
    assert result.code in (0, 1, 3, 4), result.output
    [image] = result.doc["images"]
    if result.code in (0, 1):
        assert image["error"] is None
        assert_verdict_was_served(image, served)
        violated = image["counts"]["critical"] > 0 or image["counts"]["high"] > 0  # the default policy
        assert violated == (result.code == 1), result.output
    else:
        assert image["error"] is not None and image["verdict"] == "error"
