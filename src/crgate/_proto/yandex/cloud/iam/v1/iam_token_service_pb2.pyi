# crgate: generated from yandex-cloud/cloudapi@00e9ff043f54e3763b6f2cd2f900702e21af852d yandex/cloud/iam/v1/iam_token_service.proto
# by tools/gen_stubs.py with grpcio-tools 1.63.0 (libprotoc 26.1). Do not edit; regenerate.
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from crgate._proto.yandex.cloud import validation_pb2 as _validation_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateIamTokenRequest(_message.Message):
    __slots__ = ("yandex_passport_oauth_token", "jwt")
    YANDEX_PASSPORT_OAUTH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    JWT_FIELD_NUMBER: _ClassVar[int]
    yandex_passport_oauth_token: str
    jwt: str
    def __init__(self, yandex_passport_oauth_token: _Optional[str] = ..., jwt: _Optional[str] = ...) -> None: ...

class CreateIamTokenForServiceAccountRequest(_message.Message):
    __slots__ = ("service_account_id",)
    SERVICE_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    service_account_id: str
    def __init__(self, service_account_id: _Optional[str] = ...) -> None: ...

class CreateIamTokenResponse(_message.Message):
    __slots__ = ("iam_token", "expires_at")
    IAM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    iam_token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, iam_token: _Optional[str] = ..., expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RevokeIamTokenRequest(_message.Message):
    __slots__ = ("iam_token",)
    IAM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    iam_token: str
    def __init__(self, iam_token: _Optional[str] = ...) -> None: ...

class RevokeIamTokenResponse(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...
