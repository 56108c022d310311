"""Images referenced by deployment manifests (``crgate check --from-manifest FILE|-``).

Reads Kubernetes manifests (multi-document YAML, ``helm template`` output, ``List`` kinds) of any kind and
docker-compose files (``services.*.image``). Containers are found wherever they are in a document, not at
fixed paths: every ``containers``, ``initContainers`` and ``ephemeralContainers`` list (pod specs of Pod,
Deployment, Job, CronJob, Knative Service, KEDA ScaledJob, Argo ``containerSet``, any workload CRD), every
entry with an image of a ``steps`` or ``sidecars`` list (Tekton, Argo), and every ``container``,
``script`` or ``stepTemplate`` mapping with an image (Argo templates, Tekton). Any other string under a key
named ``image`` (any case) or ending in ``Image`` is reported as not taken (``Untaken``), so nothing that
may be an image is dropped silently. Pure apart from reading the file: every problem becomes a
``ManifestError`` naming the file, the document and the line.

Fail closed: a workload kind whose pod spec or containers cannot be read, a container without an image,
an unrendered template (``{{ }}``, ``${VAR}``) or a duplicate key is an error, never a silently skipped
image. Merge keys (``<<: *base``) are expanded, so an image inherited from an anchor is found.
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
from crgate.yamlstrict import MERGE_TAG, Rules, is_null, merged_sources, read_documents, value_of

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
"""Lists of containers wherever they are: every entry must be a container with an image."""
STEP_LISTS: tuple[str, ...] = ("steps", "sidecars")
"""Tekton's steps and sidecars, Argo's sidecars: an entry with an image is a container (a Tekton step may
refer to a StepAction instead, and an Argo ``steps`` entry is a list of template calls)."""
SINGLE_CONTAINERS: tuple[str, ...] = ("container", "script", "stepTemplate")
"""Argo's template ``container`` and ``script``, Tekton's ``stepTemplate``: a mapping with an image."""
_SINGULAR = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
    "steps": "step",
    "sidecars": "sidecar",
}
_STR_TAG = "tag:yaml.org,2002:str"
_ORDER = {key: number for number, key in enumerate(CONTAINER_LISTS)}
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


@dataclass(frozen=True)
class Untaken:
    """A string under an image-like key (``image``, ``IMAGE``, ``sidecarImage``) that is not a container's
    image: reported, so that a manifest naming an image crgate does not gate never reads as complete."""

    value: str
    source: str
    document: int
    line: int
    where: str
    """``ConfigMap settings, data.image``."""

    def describe(self) -> str:
        return f"{self.value} ({self.source}, document {self.document}, line {self.line}: {self.where})"


def is_image_key(key: str) -> bool:
    """``image`` in any case, or a key ending in ``Image`` (``initImage``, ``sidecarImage``)."""
    return key.lower() == "image" or key.endswith("Image")


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
    untaken: tuple[Untaken, ...] = ()
    """Strings under image-like keys that are not container images (reported, not gated)."""


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
    uses, untaken = scan_text(inputs.decode_utf8(data, error), source)
    return ManifestFile(source, data, tuple(uses), tuple(untaken))


def read_manifests(paths: Sequence[str], stdin: BinaryIO) -> list[ImageUse]:
    """Every image use in the given files (``-`` = standard input), in order of appearance."""
    return [use for path in paths for use in read_manifest(path, stdin).uses]


def images_in_text(text: str, source: str) -> list[ImageUse]:
    """Every image use in a YAML text of one or more documents."""
    return scan_text(text, source)[0]


def scan_text(text: str, source: str) -> tuple[list[ImageUse], list[Untaken]]:
    """Every image use in a YAML text, and every image-like string that is not one."""

    def error(
        message: str, *, line: int | None = None, document: int | None = None, key: str | None = None
    ) -> ManifestError:
        return ManifestError(message, source=source, document=document, line=line)

    uses: list[ImageUse] = []
    untaken: list[Untaken] = []
    for document in read_documents(text, MANIFEST_RULES, error):
        walker = _Document(source, document.number)
        uses.extend(walker.images(document.root))
        untaken.extend(walker.untaken)
    return uses, untaken


class _Document:
    """Walks one composed YAML document."""

    def __init__(self, source: str, number: int):
        self.source = source
        self.number = number
        self.untaken: list[Untaken] = []
        self._taken: set[int] = set()  # the image nodes taken as containers' images

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
            return
        if isinstance(self.child(node, "services"), MappingNode):
            yield from self.compose(node)
        yield from self.anywhere(node, "(no kind)", "")

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
        owner = f"{kind} {self.object_name(node)}"
        path = POD_SPEC_PATHS.get(kind)
        pod_spec = self.walk(node, path, required=True, what=owner) if path else None
        if pod_spec is not None and not isinstance(pod_spec, MappingNode):
            raise self.error(f"the pod spec of {owner} must be a mapping", pod_spec)
        uses = list(self.anywhere(node, owner, ""))
        if pod_spec is not None and not any(
            isinstance(listed, SequenceNode) and listed.value
            for listed in (self.child(pod_spec, key) for key in CONTAINER_LISTS)
        ):
            raise self.error(f"{owner} has no containers", pod_spec)
        yield from uses

    def anywhere(self, node: Node, owner: str, path: str) -> Iterator[ImageUse]:
        """Every container image under ``node``, in document order; image-like strings that are not one
        go to ``self.untaken``. Bounded by the reader's expansion budget (aliases are walked as written)."""
        if isinstance(node, SequenceNode):
            for number, item in enumerate(node.value):
                yield from self.anywhere(item, owner, f"{path}[{number}]")
            return
        if not isinstance(node, MappingNode):
            return
        # A pod spec's containers come first, then its init and ephemeral containers (as reports list them).
        ordered = sorted(self.items(node), key=lambda item: _ORDER.get(item[0], len(_ORDER)))
        for key, value in ordered:
            here = f"{path}.{key}" if path else key
            if key in CONTAINER_LISTS and not is_null(value):
                if not isinstance(value, SequenceNode):
                    raise self.error(f"'{key}' of {owner} must be a list", value)
                for container in value.value:
                    yield self.container_image(container, owner, key)
            elif key in STEP_LISTS and isinstance(value, SequenceNode):
                for step in value.value:
                    if isinstance(step, MappingNode) and self.child(step, "image") is not None:
                        yield self.container_image(step, owner, key)
            elif key in SINGLE_CONTAINERS and isinstance(value, MappingNode):
                image = self.child(value, "image")
                if image is not None:
                    yield self.use(image, f"{owner}, {key} at {here}")
            elif is_image_key(key) and self.is_untaken(value):
                line = value.start_mark.line + 1
                self.untaken.append(
                    Untaken(str(value.value).strip(), self.source, self.number, line, f"{owner}, {here}")
                )
            yield from self.anywhere(value, owner, here)

    def is_untaken(self, value: Node) -> bool:
        """A non-empty string that no container took as its image."""
        return (
            isinstance(value, ScalarNode)
            and value.tag == _STR_TAG
            and bool(value.value.strip())
            and id(value) not in self._taken
        )

    def items(self, node: MappingNode) -> Iterator[tuple[str, Node]]:
        """The mapping's entries with string keys, merge keys applied (an explicit key wins)."""
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != MERGE_TAG and key.value not in seen:
                seen.add(key.value)
                yield key.value, value
        for source in merged_sources(node):
            for key_name, value in self.items(source):
                if key_name not in seen:
                    seen.add(key_name)
                    yield key_name, value

    def container_image(self, container: Node, owner: str, list_key: str) -> ImageUse:
        if not isinstance(container, MappingNode):
            raise self.error(f"an entry of '{list_key}' of {owner} must be a mapping", container)
        container_name = self.scalar(container, "name") or "(unnamed)"
        where = f"{owner}, {_SINGULAR[list_key]} {container_name}"
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
        self._taken.add(id(node))
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
