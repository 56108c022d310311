"""The policy keys that name other files: ``vex`` (VEX documents) and ``kev`` (a KEV catalog).

Their parsers (used by ``crgate.policy_v1``'s table) read only the policy's YAML and return ``FileRef``s;
``build_policy`` hands each to a ``PolicyFiles`` loader (``crgate.policy`` supplies one that resolves a
path against the policy file's directory and reads it with ``crgate.vex`` / ``crgate.kev``). A file that
is missing or malformed is a ``PolicyError`` naming the policy's line and key, with the file's own problem.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crgate.errors import ConfigError, PolicyError
from crgate.model import KevCatalog, KevPolicy, VexDocument
from crgate.yamlstrict import is_null, kind_of, line_of
from crgate.yamlwalk import Key, Walker

DEFAULT_KEV_MAX_AGE = dt.timedelta(days=30)
_VEX_EXAMPLE = "'vex: [vex/app.openvex.json]'"
_KEV_EXAMPLE = "'kev: {catalog: kev/known_exploited_vulnerabilities.json, max: 0}'"


@dataclass(frozen=True)
class FileRef:
    """A file the policy names: the path as written, and where (key path, line) it is written."""

    path: str
    key: str
    line: int
    sha256: str | None = None
    """The file's SHA-256 the policy pins (``vex: [{path: ..., sha256: ...}]``): a file that differs is exit 2."""


@dataclass(frozen=True)
class KevSpec:
    """``kev:`` as written: the catalog's path and the limits (the catalog is read by ``PolicyFiles``)."""

    catalog: FileRef
    max: int
    max_age: dt.timedelta | None


class PolicyFiles(Protocol):
    """Reads the files a policy names; errors are ``ConfigError``s naming the file."""

    def vex(self, ref: FileRef) -> VexDocument: ...

    def kev(self, ref: FileRef) -> KevCatalog: ...


@dataclass(frozen=True)
class FilesBeside:
    """``PolicyFiles`` reading paths relative to ``base`` (the policy file's directory), each error the
    policy's ``PolicyError`` at the line and key that named the file."""

    base: Path
    source: str
    read_vex: Callable[[str], VexDocument]
    read_kev: Callable[[str], KevCatalog]

    def _path(self, ref: FileRef) -> str:
        return os.fspath(self.base / ref.path) if not os.path.isabs(ref.path) else ref.path

    def _wrap(self, ref: FileRef, error: ConfigError) -> PolicyError:
        return PolicyError(str(error), source=self.source, line=ref.line, key=ref.key)

    def vex(self, ref: FileRef) -> VexDocument:
        try:
            document = self.read_vex(self._path(ref))
        except ConfigError as error:
            raise self._wrap(ref, error) from None
        if ref.sha256 is not None and document.sha256 != ref.sha256:
            raise PolicyError(
                f"VEX document {document.path} has SHA-256 {document.sha256}, but the policy pins {ref.sha256}: "
                "it is not the document the policy's owners reviewed; restore it, or have them update the pin",
                source=self.source,
                line=ref.line,
                key=ref.key,
            )
        return dataclasses.replace(document, pinned=ref.sha256 is not None, from_policy=True)

    def kev(self, ref: FileRef) -> KevCatalog:
        try:
            return self.read_kev(self._path(ref))
        except ConfigError as error:
            raise self._wrap(ref, error) from None


def load_files(values: dict[str, object], files: PolicyFiles) -> tuple[tuple[VexDocument, ...], KevPolicy | None]:
    """The VEX documents and the KEV policy of a parsed top-level mapping, their files read by ``files``."""
    vex = tuple(files.vex(ref) for ref in cast("tuple[FileRef, ...]", values.get("vex", ())))
    spec = cast("KevSpec | None", values.get("kev"))
    kev = None if spec is None else KevPolicy(files.kev(spec.catalog), spec.max, spec.max_age)
    return vex, kev


def _path(walker: Walker, key_path: str, line: int, node: Node, what: str, example: str) -> FileRef:
    path = walker.text(node, key_path, line, what, f"write the file's path (relative to the policy), e.g. {example}")
    if "\x00" in path:
        raise walker.error(f"{what} must not contain a NUL character", line=line, key=key_path)
    return FileRef(path, key_path, line)


_SHA256 = re.compile(r"[0-9a-f]{64}")
_VEX_ITEM_KEYS = ("path", "sha256")


def _vex_item(walker: Walker, key_path: str, line: int, node: Node) -> FileRef:
    """A path, or ``{path: PATH, sha256: HEX}`` pinning the document's digest."""
    if not isinstance(node, MappingNode):
        return _path(walker, key_path, line, node, "a VEX document path", _VEX_EXAMPLE)
    values: dict[str, Node] = {}
    key_lines: dict[str, int] = {}
    for name, key_node, value_node in walker.pairs(node, key_path):
        if name not in _VEX_ITEM_KEYS:
            raise walker.unknown_key(name, f"{key_path}.{name}", line_of(key_node), _VEX_ITEM_KEYS)
        values[name], key_lines[name] = value_node, line_of(key_node)
    if "path" not in values:
        raise walker.error(
            "missing required key 'path'; write e.g. '- {path: vex/app.openvex.json, sha256: <sha256sum of it>}'",
            line=line,
            key=f"{key_path}.path",
        )
    ref = _path(walker, f"{key_path}.path", key_lines["path"], values["path"], "a VEX document path", _VEX_EXAMPLE)
    if "sha256" not in values:
        return ref
    digest_path, digest_line = f"{key_path}.sha256", key_lines["sha256"]
    digest = walker.text(values["sha256"], digest_path, digest_line, "the sha256", "write the output of sha256sum FILE")
    digest = digest.lower().removeprefix("sha256:")
    if not _SHA256.fullmatch(digest):
        raise walker.error(
            f"expected the document's SHA-256 as 64 hex digits (sha256sum FILE prints it), "
            f"got {len(digest)} characters",
            line=digest_line,
            key=digest_path,
        )
    return dataclasses.replace(ref, sha256=digest)


def parse_vex(walker: Walker, key_path: str, line: int, node: Node) -> tuple[FileRef, ...]:
    """``vex``: a list of VEX document paths (each optionally ``{path, sha256}``), relative to the policy
    file; no path twice."""
    if not isinstance(node, SequenceNode):
        what = "no value" if is_null(node) else kind_of(node)
        if isinstance(node, ScalarNode) and not is_null(node):
            what = "a single value"
        raise walker.error(
            f"'vex' must be a list of VEX document paths, got {what}; write e.g. {_VEX_EXAMPLE}, or remove the key",
            line=line,
            key=key_path,
        )
    refs: list[FileRef] = []
    for index, item in enumerate(node.value):
        ref = _vex_item(walker, f"{key_path}[{index}]", line_of(item), item)
        for earlier in refs:
            if earlier.path == ref.path:
                raise walker.error(
                    f"'{ref.path}' is listed twice (first on line {earlier.line}); list each document once",
                    line=ref.line,
                    key=ref.key,
                )
        refs.append(ref)
    return tuple(refs)


def parse_kev(walker: Walker, key_path: str, line: int, node: Node, keys: Mapping[str, Key]) -> KevSpec:
    """``kev``: ``{catalog: PATH, max: N, max_age: DURATION}`` against ``keys`` (``crgate.policy_v1``'s table,
    whose count and duration parsers it shares); ``max`` defaults to 0, ``max_age`` to 30 days."""
    if not isinstance(node, MappingNode):
        what = "no value" if is_null(node) else kind_of(node)
        raise walker.error(
            f"'kev' must be a mapping, got {what}; write e.g. {_KEV_EXAMPLE}, or remove the key",
            line=line,
            key=key_path,
        )
    values = walker.mapping(node, key_path, keys)
    max_age = values.get("max_age", DEFAULT_KEV_MAX_AGE)
    return KevSpec(
        catalog=cast(FileRef, values["catalog"]),
        max=cast(int, values.get("max", 0)),
        max_age=cast("dt.timedelta | None", max_age),
    )


def parse_catalog(walker: Walker, key_path: str, line: int, node: Node) -> FileRef:
    return _path(walker, key_path, line, node, "the KEV catalog path", _KEV_EXAMPLE)
