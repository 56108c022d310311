"""From what the user named (references, image ids, manifests) to the targets of a run.

Everything here is checked before any network call: a bad reference, a bad image id or a manifest
without images is a configuration error (exit 2), never a scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from crgate.errors import ConfigError
from crgate.images import check_image_id, parse_image_ref
from crgate.manifests import ManifestFile, read_manifest, unique
from crgate.model import Target

MAX_UNTAKEN_SHOWN = 50
"""How many untaken values the summary lists one per line (a rendered chart may hold thousands)."""


@dataclass(frozen=True)
class Selection:
    """The targets of a run, and what the manifests named that crgate cannot scan."""

    targets: tuple[Target, ...]
    unscannable: tuple[str, ...] = ()
    """Images outside Yandex Container Registry, as ``image (where)``; the policy decides their fate."""
    manifest_images: int = 0
    """How many distinct images the manifests named (scannable or not)."""
    manifests: tuple[ManifestFile, ...] = ()
    """The manifests as read (for ``--pin-to``)."""
    untaken: tuple[str, ...] = ()
    """Strings under image-like keys that no container takes, as ``value (where)``: reported, not gated."""

    def summary(self, unscannable_mode: str) -> list[str]:
        """What the manifests named, for people (nothing when no manifest was read)."""
        if not self.manifests:
            return []
        head = (
            f"manifests name {self.manifest_images} image(s); {len(self.unscannable)} outside Yandex Container "
            f"Registry (policy unscannable: {unscannable_mode})"
        )
        lines = [head, *(f"  not scanned: {image}" for image in self.unscannable)]
        if self.untaken:
            lines.append(
                f"{len(self.untaken)} other value(s) under an image-like key were not taken as container images "
                "(not gated; check that none is deployed):"
            )
            lines += [f"  not taken: {value}" for value in self.untaken[:MAX_UNTAKEN_SHOWN]]
            if len(self.untaken) > MAX_UNTAKEN_SHOWN:
                lines.append(f"  ... and {len(self.untaken) - MAX_UNTAKEN_SHOWN} more not taken")
        return lines


def select_targets(
    image_refs: Sequence[str], image_ids: Sequence[str], manifests: Sequence[str], stdin: BinaryIO
) -> Selection:
    """Parse references and ids, read manifests (``-`` is ``stdin``); ConfigError on any bad input."""
    targets = [Target(label=raw, ref=parse_image_ref(raw)) for raw in image_refs]
    targets.extend(Target(label=image_id, image_id=check_image_id(image_id, "--image-id")) for image_id in image_ids)
    if not manifests:
        return Selection(tuple(targets))
    files = tuple(read_manifest(path, stdin) for path in manifests)
    uses = unique(use for file in files for use in file.uses)
    untaken = tuple(item.describe() for file in files for item in file.untaken)
    if not uses:
        also = f"; {len(untaken)} value(s) under image-like keys are not container images: " if untaken else ""
        raise ConfigError(
            f"no container images found in {', '.join(manifests)}: nothing would be gated"
            + (also + "; ".join(untaken[:5]) if untaken else "")
        )
    given = {target.label for target in targets}
    targets.extend(
        Target(label=use.image, ref=use.ref) for use in uses if use.ref is not None and use.image not in given
    )
    outside = tuple(f"{use.image} ({use.location})" for use in uses if use.ref is None)
    return Selection(tuple(targets), outside, len(uses), files, untaken)
