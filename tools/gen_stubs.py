"""Regenerate crgate's own Yandex Cloud stubs (``src/crgate/_proto/yandex/...``) from a cloudapi checkout.

crgate needs a dozen of Yandex's ``.proto`` files, not the 65 MB ``yandexcloud`` package. This script
compiles exactly the files crgate and its emulator import (``ROOTS``) and what they import under
``yandex/`` (``google/api`` and ``google/rpc`` come from googleapis-common-protos at run time), then rewrites
the generated imports from ``yandex.cloud...`` to ``crgate._proto.yandex.cloud...``, so the stubs live inside
crgate's package and never collide with an installed ``yandexcloud`` on disk. The protobuf symbols and file
names stay Yandex's (``yandex.cloud.containerregistry.v1.ScanResult``, ``yandex/cloud/...proto``): that is
the wire, type URLs included. One process cannot load both crgate's stubs and ``yandexcloud``'s.

Run (fetches nothing; the generator is pinned because it decides the protobuf and grpcio floors)::

    python -m venv /tmp/gen && /tmp/gen/bin/pip install grpcio-tools==1.63.0 mypy-protobuf==3.6.0
    git clone https://github.com/yandex-cloud/cloudapi /tmp/cloudapi && git -C /tmp/cloudapi checkout <COMMIT>
    /tmp/gen/bin/python tools/gen_stubs.py /tmp/cloudapi --commit <COMMIT>

``--commit`` is recorded in every file's header (and checked against the checkout when it is a git work tree).
``--out`` defaults to ``src/crgate/_proto``; the directory's ``yandex/`` tree is replaced as a whole.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "crgate._proto"
DEFAULT_OUT = ROOT / "src" / "crgate" / "_proto"

# grpcio-tools 1.63.0 bundles protoc 26.1: Python gencode 5.26.1, which protobuf 5.26.1 and every 6.x run
# (a runtime supports gencode of its own major and the one before), and gRPC stubs that warn below grpcio
# 1.63.0. An older generator (protoc 25, gencode 4.25) is two majors behind protobuf 6; a newer one raises
# the floors. pyproject.toml states the floors this choice makes.
GENERATOR = "grpcio-tools"
GENERATOR_VERSION = "1.63.0"
# The type stubs (.pyi) come from mypy-protobuf, as yandexcloud's do (the same text for the same files).
TYPES = "mypy-protobuf"
TYPES_VERSION = "3.6.0"

# What crgate, its emulator, tests and benches import (`grep -rn "yandex.cloud" src tests bench`).
ROOTS = (
    "yandex/cloud/containerregistry/v1/image.proto",
    "yandex/cloud/containerregistry/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/scanner.proto",
    "yandex/cloud/containerregistry/v1/scanner_service.proto",
    "yandex/cloud/containerregistry/v1/scan_policy.proto",  # crgate doctor reads the registry's scan policy
    "yandex/cloud/containerregistry/v1/scan_policy_service.proto",
    "yandex/cloud/endpoint/api_endpoint.proto",
    "yandex/cloud/endpoint/api_endpoint_service.proto",
    "yandex/cloud/iam/v1/iam_token_service.proto",
    "yandex/cloud/operation/operation.proto",
    "yandex/cloud/operation/operation_service.proto",
)
IMPORTS = re.compile(r"^(from|import) yandex\.", re.M)
MODULE_PATH = re.compile(r"(?<![\w.])yandex\.cloud\.(?:\w+\.)*\w+_pb2(?:_grpc)?\b")
IMPORT = re.compile(r'^import\s+(?:public\s+|weak\s+)?"([^"]+)";', re.M)
SERVICE = re.compile(r"^service\s+\w+", re.M)


def closure(cloudapi: Path, roots: tuple[str, ...] = ROOTS) -> list[str]:
    """The roots and every ``yandex/`` file they import, transitively, sorted."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = cloudapi / name
        if not path.is_file():
            raise SystemExit(f"{path}: not found; is {cloudapi} a checkout of yandex-cloud/cloudapi?")
        seen.add(name)
        pending.extend(i for i in IMPORT.findall(path.read_text(encoding="utf-8")) if i.startswith("yandex/"))
    return sorted(seen)


def check_generator() -> str:
    for name, wanted in ((GENERATOR, GENERATOR_VERSION), (TYPES, TYPES_VERSION)):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed; pip install {name}=={wanted}") from None
        if version != wanted:
            raise SystemExit(f"{name} {version} is installed; the stubs are generated with {wanted}")
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "--version"], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def check_commit(cloudapi: Path, commit: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise SystemExit(f"--commit {commit!r}: give the full 40-digit commit of the cloudapi checkout")
    if (cloudapi / ".git").exists():
        head = subprocess.run(
            ["git", "-C", str(cloudapi), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        if head != commit:
            raise SystemExit(f"{cloudapi} is at {head}, not --commit {commit}")


def rewrite(text: str) -> str:
    """Point the generated imports, module names and type references at crgate's package instead of ``yandex``.

    Only imports and Python module paths (``yandex.cloud....x_pb2``, ``..._pb2_grpc``) change; protobuf names such as
    ``.yandex.cloud.containerregistry.v1.ScanResult`` inside the serialized descriptors never end in ``_pb2``.
    """
    text = IMPORTS.sub(rf"\g<1> {PACKAGE}.yandex.", text)
    return MODULE_PATH.sub(rf"{PACKAGE}.\g<0>", text)


def header(proto: str, commit: str, protoc: str) -> str:
    return (
        f"# crgate: generated from yandex-cloud/cloudapi@{commit} {proto}\n"
        f"# by tools/gen_stubs.py with {GENERATOR} {GENERATOR_VERSION} ({protoc}), {TYPES} {TYPES_VERSION}."
        " Do not edit; regenerate.\n"
    )


def generate(cloudapi: Path, commit: str, out: Path) -> list[str]:
    protoc = check_generator()
    check_commit(cloudapi, commit)
    protos = closure(cloudapi)
    googleapis = cloudapi / "third_party" / "googleapis"
    plugins = Path(sys.executable).parent  # mypy-protobuf's protoc plugins, installed beside this Python
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch)
        subprocess.run(
            [
                sys.executable, "-m", "grpc_tools.protoc", f"-I{cloudapi}", f"-I{googleapis}",
                f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
                f"--python_out={raw}", f"--grpc_python_out={raw}", f"--mypy_out={raw}", f"--mypy_grpc_out={raw}",
                *protos,
            ],
            check=True,
        )  # fmt: skip
        target = out / "yandex"
        if target.exists():
            shutil.rmtree(target)
        for proto in protos:
            has_service = bool(SERVICE.search((cloudapi / proto).read_text(encoding="utf-8")))
            stem = proto.removesuffix(".proto")
            suffixes = ["_pb2.py", "_pb2.pyi"] + (["_pb2_grpc.py", "_pb2_grpc.pyi"] if has_service else [])
            for suffix in suffixes:
                generated = raw / (stem + suffix)
                dest = out / (stem + suffix)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(header(proto, commit, protoc) + rewrite(generated.read_text(encoding="utf-8")))
        for directory in [target, *(p for p in target.rglob("*") if p.is_dir())]:
            (directory / "__init__.py").write_text("")
    shutil.copyfile(cloudapi / "LICENSE", out / "LICENSE-cloudapi")
    return protos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cloudapi", type=Path, help="a checkout of github.com/yandex-cloud/cloudapi")
    parser.add_argument("--commit", required=True, help="the checkout's commit, recorded in every header")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: src/crgate/_proto")
    args = parser.parse_args()
    protos = generate(args.cloudapi.resolve(), args.commit, args.out)
    print(f"{len(protos)} files from cloudapi@{args.commit} into {args.out}:", *protos, sep="\n  ")


if __name__ == "__main__":
    main()
