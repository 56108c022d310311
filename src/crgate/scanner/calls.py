"""One unary call with transient-failure retries inside the overall deadline, for the calls made outside
``ScannerClient`` (IAM token exchange, endpoint discovery, ``crgate doctor``)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from crgate.errors import ScanTimeoutError
from crgate.scanner.transport import Connection, RpcFailure
from crgate.timing import Deadline, RetryPolicy

log = logging.getLogger("crgate.scanner")

_C = grpc.StatusCode
# api-notes "Headers, retries, limits": what is worth retrying. DEADLINE_EXCEEDED is retried for reads,
# and for Scan only because every attempt carries the same idempotency key.
RETRYABLE = frozenset({_C.UNAVAILABLE, _C.RESOURCE_EXHAUSTED, _C.INTERNAL, _C.DEADLINE_EXCEEDED})
SHORT_RETRY = RetryPolicy(max_attempts=3)


def call_with_retries(
    connection: Connection,
    method: str,
    rpc: Any,
    request: Any,
    deadline: Deadline,
    *,
    anonymous: bool = False,
    retry: RetryPolicy = SHORT_RETRY,
    retryable: frozenset[grpc.StatusCode] = RETRYABLE,
    sleep: Callable[[float], None] = time.sleep,
    check_cancelled: Callable[[], None] = lambda: None,
    rng: random.Random | None = None,
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> tuple[Any, dict[str, str]]:
    """``connection.call`` retried on transient failures with jittered backoff, all inside ``deadline``.

    The one retry loop of crgate: the scanner client passes its own policy, a sleep that wakes on
    Ctrl-C and a cancellation check; IAM, discovery and doctor use the short default.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        check_cancelled()
        attempt += 1
        if deadline.expired():
            raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed before {method} could be called")
        try:
            return connection.call(
                method,
                rpc,
                request,
                timeout=deadline.call_timeout(connection.settings.per_call_timeout),
                anonymous=anonymous,
                extra_metadata=extra_metadata,
            )
        except RpcFailure as failure:
            check_cancelled()
            if failure.code == _C.DEADLINE_EXCEEDED and deadline.expired():
                raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed during {method}") from None
            if failure.code not in retryable or not failure.retryable:
                failure.earlier_attempts = attempt - 1
                raise
            if attempt >= retry.max_attempts:
                raise failure.with_note(f"gave up after {attempt} attempts") from None
            delay = retry.delay(attempt, rng)
            if delay >= deadline.remaining():
                if failure.code == _C.DEADLINE_EXCEEDED:  # the server kept not answering until time ran out
                    raise ScanTimeoutError(
                        f"the --timeout of {deadline.seconds:g}s ran out while {method} kept exceeding its "
                        f"per-call deadline ({attempt} attempts)"
                    ) from None
                raise failure.with_note(f"no time left under --timeout to retry after {attempt} attempts") from None
            log.info("%s failed with %s; retry %d in %.1fs", method, failure.code.name, attempt, delay)
            sleep(delay)
