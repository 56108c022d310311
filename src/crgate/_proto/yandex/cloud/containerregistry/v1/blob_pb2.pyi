# crgate: generated from yandex-cloud/cloudapi@00e9ff043f54e3763b6f2cd2f900702e21af852d yandex/cloud/containerregistry/v1/blob.proto
# by tools/gen_stubs.py with grpcio-tools 1.63.0 (libprotoc 26.1). Do not edit; regenerate.
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Blob(_message.Message):
    __slots__ = ("id", "digest", "size", "urls")
    ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    id: str
    digest: str
    size: int
    urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., urls: _Optional[_Iterable[str]] = ...) -> None: ...
