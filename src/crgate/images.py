"""Image references: parse ``<host>/<registry-id>/<repo>[:tag][@sha256:digest]`` (pure, no I/O).

Resolution to an image id needs the registry and lives in ``scanner.client`` (``resolve_image``).
"""

from __future__ import annotations

import re

from crgate.errors import ImageRefError
from crgate.model import ImageRef
from crgate.regions import registry_hosts

# Hosts that address Yandex Cloud Container Registry, of every region (crgate.regions). cr.yandex is canonical.
REGISTRY_HOSTS: tuple[str, ...] = registry_hosts()
DEFAULT_TAG = "latest"

_REGISTRY_ID = re.compile(r"[a-z][a-z0-9]{2,49}")
# Yandex's own pattern for repository names (the `pattern` option of ListImagesRequest.repository_name in
# yandex-cloud/cloudapi): "/"-separated parts of lowercase alphanumerics joined by a *single* ".", "_"
# or "-". Stricter than Docker's grammar (which also allows "__" and "--"): such a name cannot exist in
# Yandex Container Registry, so crgate refuses it before any call instead of failing at ImageService.List.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
REPOSITORY_RULE = (
    "lowercase letters and digits, with single '.', '_' or '-' between them, in '/'-separated parts "
    "(Yandex's pattern: no '__', '--', '.-' or a separator at either end)"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")

# What an identifier may look like before crgate sends it or prints it (image, scan result and operation
# ids): Yandex ids are 20 lowercase letters and digits; control characters or any length are refused.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_FORM = "cr.yandex/<registry-id>/<repository>:<tag> or cr.yandex/<registry-id>/<repository>@sha256:<digest>"


def parse_image_ref(raw: str) -> ImageRef:
    """Parse and validate a reference; raise ImageRefError naming the problem and the expected form."""
    text = raw.strip()

    def bad(why: str) -> ImageRefError:
        return ImageRefError(f"invalid image reference '{raw}': {why}; expected {_FORM}")

    if not text:
        raise bad("it is empty")
    if any(ch.isspace() for ch in text):
        raise bad("it contains whitespace")
    name, digest = text, None
    if "@" in text:
        name, digest = text.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise bad(f"digest '{digest}' is not sha256:<64 lowercase hex digits>")
    host, sep, rest = name.partition("/")
    if not sep:
        raise bad("it has no registry host")
    if host.lower() not in REGISTRY_HOSTS:
        raise bad(f"'{host}' is not a Yandex Container Registry host (known: {', '.join(REGISTRY_HOSTS)})")
    tag = None
    last_slash = rest.rfind("/")
    if ":" in rest[last_slash + 1 :]:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise bad(f"tag '{tag}' is not a valid tag")
    registry_id, sep, repository = rest.partition("/")
    if not sep or not repository:
        raise bad("it has no repository after the registry id")
    if not _REGISTRY_ID.fullmatch(registry_id):
        raise bad(f"registry id '{registry_id}' is not valid (lowercase letters and digits, e.g. crp...)")
    for component in repository.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise bad(f"repository '{repository}' is not valid: {REPOSITORY_RULE}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(raw=raw, host=host.lower(), registry_id=registry_id, repository=repository, tag=tag, digest=digest)


def check_image_id(value: str, where: str) -> str:
    """``value`` when it is a well-formed image id; ImageRefError naming ``where`` it came from otherwise."""
    if ID_PATTERN.fullmatch(value):
        return value
    problem = (
        "it is empty"
        if not value.strip()
        else "an image id has no whitespace"
        if any(ch.isspace() for ch in value)
        else "an image id is letters, digits, '.', '_' and '-' (at most 128)"
    )
    shown = value if value.isprintable() and len(value) <= 64 else ascii(value[:64])
    raise ImageRefError(f"invalid {where} '{shown}': {problem}; find ids with: yc container image list")
