"""Images referenced by deployment manifests (``crgate check --from-manifest FILE|-``).

Reads Kubernetes manifests (multi-document YAML, ``helm template`` output, ``List`` kinds; Pod,
Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, PodTemplate and any
kind with a ``spec.template.spec`` pod spec; containers, initContainers and ephemeralContainers) and
docker-compose files (``services.*.image``). Pure apart from reading the file: every problem becomes a
``ManifestError`` naming the file, the document and the line.

Fail closed: a workload whose containers cannot be read, a container without an image, an unrendered
template (``{{ }}``, ``${VAR}``) or a duplicate key is an error, never a silently skipped image. Merge
keys (``<<: *base``) are expanded, so an image inherited from an anchor is found.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crgate import inputs
from crgate.errors import ConfigError, ImageRefError
from crgate.images import REGISTRY_HOSTS, parse_image_ref
from crgate.model import ImageRef
from crgate.yamlstrict import MERGE_TAG, Rules, is_null, read_documents, value_of

STDIN = "-"
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")
_GENERIC_PATH = ("spec", "template", "spec")  # Argo Rollouts, OpenKruise and other workload CRDs
# Rendered charts are large (CRDs with deep schemas; thousands of objects) but far from these bounds;
# compose files use anchors and merge keys, which are honoured up to the expansion bound.
MANIFEST_RULES = Rules(
    name="manifest", max_depth=100, max_nodes=1_000_000, max_expanded=2_000_000, merge_keys=True, fast=True
)


class ManifestError(ConfigError):
    """A manifest that cannot be read or understood (exit 2)."""

    def __init__(self, message: str, *, source: str, document: int | None = None, line: int | None = None):
        where = [f"manifest {source}"]
        if document is not None:
            where.append(f"document {document}")
        if line is not None:
            where.append(f"line {line}")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(frozen=True)
class ImageUse:
    """One image reference found in a manifest, and where."""

    image: str
    source: str
    document: int
    line: int
    where: str
    """What refers to it: ``Deployment web, container app`` or ``compose service web``."""
    ref: ImageRef | None = None
    """The parsed reference for images in Yandex Container Registry; None for any other registry."""
    span: tuple[int, int] | None = field(default=None, compare=False)
    """Where the value is in the text (character offsets, anchor and tag included), for ``crgate.pinning``."""

    @property
    def location(self) -> str:
        return f"{self.source}, document {self.document}, line {self.line}: {self.where}"


def registry_host(image: str) -> str:
    """The registry host of a reference, as Docker reads it (``nginx`` -> ``docker.io``)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


@dataclass(frozen=True)
class ManifestFile:
    """One manifest input as read (bounded), kept so that ``--pin-to`` can rewrite it."""

    source: str
    """The path, or ``<stdin>``."""
    data: bytes
    uses: tuple[ImageUse, ...]


def read_manifest(path: str, stdin: BinaryIO) -> ManifestFile:
    """One file (``-`` = standard input) and its image uses, in order of appearance."""
    source = "<stdin>" if path == STDIN else path
    error = functools.partial(ManifestError, source=source)
    if path == STDIN:
        data = inputs.read_stream(stdin, inputs.MANIFEST, error)
    else:
        try:
            data = inputs.read_file(path, inputs.MANIFEST, error)
        except OSError as exc:
            raise error(f"cannot read it: {exc.strerror or exc}") from None
    return ManifestFile(source, data, tuple(images_in_text(inputs.decode_utf8(data, error), source)))


def read_manifests(paths: Sequence[str], stdin: BinaryIO) -> list[ImageUse]:
    """Every image use in the given files (``-`` = standard input), in order of appearance."""
    return [use for path in paths for use in read_manifest(path, stdin).uses]


def images_in_text(text: str, source: str) -> list[ImageUse]:
    """Every image use in a YAML text of one or more documents."""

    def error(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ManifestError:
        return ManifestError(message, source=source, document=document, line=line)

    uses: list[ImageUse] = []
    for document in read_documents(text, MANIFEST_RULES, error):
        uses.extend(_Document(source, document.number).images(document.root))
    return uses


class _Document:
    """Walks one composed YAML document."""

    def __init__(self, source: str, number: int):
        self.source = source
        self.number = number

    def error(self, message: str, node: Node) -> ManifestError:
        return ManifestError(message, source=self.source, document=self.number, line=node.start_mark.line + 1)

    def images(self, node: Node) -> Iterator[ImageUse]:
        if is_null(node):
            return  # an empty document (helm template writes some)
        if not isinstance(node, MappingNode):
            raise self.error("a manifest document must be a mapping (a Kubernetes object or a compose file)", node)
        kind = self.scalar(node, "kind")
        if kind is not None:
            yield from self.k8s_object(node, kind)
        elif isinstance(self.child(node, "services"), MappingNode):
            yield from self.compose(node)

    def k8s_object(self, node: MappingNode, kind: str) -> Iterator[ImageUse]:
        if kind == "List" or kind.endswith("List"):
            items = self.child(node, "items")
            if items is None:
                return
            if not isinstance(items, SequenceNode):
                raise self.error(f"'items' of a {kind} must be a list", items)
            for item in items.value:
                if not isinstance(item, MappingNode):
                    raise self.error(f"every item of a {kind} must be a Kubernetes object", item)
                item_kind = self.scalar(item, "kind")
                if item_kind is None:
                    raise self.error(f"an item of a {kind} has no 'kind'", item)
                yield from self.k8s_object(item, item_kind)
            return
        name = self.object_name(node)
        path = POD_SPEC_PATHS.get(kind)
        pod_spec = self.walk(node, path or _GENERIC_PATH, required=path is not None, what=f"{kind} {name}")
        if pod_spec is None:
            return
        if not isinstance(pod_spec, MappingNode):
            raise self.error(f"the pod spec of {kind} {name} must be a mapping", pod_spec)
        found = False
        for list_key in CONTAINER_LISTS:
            containers = self.child(pod_spec, list_key)
            if containers is None or is_null(containers):
                continue
            if not isinstance(containers, SequenceNode):
                raise self.error(f"'{list_key}' of {kind} {name} must be a list", containers)
            for container in containers.value:
                found = True
                yield self.container_image(container, f"{kind} {name}", list_key)
        if path is not None and not found:
            raise self.error(f"{kind} {name} has no containers", pod_spec)

    def container_image(self, container: Node, owner: str, list_key: str) -> ImageUse:
        if not isinstance(container, MappingNode):
            raise self.error(f"an entry of '{list_key}' of {owner} must be a mapping", container)
        container_name = self.scalar(container, "name") or "(unnamed)"
        singular = {"containers": "container", "initContainers": "init container"}.get(list_key, "ephemeral container")
        where = f"{owner}, {singular} {container_name}"
        image = self.child(container, "image")
        if image is None:
            raise self.error(f"{where} has no image", container)
        return self.use(image, where)

    def compose(self, node: MappingNode) -> Iterator[ImageUse]:
        services = self.child(node, "services")
        assert isinstance(services, MappingNode)
        for key, service in services.value:
            name = key.value if isinstance(key, ScalarNode) else "?"
            if isinstance(key, ScalarNode) and key.tag == MERGE_TAG:
                raise self.error("merge keys ('<<') directly under 'services' are not supported", key)
            if not isinstance(service, MappingNode):
                if is_null(service):
                    continue
                raise self.error(f"compose service {name} must be a mapping", service)
            image = self.child(service, "image")
            if image is not None:  # a service with only 'build:' is built here, not pulled from a registry
                yield self.use(image, f"compose service {name}")

    def use(self, node: Node, where: str) -> ImageUse:
        if not isinstance(node, ScalarNode) or is_null(node) or not node.value.strip():
            raise self.error(f"{where}: 'image' must be a non-empty string", node)
        image = node.value.strip()
        line = node.start_mark.line + 1
        if "{{" in image or "${" in image or image.startswith("$"):
            raise self.error(
                f"{where}: image '{image}' is an unrendered template; render it first "
                "(helm template ..., docker compose config)",
                node,
            )
        ref = None
        if registry_host(image).split(":")[0] in REGISTRY_HOSTS:  # cr.yandex:443/... is refused, not skipped
            try:
                ref = parse_image_ref(image)
            except ImageRefError as exc:
                raise self.error(f"{where}: {exc}", node) from None
        span = (node.start_mark.index, node.end_mark.index)
        return ImageUse(
            image=image, source=self.source, document=self.number, line=line, where=where, ref=ref, span=span
        )

    def object_name(self, node: MappingNode) -> str:
        metadata = self.child(node, "metadata")
        name = self.scalar(metadata, "name") if isinstance(metadata, MappingNode) else None
        return name or "(unnamed)"

    def walk(self, node: Node, path: Iterable[str], *, required: bool, what: str) -> Node | None:
        current = node
        walked = []
        for key in path:
            walked.append(key)
            child = self.child(current, key) if isinstance(current, MappingNode) else None
            if child is None or is_null(child):
                if required:
                    raise self.error(f"{what} has no {'.'.join(walked)}", current)
                return None
            current = child
        return current

    def child(self, node: MappingNode, key: str) -> Node | None:
        """The value of ``key``, honouring merge keys (``<<: *base``; an explicit key wins over a merged
        one). Duplicate keys were refused when the document was read."""
        return value_of(node, key)

    def scalar(self, node: MappingNode, key: str) -> str | None:
        value = self.child(node, key)
        if value is None or is_null(value):
            return None
        if not isinstance(value, ScalarNode):
            raise self.error(f"'{key}' must be a single value", value)
        return str(value.value)


def unique(uses: Iterable[ImageUse]) -> list[ImageUse]:
    """The first use of each distinct image reference, in order."""
    seen: dict[str, ImageUse] = {}
    for use in uses:
        seen.setdefault(use.image, use)
    return list(seen.values())
