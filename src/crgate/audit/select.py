"""Which images an audit looks at: every image of registries, repositories and folders (listed page by
page), and the images that references and manifests name (read from the registry, as ``check`` does).

Untagged images are left out unless asked for (an image listed in a tagged index is not: the index is
expanded into its platform images when it is assessed); ``--since`` keeps images created within a window.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from crgate.audit.model import AuditItem
from crgate.errors import ConfigError, CrgateError
from crgate.interface import Registry, Scanner
from crgate.model import ListedImage, Target
from crgate.runner import resolve_rows
from crgate.timing import Deadline

MAX_IMAGES = 200_000
"""Images one audit looks at, at most (a listing past it is refused: narrow the selection)."""


class ImageLister(Protocol):
    """What listing needs of the scanner client (``ScannerClient.list_images``)."""

    def list_images(
        self, deadline: Deadline, *, registry_id: str = "", repository_name: str = "", folder_id: str = ""
    ) -> Iterator[ListedImage]: ...


@dataclass(frozen=True)
class Scope:
    """One ``--registry``, ``--repository`` or ``--folder-id``."""

    kind: str
    """``registry``, ``repository`` or ``folder``."""
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True)
class Selection:
    scopes: tuple[Scope, ...] = ()
    targets: tuple[Target, ...] = ()
    """References and manifest images (``crgate.targets``)."""
    unscannable: tuple[str, ...] = ()
    """What the manifests name outside Yandex Container Registry."""
    since: dt.timedelta | None = None
    include_untagged: bool = False
    host: str = "cr.yandex"
    """The registry host that listed images are named with in reports."""

    def describe(self) -> list[str]:
        """What the audit looks at, for people."""
        named = [f"{len(self.targets)} named image(s)"] if self.targets else []
        return [str(scope) for scope in self.scopes] + named


def listed_label(host: str, image: ListedImage) -> str:
    """How reports name a listed image: by its first tag, else by digest."""
    if image.tags:
        return f"{host}/{image.repository_name}:{image.tags[0]}"
    return f"{host}/{image.repository_name}@{image.digest}"


def list_scope(lister: ImageLister, scope: Scope, deadline: Deadline) -> Iterator[ListedImage]:
    if scope.kind == "registry":
        return lister.list_images(deadline, registry_id=scope.value)
    if scope.kind == "repository":
        return lister.list_images(deadline, repository_name=scope.value)
    if scope.kind == "folder":
        return lister.list_images(deadline, folder_id=scope.value)
    raise ValueError(f"unknown scope {scope.kind}")


def listed_items(
    lister: ImageLister, selection: Selection, deadline: Deadline, now: dt.datetime
) -> tuple[list[AuditItem], int]:
    """The listed images the audit keeps, and how many were left out (untagged, or older than --since)."""
    seen: set[str] = set()
    kept: list[AuditItem] = []
    left_out = 0
    cutoff = now - selection.since if selection.since is not None else None
    for scope in selection.scopes:
        for image in list_scope(lister, scope, deadline):
            if image.id in seen:
                continue
            seen.add(image.id)
            if len(seen) > MAX_IMAGES:
                raise ConfigError(
                    f"the selection lists more than {MAX_IMAGES} images; audit fewer registries or folders at once"
                )
            if not image.tags and not selection.include_untagged:
                left_out += 1
                continue
            # An image of unknown age is kept: a window must never hide an image it cannot place.
            if cutoff is not None and image.created_at is not None and image.created_at < cutoff:
                left_out += 1
                continue
            kept.append(
                AuditItem(
                    listed_label(selection.host, image),
                    image.id,
                    image.digest,
                    image.created_at,
                    listed=True,
                )
            )
    return kept, left_out


def target_items(
    targets: Iterable[Target], registry: Registry | None, scanner: Scanner, deadline: Deadline
) -> list[AuditItem]:
    """The images references and manifests name; a failure to tell is an item that carries it."""
    items: list[AuditItem] = []
    for target in targets:
        if target.ref is None:
            items.append(AuditItem(target.label, target.image_id))
            continue
        assert registry is not None
        try:
            rows = resolve_rows(target, registry, scanner, deadline)
        except CrgateError as error:
            items.append(AuditItem(target.label, None, target.ref.digest, failure=error))
            continue
        items += [
            AuditItem(row.label, row.image_id, row.source.digest if row.source else None, failure=row.failure)
            for row in rows
        ]
    return items


def dedupe(items: Sequence[AuditItem]) -> list[AuditItem]:
    """Each image once (the first name it was given), failures always kept."""
    seen: set[str] = set()
    kept = []
    for item in items:
        if item.image_id is not None and item.failure is None:
            if item.image_id in seen:
                continue
            seen.add(item.image_id)
        kept.append(item)
    return kept


_ID = re.compile(r"[a-z0-9]{1,50}")
_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")


def audit_selection(
    image_refs: Sequence[str],
    registries: Sequence[str],
    repositories: Sequence[str],
    folders: Sequence[str],
    manifests: Sequence[str],
    stdin: BinaryIO,
    since: dt.timedelta | None,
    include_untagged: bool,
    api_endpoint: str | None,
) -> Selection:
    """What the user named, checked before any call (ConfigError, exit 2, naming the flag)."""
    from crgate.targets import select_targets

    scopes: list[Scope] = []
    for flag, kind, values in (("--registry", "registry", registries), ("--folder-id", "folder", folders)):
        for value in values:
            if not _ID.fullmatch(value):
                raise ConfigError(f"{flag} {value!r}: expected an id of 1-50 lowercase letters and digits")
            scopes.append(Scope(kind, value))
    for value in repositories:
        registry_id, _, name = value.partition("/")
        if not _ID.fullmatch(registry_id) or not name or not _REPOSITORY.fullmatch(name) or len(value) > 256:
            raise ConfigError(
                f"--repository {value!r}: expected REGISTRY_ID/REPOSITORY, e.g. crp0123456789abcdefgh/team/app"
            )
        scopes.append(Scope("repository", value))
    named = select_targets(image_refs, (), manifests, stdin)
    host = "cr.yandexcloud.kz" if api_endpoint and "yandexcloud.kz" in api_endpoint else "cr.yandex"
    return Selection(tuple(dict.fromkeys(scopes)), named.targets, named.unscannable, since, include_untagged, host)
