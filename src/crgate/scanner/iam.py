"""``IamTokenService.Create``: service-account JWTs and OAuth tokens exchanged for IAM tokens over gRPC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from crgate._proto.yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from crgate.errors import MalformedResponseError
from crgate.scanner.calls import call_with_retries
from crgate.scanner.credentials.tokens import Token
from crgate.scanner.transport import Connection, RpcFailure
from crgate.timing import Deadline

METHOD = "IamTokenService.Create"
JWT_HINT = (
    "The key was rejected: check that it still exists (yc iam key list --service-account-id <id>), that it is "
    "the key JSON of this cloud, and that this machine's clock is right (the JWT is time-stamped)"
)
OAUTH_HINT = (
    "The OAuth token was rejected (revoked or expired?). Yandex is retiring OAuth tokens: use a service "
    "account key (--sa-key) or workload identity federation (--federation-sa-id) instead"
)


class IamClient:
    """The ``IamExchange`` of the credential sources, on the connection's ``iam`` endpoint (no token sent)."""

    def __init__(
        self,
        connection: Connection,
        deadline: Deadline,
        *,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ):
        self._connection = connection
        self._deadline = deadline
        self._now = wall_clock

    def from_jwt(self, jwt: str, what: str) -> Token:
        request = iam_token_service_pb2.CreateIamTokenRequest(jwt=jwt)
        return self._create(request, what, JWT_HINT)

    def from_oauth(self, oauth_token: str, what: str) -> Token:
        request = iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token=oauth_token)
        return self._create(request, what, OAUTH_HINT)

    def _create(self, request: iam_token_service_pb2.CreateIamTokenRequest, what: str, hint: str) -> Token:
        stub = iam_token_service_pb2_grpc.IamTokenServiceStub(self._connection.channel("iam"))
        context = f"could not get an IAM token for the {what}"
        try:
            response, headers = call_with_retries(
                self._connection, METHOD, stub.Create, request, self._deadline, anonymous=True
            )
        except RpcFailure as failure:
            rejected = failure.code.name in ("UNAUTHENTICATED", "INVALID_ARGUMENT", "PERMISSION_DENIED")
            raise failure.to_scan_error(context, hint=hint if rejected else "") from None
        request_ids = [headers[h] for h in ("x-request-id", "x-server-trace-id") if h in headers]
        token = response.iam_token.strip()
        if not token or any(ch.isspace() for ch in token):
            raise MalformedResponseError(
                f"{context}: the answer has no usable iam_token", method=METHOD, request_ids=request_ids
            )
        lifetime = None
        if response.HasField("expires_at"):
            expires = response.expires_at.ToDatetime(tzinfo=dt.timezone.utc)
            lifetime = (expires - self._now()).total_seconds()
        return Token(token, lifetime)
