"""crgate's own stubs (``crgate._proto``) define exactly the wire of the official ``yandexcloud`` package.

For every file crgate's stubs hold, the serialized ``FileDescriptorProto`` (messages, fields, numbers, types,
labels, oneofs, enums, options, services, methods and streaming flags) must be byte for byte the SDK's, and
every gRPC stub method must have the SDK's path, cardinality and response type. Each side is loaded in its
own process (``tests/stubdump.py``): protobuf refuses the same symbols twice in one process. A mutation check
shows the comparison catches one changed field number.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, text_format

import crgate._proto
from crgate._proto import CLOUDAPI_COMMIT
from integration import need, sdk_installed

PROTO_ROOT = Path(crgate._proto.__file__).parent
DUMP = Path(__file__).resolve().parent / "stubdump.py"
MODULES = sorted(".".join(path.relative_to(PROTO_ROOT).with_suffix("").parts) for path in PROTO_ROOT.rglob("*_pb2*.py"))


def dumped(prefix: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(DUMP), prefix, *MODULES], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def descriptor_text(hex_bytes: str) -> list[str]:
    proto = descriptor_pb2.FileDescriptorProto.FromString(bytes.fromhex(hex_bytes))
    return text_format.MessageToString(proto).splitlines()


def differences(ours: dict, sdk: dict) -> list[str]:
    """Every way crgate's dump differs from the SDK's, as readable lines (empty: identical)."""
    found: list[str] = []
    for name, serialized in sorted(ours["files"].items()):
        theirs = sdk["files"].get(name)
        if theirs is None:
            found.append(f"{name}: not in the SDK")
        elif serialized != theirs:
            diff = difflib.unified_diff(
                descriptor_text(theirs), descriptor_text(serialized), "sdk", "crgate", lineterm=""
            )
            found.append(f"{name} differs:\n" + "\n".join(diff))
    for stub, methods in sorted(ours["stubs"].items()):
        if sdk["stubs"].get(stub) != methods:
            found.append(f"{stub}: {methods} != the SDK's {sdk['stubs'].get(stub)}")
    return found


@pytest.fixture(scope="module")
def both() -> tuple[dict, dict]:
    need(sdk_installed(), "the official SDK (yandexcloud, test extras) is not installed")
    return dumped("crgate._proto."), dumped("")


def test_the_stubs_cover_what_crgate_imports():
    assert {
        "yandex.cloud.containerregistry.v1.scanner_service_pb2_grpc",
        "yandex.cloud.operation.operation_pb2",
        "yandex.cloud.containerregistry.v1.scan_policy_service_pb2_grpc",  # doctor reads the scan policy
    } <= set(MODULES)
    assert len(MODULES) == 20  # 14 files, 6 of them with a service


def test_every_file_and_stub_is_the_sdks(both):
    ours, sdk = both
    assert len(ours["files"]) == 14 and len(ours["stubs"]) == 6
    assert sum(len(methods) for methods in ours["stubs"].values()) >= 10
    assert differences(ours, sdk) == []


def test_each_side_loads_alone(both):
    ours, sdk = both
    assert ours["foreign"] == [], "crgate's stubs imported the yandexcloud package"
    assert sdk["foreign"] == [], "the SDK's side imported crgate"


def test_a_changed_field_number_is_caught(both):
    ours, sdk = both
    name = "yandex/cloud/containerregistry/v1/scanner.proto"
    proto = descriptor_pb2.FileDescriptorProto.FromString(bytes.fromhex(ours["files"][name]))
    (result,) = (message for message in proto.message_type if message.name == "ScanResult")
    (status,) = (field for field in result.field if field.name == "status")
    status.number = 14
    mutated = {**ours, "files": {**ours["files"], name: proto.SerializeToString().hex()}}
    (found,) = differences(mutated, sdk)
    assert found.startswith(f"{name} differs:")
    assert "-    number: 4" in found and "+    number: 14" in found


def test_a_changed_method_path_is_caught(both):
    ours, sdk = both
    stub = "yandex.cloud.containerregistry.v1.scanner_service_pb2_grpc.ScannerServiceStub"
    methods = [dict(method) for method in ours["stubs"][stub]]
    methods[0]["path"] = methods[0]["path"].replace("ScannerService", "ScanService")
    (found,) = differences({**ours, "stubs": {**ours["stubs"], stub: methods}}, sdk)
    assert found.startswith(f"{stub}: ")


def test_every_generated_file_names_its_source():
    generated = [path for path in PROTO_ROOT.rglob("*_pb2*.py*") if path.suffix in (".py", ".pyi")]
    assert len(generated) == 2 * len(MODULES)
    for path in generated:
        head = path.read_text(encoding="utf-8").splitlines()[:2]
        assert head[0].startswith(f"# crgate: generated from yandex-cloud/cloudapi@{CLOUDAPI_COMMIT} yandex/"), path
        assert "tools/gen_stubs.py with grpcio-tools 1.63.0" in head[1], path


def test_crgate_and_its_emulator_run_on_their_own_stubs():
    program = (
        "import json, sys\n"
        "import crgate.cli, crgate.connect, crgate.doctor, crgate.scanner.client, crgate.scanner.iam\n"
        "import crgate.scanner.endpoints, crgate_emulator.server, crgate_emulator.services\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    assert not {name for name in loaded if name == "yandex" or name.startswith(("yandex.", "yandexcloud"))}
    assert "crgate._proto.yandex.cloud.containerregistry.v1.scanner_service_pb2_grpc" in loaded
