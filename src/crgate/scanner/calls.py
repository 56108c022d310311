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
from crgate.scanner.policies import Deadline, RetryPolicy
from crgate.scanner.transport import Connection, RpcFailure

log = logging.getLogger("crgate.scanner")

TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL})
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
    sleep: Callable[[float], None] = time.sleep,
    extra_metadata: Sequence[tuple[str, str]] = (),
) -> tuple[Any, dict[str, str]]:
    """``connection.call`` retried on UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL and read timeouts."""
    rng = random.Random()
    attempt = 0
    while True:
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
            if failure.code == grpc.StatusCode.DEADLINE_EXCEEDED and deadline.expired():
                raise ScanTimeoutError(f"the --timeout of {deadline.seconds:g}s passed during {method}") from None
            transient = failure.code in TRANSIENT or failure.code == grpc.StatusCode.DEADLINE_EXCEEDED
            delay = retry.delay(attempt, rng)
            if not transient or attempt >= retry.max_attempts or delay >= deadline.remaining():
                raise
            log.info("%s failed with %s; retry %d in %.1fs", method, failure.code.name, attempt, delay)
            sleep(delay)
