# crgate: generated from yandex-cloud/cloudapi@00e9ff043f54e3763b6f2cd2f900702e21af852d yandex/cloud/containerregistry/v1/scanner.proto
# by tools/gen_stubs.py with grpcio-tools 1.63.0 (libprotoc 26.1). Do not edit; regenerate.
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from crgate._proto.yandex.cloud import validation_pb2 as _validation_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScanResult(_message.Message):
    __slots__ = ("id", "image_id", "scanned_at", "status", "vulnerabilities")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ScanResult.Status]
        RUNNING: _ClassVar[ScanResult.Status]
        READY: _ClassVar[ScanResult.Status]
        ERROR: _ClassVar[ScanResult.Status]
    STATUS_UNSPECIFIED: ScanResult.Status
    RUNNING: ScanResult.Status
    READY: ScanResult.Status
    ERROR: ScanResult.Status
    ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SCANNED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    image_id: str
    scanned_at: _timestamp_pb2.Timestamp
    status: ScanResult.Status
    vulnerabilities: VulnerabilityStats
    def __init__(self, id: _Optional[str] = ..., image_id: _Optional[str] = ..., scanned_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[ScanResult.Status, str]] = ..., vulnerabilities: _Optional[_Union[VulnerabilityStats, _Mapping]] = ...) -> None: ...

class VulnerabilityStats(_message.Message):
    __slots__ = ("critical", "high", "medium", "low", "negligible", "undefined")
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    MEDIUM_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    NEGLIGIBLE_FIELD_NUMBER: _ClassVar[int]
    UNDEFINED_FIELD_NUMBER: _ClassVar[int]
    critical: int
    high: int
    medium: int
    low: int
    negligible: int
    undefined: int
    def __init__(self, critical: _Optional[int] = ..., high: _Optional[int] = ..., medium: _Optional[int] = ..., low: _Optional[int] = ..., negligible: _Optional[int] = ..., undefined: _Optional[int] = ...) -> None: ...

class Vulnerability(_message.Message):
    __slots__ = ("package", "severity")
    class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SEVERITY_UNSPECIFIED: _ClassVar[Vulnerability.Severity]
        CRITICAL: _ClassVar[Vulnerability.Severity]
        HIGH: _ClassVar[Vulnerability.Severity]
        MEDIUM: _ClassVar[Vulnerability.Severity]
        LOW: _ClassVar[Vulnerability.Severity]
        NEGLIGIBLE: _ClassVar[Vulnerability.Severity]
        UNDEFINED: _ClassVar[Vulnerability.Severity]
    SEVERITY_UNSPECIFIED: Vulnerability.Severity
    CRITICAL: Vulnerability.Severity
    HIGH: Vulnerability.Severity
    MEDIUM: Vulnerability.Severity
    LOW: Vulnerability.Severity
    NEGLIGIBLE: Vulnerability.Severity
    UNDEFINED: Vulnerability.Severity
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    package: PackageVulnerability
    severity: Vulnerability.Severity
    def __init__(self, package: _Optional[_Union[PackageVulnerability, _Mapping]] = ..., severity: _Optional[_Union[Vulnerability.Severity, str]] = ...) -> None: ...

class PackageVulnerability(_message.Message):
    __slots__ = ("name", "link", "package", "source", "version", "fixed_by", "origin", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FIXED_BY_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    link: str
    package: str
    source: str
    version: str
    fixed_by: str
    origin: str
    type: str
    def __init__(self, name: _Optional[str] = ..., link: _Optional[str] = ..., package: _Optional[str] = ..., source: _Optional[str] = ..., version: _Optional[str] = ..., fixed_by: _Optional[str] = ..., origin: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...
