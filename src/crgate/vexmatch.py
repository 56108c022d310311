"""Which VEX statement applies to a finding of one image (pure).

A statement applies when its vulnerability (name or an alias) is the finding's and one of its products is
the image, by digest (the image's own, or for a platform image of an index, the index's; a
``repository_url`` must name the image's repository too), by repository (every tag) or by reference
(repository and tag), and the product either lists no subcomponents (every package) or lists the
finding's package by name (and, when the subcomponent gives one, version). Of the statements that apply,
the latest (by its timestamp, else its document's) wins; when two or more share the latest time, none
wins: the finding is judged as if no statement applied (a tie counts as ``affected``).

Statements are indexed by vulnerability id for each image, so a finding no statement names costs one
dict lookup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crgate.errors import ImageRefError
from crgate.images import parse_image_ref
from crgate.model import Finding, ImageSource, VexDocument, VexProduct, VexStatement

Packages = tuple[tuple[str, str | None], ...] | None
"""The packages a statement names in one image; None: every package."""


@dataclass(frozen=True)
class ImageIdentity:
    """What a VEX product can name of one gated image."""

    repository: str | None
    """``cr.yandex/<registry-id>/<repository>``."""
    tag: str | None
    digests: frozenset[str]
    """The image's manifest digest, and its index's for a platform image."""

    @classmethod
    def of(cls, source: ImageSource | None) -> ImageIdentity | None:
        """None for an image without a registry source (``--image-id``): no VEX product can name it."""
        if source is None:
            return None
        try:
            ref = parse_image_ref(source.reference)
        except ImageRefError:
            repository, tag = None, None
        else:
            repository, tag = f"{ref.host}/{ref.registry_id}/{ref.repository}", ref.tag
            if ref.digest is not None and ":" not in source.reference.split("@", 1)[0].rsplit("/", 1)[-1]:
                tag = None  # ``repo@sha256:...`` names no tag (parse_image_ref defaults only when neither is given)
        digests = frozenset(d for d in (source.digest, source.index_digest) if d)
        return cls(repository, tag, digests)


def product_matches(product: VexProduct, image: ImageIdentity) -> bool:
    if not product.image:
        return False
    if product.digest is not None:
        if product.digest not in image.digests:
            return False
        return product.repository is None or product.repository == image.repository
    if product.repository is None or product.repository != image.repository:
        return False
    return product.tag is None or product.tag == image.tag


def package_matches(packages: Packages, finding: Finding) -> bool:
    if packages is None:
        return True
    return any(
        name == finding.package and (version is None or version == finding.version) for name, version in packages
    )


@dataclass(frozen=True)
class VexIndex:
    """The statements that name one image, by vulnerability id (uppercased), each with the packages it names."""

    by_vulnerability: Mapping[str, tuple[tuple[VexStatement, Packages], ...]]

    @classmethod
    def build(cls, documents: Sequence[VexDocument], source: ImageSource | None) -> VexIndex:
        image = ImageIdentity.of(source)
        if image is None or not documents:
            return cls({})
        found: dict[str, list[tuple[VexStatement, Packages]]] = defaultdict(list)
        for document in documents:
            for statement in document.statements:
                matching = [product for product in statement.products if product_matches(product, image)]
                if not matching:
                    continue
                packages: Packages
                if any(not product.packages for product in matching):
                    packages = None
                else:
                    packages = tuple(package for product in matching for package in product.packages)
                for vulnerability in statement.vulnerabilities:
                    found[vulnerability].append((statement, packages))
        return cls({key: tuple(value) for key, value in found.items()})

    def match(self, finding: Finding) -> tuple[VexStatement | None, tuple[VexStatement, ...]]:
        """The winning statement for ``finding`` (None when none applies or the latest ones tie), and every
        statement that applied (they are not stale, winning or not)."""
        candidates = self.by_vulnerability.get(finding.cve.upper())
        if not candidates:
            return None, ()
        applied = tuple(statement for statement, packages in candidates if package_matches(packages, finding))
        if not applied:
            return None, ()
        latest = max(statement.timestamp for statement in applied)
        winners = {statement for statement in applied if statement.timestamp == latest}
        return (next(iter(winners)) if len(winners) == 1 else None), applied


def statement_key(statement: VexStatement) -> tuple[str, int]:
    """What names one statement across a run: its document and its place in it."""
    return statement.document, statement.index
