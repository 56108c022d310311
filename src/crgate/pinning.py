"""``--pin-to``: write deployment manifests back with gated image references replaced by their digest
form, and nothing else changed (pure; ``crgate.outputs`` writes the result atomically).

Why not a round-trip YAML library: ruamel.yaml, the usual one, re-emits the whole file. With its
defaults it re-indents block sequences (``    - port: 80`` becomes ``  - port: 80``) and wraps long
flow mappings onto new lines; matching every file's indentation is guesswork. Instead crgate finds the
image values with the same position-keeping PyYAML parse that ``crgate.manifests`` gates them with
(each ``ImageUse`` carries the span of its scalar) and rewrites only those spans, in the scalar's own
style (plain, 'single' or "double" quoted). Every byte outside the replaced values stays as it was:
comments, document markers, order, flow style, anchors (an aliased image follows its anchor), line
endings and a byte-order mark. The result is parsed again and must name exactly the pinned images, or
nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import IO

from crgate.errors import ConfigError
from crgate.exitcodes import ExitCode
from crgate.manifests import ImageUse, ManifestError, ManifestFile, images_in_text
from crgate.model import ImageRef, RunReport

BOM = "\ufeff"
_PINNED = re.compile(r"[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}")
_PREFIX = re.compile(r"(?:[&!][^\s]*\s+)*")  # an anchor and/or tag before the value


class PinError(ConfigError):
    """The manifest cannot be rewritten in place, or the output could not be written (exit 2)."""


def pinned_reference(ref: ImageRef, digest: str) -> str:
    """``<host>/<registry-id>/<repository>@<digest>``: what deploys is exactly what was gated (for an
    index, the index's digest, so every platform keeps pulling its own gated image)."""
    return f"{ref.host}/{ref.registry_id}/{ref.repository}@{digest}"


def write_pinned(report: RunReport, manifest: ManifestFile, out: IO[bytes], destination: str) -> str | None:
    """``--pin-to``: write ``manifest`` with every image the run gated pinned to its digest, unless the
    verdict is not pass; returns what to tell people, or None when nothing was written."""
    if report.exit_code != ExitCode.PASS:
        return None
    pins = manifest_pins(report, manifest)
    out.write(pin_bytes(manifest.data, pins, manifest.source))
    return f"pinned {len(pins)} image(s) of {manifest.source} to their digests in {destination}"


def manifest_pins(report: RunReport, manifest: ManifestFile) -> dict[str, str]:
    """The pinned form of every image of ``manifest`` that the run gated (as written -> pinned); images
    outside Yandex Container Registry are not gated and stay as they are."""
    pinned = {outcome.source.reference: outcome.source.pinned for outcome in report.images if outcome.source}
    missing = [use.image for use in manifest.uses if use.ref is not None and use.image not in pinned]
    if missing:  # never write a file that deploys an image this run did not resolve and gate
        raise PinError(f"--pin-to: no digest for {', '.join(missing[:5])} from this run; nothing was written")
    return {use.image: pinned[use.image] for use in manifest.uses if use.ref is not None}


def pin_text(text: str, pins: Mapping[str, str], source: str = "<manifest>") -> str:
    """``text`` with every image value that is a key of ``pins`` (the reference as written) replaced by
    its pinned form; other images and everything else untouched. PinError / ManifestError otherwise."""
    for pinned in pins.values():
        if not _PINNED.fullmatch(pinned):
            raise PinError(f"--pin-to: '{pinned[:200]}' is not a digest reference (<host>/<repo>@sha256:<hex>)")
    body = text.removeprefix(BOM)
    uses = images_in_text(body, source)
    replacements: dict[tuple[int, int], str] = {}
    for use in uses:
        if use.image in pins and use.span is not None:
            replacements[use.span] = _rewritten(body, use, pins[use.image])
    pieces: list[str] = []
    position = 0
    for (start, end), value in sorted(replacements.items()):
        if start < position:
            raise PinError(f"manifest {source}: overlapping image values at offset {start}; nothing was written")
        pieces += [body[position:start], value]
        position = end
    pieces.append(body[position:])
    result = "".join(pieces)
    expected = [pins.get(use.image, use.image) for use in uses]
    try:
        found = [use.image for use in images_in_text(result, source)]
    except ManifestError as error:
        raise PinError(f"manifest {source}: pinning would break the YAML ({error}); nothing was written") from None
    if found != expected:
        raise PinError(
            f"manifest {source}: the pinned text does not read back as the pinned images; nothing was written"
        )
    return (BOM if text.startswith(BOM) else "") + result


def pin_bytes(data: bytes, pins: Mapping[str, str], source: str = "<manifest>") -> bytes:
    """``pin_text`` for file contents (UTF-8, a byte-order mark kept)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ManifestError("the file is not valid UTF-8 text", source=source, line=line) from None
    return pin_text(text, pins, source).encode("utf-8")


def _rewritten(text: str, use: ImageUse, pinned: str) -> str:
    """The span of ``use`` with the pinned value in the scalar's own style (anchor and tag kept)."""
    assert use.span is not None
    start, end = use.span
    original = text[start:end]
    prefix = _PREFIX.match(original)
    head = prefix.group(0) if prefix else ""
    scalar = original[len(head) :]
    if scalar.startswith("'"):
        return head + "'" + pinned.replace("'", "''") + "'"
    if scalar.startswith('"'):
        return head + '"' + pinned.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if scalar[:1] in ("|", ">"):
        raise PinError(
            f"{use.location}: the image is a block scalar ({scalar[:1]}); crgate cannot pin it in place: "
            "write it as a plain or quoted value"
        )
    return head + pinned
