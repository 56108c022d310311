# crgate: generated from yandex-cloud/cloudapi@00e9ff043f54e3763b6f2cd2f900702e21af852d yandex/cloud/endpoint/api_endpoint.proto
# by tools/gen_stubs.py with grpcio-tools 1.63.0 (libprotoc 26.1). Do not edit; regenerate.
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ApiEndpoint(_message.Message):
    __slots__ = ("id", "address")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...
