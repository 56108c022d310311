"""VEX documents (OpenVEX 0.2.0): read strictly and bounded into ``crgate.model.VexDocument``.

A VEX statement can take a finding out of the counts, so a document is read like a policy: every key
known (an unknown key, a wrong type, a ``not_affected`` without its justification or impact statement, a
malformed purl or timestamp is a ``ConfigError``, exit 2, naming the file and the JSON path), every
size bounded. What crgate cannot tie to an image in Yandex Container Registry (a product that is a
``pkg:deb`` purl, an image of another registry, a ``pkg:oci`` purl with neither digest nor
``repository_url``) is not an error: such a product matches nothing, and a statement of nothing but
such products is reported as unmatched. Matching statements to findings is ``crgate.vexmatch``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from crgate import inputs
from crgate.errors import ConfigError, ImageRefError
from crgate.images import parse_image_ref
from crgate.model import VexDocument, VexProduct, VexStatement, VexStatus

OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0"
JUSTIFICATIONS: tuple[str, ...] = (
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
)
# A document nests eight levels ($.statements[].products[].subcomponents[].identifiers); far deeper is not VEX.
MAX_JSON_DEPTH = 16
MAX_STATEMENTS = 10_000
MAX_PRODUCTS = 100_000
"""Products and subcomponents of one document together."""
MAX_TEXT = 10_000
"""Characters of any one string (a justification, an impact statement, a purl)."""
MAX_ALIASES = 100

_DOCUMENT_KEYS = {"@context": True, "@id": True, "author": True, "timestamp": True, "version": True, "statements": True}
_DOCUMENT_OPTIONAL = ("role", "last_updated", "tooling")
_STATEMENT_KEYS = {"vulnerability": True, "products": True, "status": True}
_STATEMENT_OPTIONAL = (
    "@id",
    "version",
    "timestamp",
    "last_updated",
    "supplier",
    "status_notes",
    "justification",
    "impact_statement",
    "action_statement",
    "action_statement_timestamp",
)
_VULNERABILITY_KEYS = {"name": True}
_VULNERABILITY_OPTIONAL = ("@id", "description", "aliases")
_COMPONENT_OPTIONAL = ("@id", "identifiers", "hashes")
_PRODUCT_OPTIONAL = (*_COMPONENT_OPTIONAL, "subcomponents")
_IDENTIFIER_KEYS = ("purl", "cpe22", "cpe23")
_HASH_KEYS = (
    "md5",
    "sha1",
    "sha-256",
    "sha-384",
    "sha-512",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "blake2s-256",
    "blake2b-256",
    "blake2b-512",
)
_STATUSES = {status.value: status for status in VexStatus}
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_FIX = "write OpenVEX 0.2.0 (https://github.com/openvex/spec), e.g. with 'vexctl create'"


@dataclass(frozen=True)
class Purl:
    """A package URL, decoded: ``pkg:deb/debian/openssl@3.0.11-1?arch=amd64``."""

    type: str
    namespace: str
    name: str
    version: str | None
    qualifiers: Mapping[str, str]


def parse_purl(text: str) -> Purl | None:
    """The purl ``text`` decoded (type lowercased; name, version and qualifier values percent-decoded), or
    None when it is not a well-formed purl (no ``pkg:`` scheme, no type or no name)."""
    if not text.startswith("pkg:"):
        return None
    rest = text[4:].partition("#")[0]
    rest, _, query = rest.partition("?")
    rest = rest.strip("/")
    kind, sep, path = rest.partition("/")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9.+-]*", kind):
        return None
    version = None
    if "@" in path:
        path, version = path.rsplit("@", 1)
        version = unquote(version) or None
    namespace, _, name = path.rpartition("/")
    if not name:
        return None
    qualifiers = {}
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        qualifiers[key.lower()] = unquote(value)
    return Purl(kind.lower(), unquote(namespace), unquote(name), version, qualifiers)


def load_vex(path: str | os.PathLike[str]) -> VexDocument:
    """Read and check the VEX document at ``path``; ConfigError (exit 2) naming the file otherwise."""
    source = os.fspath(path)

    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"VEX document {source}{'' if line is None else f' (line {line})'}: {message}")

    data = inputs.read_bytes(path, inputs.VEX, bad)
    document = parse_vex(inputs.decode_utf8(data, bad), source)
    return VexDocument(source, hashlib.sha256(data).hexdigest(), document.statements, document.format)


def parse_vex(text: str, source: str) -> VexDocument:
    """Parse VEX text; ``source`` names the document in messages and statements (``sha256`` is of ``text``)."""

    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"VEX document {source}{'' if line is None else f' (line {line})'}: {message}")

    data = inputs.load_json(text, MAX_JSON_DEPTH, bad, fix=_FIX)
    reader = _Reader(source)
    statements = reader.document(data)
    return VexDocument(source, hashlib.sha256(text.encode()).hexdigest(), statements)


class _Reader:
    """The checks of one document; every error names the JSON path (``$.statements[2].status``)."""

    def __init__(self, source: str):
        self.source = source
        self.products = 0

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"VEX document {self.source}: {path}: {message}")

    def object(self, value: Any, path: str, required: Mapping[str, bool], optional: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        known = (*required, *optional)
        for key in value:
            if key not in known:
                raise self.fail(f"{path}.{key}", f"unknown key (OpenVEX 0.2.0 has {', '.join(known)} here); {_FIX}")
        for key in required:
            if key not in value:
                raise self.fail(f"{path}.{key}", f"is missing; {_FIX}")
        return value

    def text(self, data: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str | None:
        """A non-empty, bounded string; an optional key may be absent or null (None)."""
        value = data.get(key)
        if value is None:
            if optional:
                return None
            raise self.fail(f"{path}.{key}", "is missing" if key not in data else "is null; write a string")
        if not isinstance(value, str):
            raise self.fail(f"{path}.{key}", f"expected a string, got {_kind(value)}")
        if not value.strip():
            raise self.fail(f"{path}.{key}", "is empty")
        if len(value) > MAX_TEXT:
            raise self.fail(f"{path}.{key}", f"is {len(value):,} characters long, more than {MAX_TEXT:,}")
        return value

    def timestamp(self, data: Mapping[str, Any], key: str, path: str) -> dt.datetime | None:
        text = self.text(data, key, path, optional=True)
        if text is None:
            return None
        match = _TIMESTAMP.fullmatch(text)
        if match is None:
            raise self.fail(
                f"{path}.{key}", f"{text!r} is not an RFC 3339 timestamp; write e.g. '2026-01-31T12:00:00Z'"
            )
        fraction = match.group(1)
        normal = text if fraction is None or len(fraction) <= 6 else text.replace(fraction, fraction[:6], 1)
        try:
            return dt.datetime.fromisoformat(normal.replace("z", "Z").replace("t", "T"))
        except ValueError as error:
            raise self.fail(f"{path}.{key}", f"{text!r} is not a real time ({error})") from None

    def document(self, data: Any) -> tuple[VexStatement, ...]:
        data = self.object(data, "$", _DOCUMENT_KEYS, _DOCUMENT_OPTIONAL)
        context = data["@context"]
        if context != OPENVEX_CONTEXT:
            shown = context if isinstance(context, str) else _kind(context)
            raise self.fail(
                "$.@context",
                f"expected {OPENVEX_CONTEXT!r}, got {shown!r}: this crgate reads OpenVEX 0.2.0 (CycloneDX and CSAF "
                "VEX are not read); convert the document, e.g. with 'vexctl merge'",
            )
        self.text(data, "@id", "$")
        self.text(data, "author", "$")
        for key in ("role", "tooling"):
            self.text(data, key, "$", optional=True)
        version = data["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self.fail("$.version", f"expected a whole number >= 1, got {version!r}")
        timestamp = self.timestamp(data, "timestamp", "$")
        assert timestamp is not None  # required: text() refused a missing or null one
        self.timestamp(data, "last_updated", "$")
        statements = data["statements"]
        if not isinstance(statements, list):
            raise self.fail("$.statements", f"expected a list of statements, got {_kind(statements)}")
        if len(statements) > MAX_STATEMENTS:
            raise self.fail(
                "$.statements", f"{len(statements):,} statements, more than {MAX_STATEMENTS:,}; split the document"
            )
        return tuple(self.statement(item, index, timestamp) for index, item in enumerate(statements))

    def statement(self, data: Any, index: int, document_time: dt.datetime) -> VexStatement:
        path = f"$.statements[{index}]"
        data = self.object(data, path, _STATEMENT_KEYS, _STATEMENT_OPTIONAL)
        for key in ("@id", "supplier", "status_notes", "action_statement"):
            self.text(data, key, path, optional=True)
        version = data.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise self.fail(f"{path}.version", f"expected a whole number >= 1, got {version!r}")
        timestamp = self.timestamp(data, "timestamp", path) or document_time
        for key in ("last_updated", "action_statement_timestamp"):
            self.timestamp(data, key, path)
        name, aliases = self.vulnerability(data["vulnerability"], f"{path}.vulnerability")
        status_text = data["status"]
        status = _STATUSES.get(status_text) if isinstance(status_text, str) else None
        if status is None:
            raise self.fail(f"{path}.status", f"expected one of {', '.join(_STATUSES)}, got {status_text!r}")
        justification = self.text(data, "justification", path, optional=True)
        if justification is not None and justification not in JUSTIFICATIONS:
            raise self.fail(
                f"{path}.justification", f"expected one of {', '.join(JUSTIFICATIONS)}, got {justification!r}"
            )
        impact = self.text(data, "impact_statement", path, optional=True)
        if status == VexStatus.NOT_AFFECTED and justification is None and impact is None:
            raise self.fail(
                path,
                "a not_affected statement needs a 'justification' (one of "
                f"{', '.join(JUSTIFICATIONS)}) or an 'impact_statement' saying why; the spec requires one",
            )
        return VexStatement(
            document=self.source,
            index=index,
            vulnerabilities=frozenset(v.upper() for v in (name, *aliases)),
            name=name,
            products=self.products_of(data["products"], f"{path}.products"),
            status=status,
            timestamp=timestamp,
            justification=justification,
            impact_statement=impact,
        )

    def vulnerability(self, data: Any, path: str) -> tuple[str, tuple[str, ...]]:
        data = self.object(data, path, _VULNERABILITY_KEYS, _VULNERABILITY_OPTIONAL)
        name = self.text(data, "name", path)
        assert name is not None
        self.text(data, "@id", path, optional=True)
        self.text(data, "description", path, optional=True)
        aliases = data.get("aliases", [])
        if not isinstance(aliases, list):
            raise self.fail(f"{path}.aliases", f"expected a list of vulnerability ids, got {_kind(aliases)}")
        if len(aliases) > MAX_ALIASES:
            raise self.fail(f"{path}.aliases", f"{len(aliases)} aliases, more than {MAX_ALIASES}")
        names = []
        for position, alias in enumerate(aliases):
            if not isinstance(alias, str) or not alias.strip() or len(alias) > MAX_TEXT:
                raise self.fail(f"{path}.aliases[{position}]", f"expected a vulnerability id, got {_kind(alias)}")
            names.append(alias)
        for value in (name, *names):
            if any(ch.isspace() for ch in value):
                raise self.fail(path, f"the vulnerability id {value!r} contains spaces; write one id per name or alias")
        return name, tuple(names)

    def products_of(self, data: Any, path: str) -> tuple[VexProduct, ...]:
        if not isinstance(data, list) or not data:
            what = "an empty list" if data == [] else _kind(data)
            raise self.fail(path, f"expected a non-empty list of products, got {what}")
        products: list[VexProduct] = []
        for index, item in enumerate(data):
            products.extend(self.product(item, f"{path}[{index}]"))
        return tuple(products)

    def count_product(self, path: str) -> None:
        self.products += 1
        if self.products > MAX_PRODUCTS:
            raise self.fail(path, f"more than {MAX_PRODUCTS:,} products and subcomponents in one document; split it")

    def identifiers(self, data: Mapping[str, Any], path: str) -> list[str]:
        """The component's ``@id`` and ``identifiers.purl`` (the CPEs are checked, not used); its
        ``hashes`` are checked and returned apart by ``hashes``."""
        found = []
        identifier = self.text(data, "@id", path, optional=True)
        if identifier is not None:
            found.append(identifier)
        ids = data.get("identifiers")
        if ids is not None:
            ids = self.object(ids, f"{path}.identifiers", {}, _IDENTIFIER_KEYS)
            for key in _IDENTIFIER_KEYS:
                value = self.text(ids, key, f"{path}.identifiers", optional=True)
                if key == "purl" and value is not None and value not in found:
                    found.append(value)
        return found

    def hashes(self, data: Mapping[str, Any], path: str) -> str | None:
        """The component's ``hashes`` checked; its ``sha-256``, as a digest, when it has one."""
        hashes = data.get("hashes")
        if hashes is None:
            return None
        hashes = self.object(hashes, f"{path}.hashes", {}, _HASH_KEYS)
        for key in _HASH_KEYS:
            self.text(hashes, key, f"{path}.hashes", optional=True)
        value = hashes.get("sha-256")
        if value is None:
            return None
        if not _SHA256_HEX.fullmatch(value.lower()):
            raise self.fail(f"{path}.hashes.sha-256", f"expected 64 hex digits, got {value!r}")
        return f"sha256:{value.lower()}"

    def product(self, data: Any, path: str) -> list[VexProduct]:
        """The image(s) one product names (one ``VexProduct`` per identifier that ties it to an image), or one
        that matches nothing."""
        self.count_product(path)
        data = self.object(data, path, {}, _PRODUCT_OPTIONAL)
        ids = self.identifiers(data, path)
        digest = self.hashes(data, path)
        if not ids and digest is None:
            raise self.fail(path, "a product needs an '@id', 'identifiers' or 'hashes' to say what it is")
        packages = self.subcomponents(data.get("subcomponents"), f"{path}.subcomponents")
        label = ids[0] if ids else digest or ""
        products = [p for p in (self.image(text, path, packages) for text in ids) if p is not None]
        if digest is not None:
            products.append(VexProduct(label=label, digest=digest, packages=packages))
        return products or [VexProduct(label=label, image=False, packages=packages)]

    def image(self, text: str, path: str, packages: tuple[tuple[str, str | None], ...]) -> VexProduct | None:
        """The image ``text`` names (a ``pkg:oci`` purl or a Yandex reference), or None for another product."""
        if text.startswith("pkg:"):
            purl = parse_purl(text)
            if purl is None:
                raise self.fail(path, f"{text!r} is not a valid package URL (pkg:TYPE/NAME@VERSION)")
            if purl.type != "oci":
                return None
            digest = purl.version.lower() if purl.version else None
            if digest is not None and not (digest.startswith("sha256:") and _SHA256_HEX.fullmatch(digest[7:])):
                raise self.fail(path, f"{text!r}: a pkg:oci version must be sha256:<64 hex digits>, got {digest!r}")
            repository = purl.qualifiers.get("repository_url")
            if repository is not None:
                repository = repository.removeprefix("https://").removeprefix("oci://").rstrip("/")
                host, _, rest = repository.partition("/")
                repository = f"{host.lower()}/{rest}"
                if repository.rsplit("/", 1)[-1] != purl.name.lower():
                    raise self.fail(
                        path, f"{text!r}: the purl's name {purl.name!r} is not the last part of its repository_url"
                    )
            if digest is None and repository is None:
                return None  # "any image called <name>": crgate cannot tell which
            return VexProduct(label=text, digest=digest, repository=repository, packages=packages)
        try:
            ref = parse_image_ref(text)
        except ImageRefError:
            return None
        last = text.split("@", 1)[0].rsplit("/", 1)[-1]
        tag = ref.tag if ":" in last else None
        repository = f"{ref.host}/{ref.registry_id}/{ref.repository}"
        return VexProduct(label=text, digest=ref.digest, repository=repository, tag=tag, packages=packages)

    def subcomponents(self, data: Any, path: str) -> tuple[tuple[str, str | None], ...]:
        """(name, version or None) of each subcomponent: a purl's name and version, else its ``@id``."""
        if data is None:
            return ()
        if not isinstance(data, list) or not data:
            what = "an empty list" if data == [] else _kind(data)
            raise self.fail(path, f"expected a non-empty list of packages, got {what} (remove the key for all)")
        packages: list[tuple[str, str | None]] = []
        for index, item in enumerate(data):
            item_path = f"{path}[{index}]"
            self.count_product(item_path)
            item = self.object(item, item_path, {}, _COMPONENT_OPTIONAL)
            ids = self.identifiers(item, item_path)
            self.hashes(item, item_path)
            if not ids:
                raise self.fail(item_path, "a subcomponent needs an '@id' or an 'identifiers.purl' naming the package")
            purls = [text for text in ids if text.startswith("pkg:")]
            if purls:
                purl = parse_purl(purls[0])
                if purl is None:
                    raise self.fail(item_path, f"{purls[0]!r} is not a valid package URL (pkg:TYPE/NAME@VERSION)")
                packages.append((purl.name, purl.version))
            else:
                packages.append((ids[0], None))
        return tuple(packages)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
