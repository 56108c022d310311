"""How GitHub code scanning and GitLab's vulnerability report tell findings apart, re-implemented from
their published sources so tests can count the alerts and vulnerabilities a report would become.

- ``upload_sarif_line_hashes``/``github_alerts``: github/codeql-action ``src/fingerprints.ts`` (``hash``:
  a rolling hash over the first 100 non-blank characters from each line; ``addFingerprints`` fills
  ``partialFingerprints.primaryLocationLineHash`` of each result whose primary location has a line, and
  keeps a value the result already has). GitHub then matches results by category, rule and that hash.
- ``gitlab_vulnerabilities``: GitLab's ``Gitlab::Ci::Reports::Security::Locations::ContainerScanning``
  (``fingerprint_data`` = ``"#{docker_image_name_without_tag}:#{package_name}"``, SHA-1; the image is
  ``default_branch_image`` off the default branch when ``DefaultBranchImageValidator`` accepts it) and
  ``Identifier#fingerprint`` (SHA-1 of ``"#{type}:#{value}"``); a vulnerability is the pair of the
  primary identifier's fingerprint and the location fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

_BLOCK = 100
_MOD = 37
_MASK = (1 << 64) - 1
_EOF = 65535


def upload_sarif_line_hashes(text: str) -> dict[int, str]:
    """Line number (1-based) -> ``"<hex>:<n>"``, as codeql-action's ``hash`` computes them."""
    first_mod = pow(_MOD, _BLOCK, 1 << 64)
    window = [0] * _BLOCK
    line_numbers = [-1] * _BLOCK
    state = {"hash": 0, "index": 0, "line": 0, "line_start": True, "prev_cr": False}
    counts: dict[str, int] = {}
    hashes: dict[int, str] = {}

    def output() -> None:
        value = format(state["hash"] & _MASK, "x")
        counts[value] = counts.get(value, 0) + 1
        hashes[line_numbers[state["index"]]] = f"{value}:{counts[value]}"
        line_numbers[state["index"]] = -1

    def update(current: int) -> None:
        index = state["index"]
        begin = window[index]
        window[index] = current
        state["hash"] = (_MOD * state["hash"] + current - first_mod * begin) & _MASK
        state["index"] = (index + 1) % _BLOCK

    def process(current: int) -> None:
        if current in (0x20, 0x09) or (state["prev_cr"] and current == 0x0A):
            state["prev_cr"] = False
            return
        if current == 0x0D:
            current = 0x0A
            state["prev_cr"] = True
        else:
            state["prev_cr"] = False
        if line_numbers[state["index"]] != -1:
            output()
        if state["line_start"]:
            state["line_start"] = False
            state["line"] += 1
            line_numbers[state["index"]] = state["line"]
        if current == 0x0A:
            state["line_start"] = True
        update(current)

    for unit in _utf16_units(text):
        process(unit)
    process(_EOF)
    for _ in range(_BLOCK):
        if line_numbers[state["index"]] != -1:
            output()
        update(0)
    return hashes


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le")
    return [int.from_bytes(data[i : i + 2], "little") for i in range(0, len(data), 2)]


def upload_sarif(doc: dict, files: Mapping[str, str]) -> dict:
    """``doc`` as upload-sarif sends it: ``primaryLocationLineHash`` filled in where it is missing and the
    located file exists (``files``: repository path -> text)."""
    hashes = {path: upload_sarif_line_hashes(text) for path, text in files.items()}
    for run in doc["runs"]:
        for result in run.get("results", []):
            location = (result.get("locations") or [{}])[0].get("physicalLocation", {})
            line = location.get("region", {}).get("startLine")
            path = location.get("artifactLocation", {}).get("uri")
            if line is None or path not in hashes or line not in hashes[path]:
                continue
            fingerprints = result.setdefault("partialFingerprints", {})
            fingerprints.setdefault("primaryLocationLineHash", hashes[path][line])
    return doc


def github_alerts(doc: dict, files: Mapping[str, str]) -> dict[tuple[str, str, str], list[dict]]:
    """(category, ruleId, primaryLocationLineHash) -> the results GitHub files under that one alert."""
    alerts: dict[tuple[str, str, str], list[dict]] = {}
    for run in upload_sarif(doc, files)["runs"]:
        category = run.get("automationDetails", {}).get("id", "")
        for result in run["results"]:
            key = (category, result["ruleId"], result["partialFingerprints"]["primaryLocationLineHash"])
            alerts.setdefault(key, []).append(result)
    return alerts


# RubyGems' Gem::Version::ANCHORED_VERSION_PATTERN
_GEM_VERSION = re.compile(r"\A\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?\s*\Z")
_HASH_LIKE = re.compile(r"\A[0-9a-f]{32,128}\Z", re.IGNORECASE)
_IMAGE_WITHOUT_REVISION = re.compile(r".+?(?=:)")


def _semver_like(version: str) -> bool:
    return bool(_GEM_VERSION.match(version)) and not _HASH_LIKE.match(version)


def docker_image_name_without_tag(image: str) -> str:
    base, _, version = image.rpartition(":")
    return image if _semver_like(version) else base


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def gitlab_vulnerabilities(
    doc: dict,
    *,
    default_branch: bool,
    known_images: Callable[[], list[str]] = list,
) -> dict[tuple[str, str], list[dict]]:
    """(primary identifier fingerprint, location fingerprint) -> the report's findings GitLab files as that
    one vulnerability. ``known_images``: the ``location.image`` of the project's vulnerabilities so far
    (what ``DefaultBranchImageValidator`` looks up)."""
    vulnerabilities: dict[tuple[str, str], list[dict]] = {}
    for vulnerability in doc["vulnerabilities"]:
        location = vulnerability["location"]
        image = location["image"]
        branch_image = None if default_branch else location.get("default_branch_image")
        if branch_image:
            match = _IMAGE_WITHOUT_REVISION.match(branch_image)
            prefix = match.group() if match else ""  # Ruby's "#{nil}%" is "%": any image matches
            if any(known.startswith(prefix) for known in known_images()):
                image = branch_image
        package = location["dependency"]["package"]["name"]
        location_fingerprint = _sha1(f"{docker_image_name_without_tag(image)}:{package}")
        primary = vulnerability["identifiers"][0]
        identifier_fingerprint = _sha1(f"{primary['type']}:{primary['value']}")
        vulnerabilities.setdefault((identifier_fingerprint, location_fingerprint), []).append(vulnerability)
    return vulnerabilities
