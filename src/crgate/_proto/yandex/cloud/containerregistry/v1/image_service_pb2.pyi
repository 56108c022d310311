# crgate: generated from yandex-cloud/cloudapi@00e9ff043f54e3763b6f2cd2f900702e21af852d yandex/cloud/containerregistry/v1/image_service.proto
# by tools/gen_stubs.py with grpcio-tools 1.63.0 (libprotoc 26.1). Do not edit; regenerate.
from google.api import annotations_pb2 as _annotations_pb2
from crgate._proto.yandex.cloud.api import operation_pb2 as _operation_pb2
from crgate._proto.yandex.cloud.containerregistry.v1 import image_pb2 as _image_pb2
from crgate._proto.yandex.cloud.operation import operation_pb2 as _operation_pb2_1
from crgate._proto.yandex.cloud import validation_pb2 as _validation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListImagesRequest(_message.Message):
    __slots__ = ("registry_id", "repository_name", "folder_id", "page_size", "page_token", "filter", "order_by")
    REGISTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_NAME_FIELD_NUMBER: _ClassVar[int]
    FOLDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    registry_id: str
    repository_name: str
    folder_id: str
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, registry_id: _Optional[str] = ..., repository_name: _Optional[str] = ..., folder_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("images", "next_page_token")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_image_pb2.Image]
    next_page_token: str
    def __init__(self, images: _Optional[_Iterable[_Union[_image_pb2.Image, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...

class DeleteImageMetadata(_message.Message):
    __slots__ = ("image_id",)
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    image_id: str
    def __init__(self, image_id: _Optional[str] = ...) -> None: ...
