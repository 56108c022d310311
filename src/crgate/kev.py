"""A catalog of known exploited vulnerabilities in CISA's KEV JSON format, read strictly and bounded.

crgate never downloads the catalog (the pipeline does, and caches it: see the README). The catalog can
only add failures, so keys CISA may add later are accepted; but a missing or mistyped key crgate reads,
a ``count`` that disagrees with the entries (a truncated download), or the same CVE twice is a
``ConfigError`` (exit 2) naming the file and the JSON path: a broken catalog never passes an image.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from types import MappingProxyType
from typing import Any

from crgate import inputs
from crgate.errors import ConfigError
from crgate.model import KevCatalog, KevEntry

# $.vulnerabilities[].cwes[]: three levels; anything far deeper is not a KEV catalog.
MAX_JSON_DEPTH = 8
MAX_ENTRIES = 100_000
RANSOMWARE_VALUES: tuple[str, ...] = ("Known", "Unknown")
_CVE_ID = re.compile(r"CVE-[0-9]{4}-[0-9]{4,}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RELEASED = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")
_FIX = "give CISA's known_exploited_vulnerabilities.json as downloaded (see the README's KEV section)"


def load_kev(path: str | os.PathLike[str]) -> KevCatalog:
    """Read and check the catalog at ``path``; ConfigError (exit 2) naming the file otherwise."""
    source = os.fspath(path)

    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"KEV catalog {source}{'' if line is None else f' (line {line})'}: {message}")

    data = inputs.read_bytes(path, inputs.KEV_CATALOG, bad)
    text = inputs.decode_utf8(data, bad)
    catalog = parse_kev(text, source)
    return KevCatalog(source, hashlib.sha256(data).hexdigest(), catalog.version, catalog.released, catalog.entries)


def parse_kev(text: str, source: str) -> KevCatalog:
    """Parse catalog text; ``source`` names it in messages (``sha256`` is of ``text``)."""

    def fail(path: str, message: str) -> ConfigError:
        return ConfigError(f"KEV catalog {source}: {path}: {message}; {_FIX}")

    def bad(message: str, line: int | None = None) -> ConfigError:
        return ConfigError(f"KEV catalog {source}: {message}; {_FIX}")

    data = inputs.load_json(text, MAX_JSON_DEPTH, bad)
    if not isinstance(data, dict):
        raise fail("$", "expected an object")

    def string(item: dict[str, Any], key: str, path: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            shown = "missing" if key not in item else f"not a non-empty string ({type(value).__name__})"
            raise fail(f"{path}.{key}", f"is {shown}")
        return value

    def date(item: dict[str, Any], key: str, path: str) -> dt.date:
        value = string(item, key, path)
        try:
            if not _DATE.fullmatch(value):
                raise ValueError("expected YYYY-MM-DD")
            return dt.date.fromisoformat(value)
        except ValueError as error:
            raise fail(f"{path}.{key}", f"{value!r} is not a date ({error})") from None

    version = string(data, "catalogVersion", "$")
    released_text = string(data, "dateReleased", "$")
    if not _RELEASED.fullmatch(released_text):
        raise fail("$.dateReleased", f"{released_text!r} is not a UTC timestamp like 2026-01-31T17:59:29.7087Z")
    fraction = released_text[20:-1]
    try:
        released = dt.datetime.fromisoformat(released_text[:19] + (f".{fraction[:6]}" if fraction else "") + "+00:00")
    except ValueError as error:
        raise fail("$.dateReleased", f"{released_text!r} is not a real time ({error})") from None
    entries = data.get("vulnerabilities")
    if not isinstance(entries, list):
        raise fail("$.vulnerabilities", "is missing" if entries is None else "expected a list")
    count = data.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count != len(entries):
        raise fail("$.count", f"is {count!r} but the catalog lists {len(entries)} vulnerabilities (truncated?)")
    if len(entries) > MAX_ENTRIES:
        raise fail("$.vulnerabilities", f"{len(entries):,} entries, more than {MAX_ENTRIES:,}")
    by_cve: dict[str, KevEntry] = {}
    for index, item in enumerate(entries):
        path = f"$.vulnerabilities[{index}]"
        if not isinstance(item, dict):
            raise fail(path, "expected an object")
        cve = string(item, "cveID", path)
        if not _CVE_ID.fullmatch(cve):
            raise fail(f"{path}.cveID", f"{cve!r} is not a CVE id (CVE-YYYY-NNNN)")
        if cve.upper() in by_cve:
            raise fail(f"{path}.cveID", f"{cve} is listed twice")
        ransomware = string(item, "knownRansomwareCampaignUse", path)
        if ransomware not in RANSOMWARE_VALUES:
            raise fail(
                f"{path}.knownRansomwareCampaignUse",
                f"expected one of {', '.join(RANSOMWARE_VALUES)}, got {ransomware!r}",
            )
        by_cve[cve.upper()] = KevEntry(cve, date(item, "dateAdded", path), date(item, "dueDate", path), ransomware)
    return KevCatalog(source, hashlib.sha256(text.encode()).hexdigest(), version, released, MappingProxyType(by_cve))
