"""Dump generated Yandex stubs as JSON, for tests/test_stubs_fidelity.py; run in its own process.

``python stubdump.py PREFIX MODULE ...`` imports ``PREFIX + MODULE`` for each module (``crgate._proto.`` for
crgate's stubs, empty for the ``yandexcloud`` package: one process cannot hold both) and prints, per
``*_pb2`` module, its file's serialized ``FileDescriptorProto`` (hex), and per ``*_pb2_grpc`` module every
stub method as its client calls it: path, cardinality and the response type it decodes. It also names any
module of the other side that got imported, so each side is shown to stand alone.
"""

from __future__ import annotations

import importlib
import json
import sys


class RecordingChannel:
    """Stands in for a ``grpc.Channel``: a stub's constructor registers each method on it."""

    def __init__(self) -> None:
        self.methods: list[dict[str, str]] = []

    def _record(self, kind: str, path: str, response_deserializer: object = None, **_: object) -> None:
        owner = getattr(response_deserializer, "__self__", None)
        response = owner.DESCRIPTOR.full_name if owner is not None else repr(response_deserializer)
        self.methods.append({"path": path, "kind": kind, "response": response})

    def unary_unary(self, path: str, *args: object, **kwargs: object) -> None:
        self._record("unary_unary", path, *args, **kwargs)  # type: ignore[arg-type]

    def unary_stream(self, path: str, *args: object, **kwargs: object) -> None:
        self._record("unary_stream", path, *args, **kwargs)  # type: ignore[arg-type]

    def stream_unary(self, path: str, *args: object, **kwargs: object) -> None:
        self._record("stream_unary", path, *args, **kwargs)  # type: ignore[arg-type]

    def stream_stream(self, path: str, *args: object, **kwargs: object) -> None:
        self._record("stream_stream", path, *args, **kwargs)  # type: ignore[arg-type]


def dump(prefix: str, modules: list[str]) -> dict[str, object]:
    files: dict[str, str] = {}
    stubs: dict[str, list[dict[str, str]]] = {}
    for name in modules:
        module = importlib.import_module(prefix + name)
        if name.endswith("_pb2"):
            files[module.DESCRIPTOR.name] = module.DESCRIPTOR.serialized_pb.hex()
            continue
        for attribute in sorted(vars(module)):
            if attribute.endswith("Stub"):
                channel = RecordingChannel()
                getattr(module, attribute)(channel)
                stubs[f"{name}.{attribute}"] = channel.methods
    other = "yandex" if prefix else "crgate"
    foreign = sorted(m for m in sys.modules if m == other or m.startswith(other + "."))
    return {"files": files, "stubs": stubs, "foreign": foreign}


if __name__ == "__main__":
    print(json.dumps(dump(sys.argv[1], sys.argv[2:])))
