"""Property tests of VEX matching: documents are generated, read by the real reader (``crgate.vex.parse_vex``),
indexed and matched (``crgate.vexmatch``) and judged (``crgate.findings.judge``), and each property is stated
without crgate's own matching code: a purl names its package by decoded name and, when it has one, version;
a statement for another image, package or vulnerability never applies; the latest statement wins whatever
the order of documents; a tie at the latest time counts as ``affected``; an ignore rule outranks VEX."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from hypothesis import assume, given
from hypothesis import strategies as st

from crgate.findings import judge
from crgate.model import Finding, FindingDecision, IgnoreRule, ImageSource, Policy, VexDocument
from crgate.policy import DEFAULT_POLICY
from crgate.vex import parse_purl, parse_vex
from crgate.vexmatch import VexIndex

REPOSITORY = "cr.yandex/crptest/app"
DIGEST = "sha256:" + "b" * 64
INDEX_DIGEST = "sha256:" + "c" * 64
OTHER_DIGEST = "sha256:" + "d" * 64
SOURCE = ImageSource(f"{REPOSITORY}:1.4", DIGEST, f"{REPOSITORY}@{INDEX_DIGEST}", "linux/amd64", INDEX_DIGEST)
TODAY = dt.date(2026, 12, 8)
TIMES0 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

# Package names and versions as scanners report them (Debian, PyPI, npm scopes, Go paths), plus characters
# a purl must percent-encode.
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)
versions = st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1))
purl_types = st.sampled_from(["deb", "pypi", "npm", "golang", "maven", "apk", "rpm", "generic"])
namespaces = st.sampled_from(["", "debian", "alpine", "@scope", "github.com/org", "org.apache"])
times = st.sampled_from(
    [dt.datetime(2026, 11, day, hour, tzinfo=dt.timezone.utc) for day in (1, 2) for hour in (0, 12)]
)
statuses = st.sampled_from(["not_affected", "affected", "fixed", "under_investigation"])


def purl(kind: str, namespace: str, name: str, version: str | None) -> str:
    path = "/".join(quote(part, safe="") for part in namespace.split("/")) + "/" if namespace else ""
    return f"pkg:{kind}/{path}{quote(name, safe='')}" + (f"@{quote(version, safe='')}" if version else "")


def stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def body(
    status: str, products: list[dict[str, Any]], *, cve: str = "CVE-2024-0001", when: dt.datetime | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {"vulnerability": {"name": cve}, "products": products, "status": status}
    if status == "not_affected":
        statement["justification"] = "vulnerable_code_not_present"
    if when is not None:
        statement["timestamp"] = stamp(when)
    return statement


def document(name: str, statements: list[dict[str, Any]], when: dt.datetime) -> VexDocument:
    text = json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": f"https://example.invalid/{quote(name)}",
            "author": "tests",
            "timestamp": stamp(when),
            "version": 1,
            "statements": statements,
        }
    )
    return parse_vex(text, name)


def image_product(*packages: str, digest: str = DIGEST) -> dict[str, Any]:
    product: dict[str, Any] = {"@id": f"pkg:oci/app@{quote(digest, safe='')}?repository_url={REPOSITORY}"}
    if packages:
        product["subcomponents"] = [{"@id": package} for package in packages]
    return product


def policy_with(*documents: VexDocument, ignore: tuple[IgnoreRule, ...] = ()) -> Policy:
    return dataclasses.replace(DEFAULT_POLICY, vex=documents, ignore=ignore)


def decision(policy: Policy, finding: Finding) -> FindingDecision:
    (judged,), _ = judge(policy, SOURCE.reference, [finding], today=TODAY, source=SOURCE)
    return judged.decision


@given(purl_types, namespaces, names, versions)
def test_a_purl_gives_back_its_decoded_name_and_version(kind, namespace, name, version):
    parsed = parse_purl(purl(kind, namespace, name, version))
    assert parsed is not None
    assert (parsed.type, parsed.namespace, parsed.name, parsed.version) == (kind, namespace, name, version)


@given(purl_types, namespaces, names, versions, names, st.text(max_size=12))
def test_a_subcomponent_purl_applies_to_its_package_by_name_and_version(
    kind, namespace, name, version, package, installed
):
    doc = document("a.json", [body("not_affected", [image_product(purl(kind, namespace, name, version))])], TIMES0)
    finding = Finding("CVE-2024-0001", "critical", package, installed)
    expected = package == name and (version is None or version == installed)
    statement, applied = VexIndex.build([doc], SOURCE).match(finding)
    assert (statement is not None) == expected and bool(applied) == expected
    assert decision(policy_with(doc), finding) == (FindingDecision.VEX if expected else FindingDecision.COUNTED)


@given(
    st.sampled_from(["digest", "index", "other digest", "repository", "tag", "other tag", "other repository"]),
    st.booleans(),
    st.sampled_from(["CVE-2024-0001", "cve-2024-0001", "CVE-2024-0002"]),
)
def test_a_statement_applies_only_to_its_own_image_and_vulnerability(product_kind, alias, cve):
    products = {
        "digest": image_product(),
        "index": image_product(digest=INDEX_DIGEST),
        "other digest": image_product(digest=OTHER_DIGEST),
        "repository": {"@id": REPOSITORY},
        "tag": {"@id": f"{REPOSITORY}:1.4"},
        "other tag": {"@id": f"{REPOSITORY}:1.5"},
        "other repository": {"@id": "cr.yandex/crptest/other:1.4"},
    }
    statement = body("not_affected", [products[product_kind]], cve="ALIAS-1" if alias else cve)
    if alias:
        statement["vulnerability"]["aliases"] = [cve]
    doc = document("a.json", [statement], TIMES0)
    applies = product_kind in ("digest", "index", "repository", "tag") and cve.upper() == "CVE-2024-0001"
    finding = Finding("CVE-2024-0001", "high", "openssl", "3.0")
    assert decision(policy_with(doc), finding) == (FindingDecision.VEX if applies else FindingDecision.COUNTED)
    # An image crgate knows only by its id (``--image-id``) is named by no statement.
    (judged,), _ = judge(policy_with(doc), "crpvuln", [finding], today=TODAY, source=None)
    assert judged.decision == FindingDecision.COUNTED


statements_strategy = st.lists(
    st.tuples(statuses, st.one_of(st.none(), times), st.integers(0, 2)),  # status, own time, document
    min_size=1,
    max_size=8,
)


@given(statements_strategy, st.lists(times, min_size=3, max_size=3), st.permutations(range(3)))
def test_the_latest_statement_wins_in_any_order_and_a_tie_counts_as_affected(statements, document_times, order):
    per_document: list[list[dict[str, Any]]] = [[], [], []]
    effective: list[tuple[dt.datetime, str]] = []
    for status, own, which in statements:
        per_document[which].append(body(status, [image_product("pkg:deb/debian/openssl")], when=own))
        effective.append((own or document_times[which], status))
    documents = [document(f"d{i}.json", per_document[i], document_times[i]) for i in range(3) if per_document[i]]
    latest = max(when for when, _ in effective)
    at_latest = [status for when, status in effective if when == latest]
    finding = Finding("CVE-2024-0001", "critical", "openssl", "3.0")
    if len(at_latest) == 1 and at_latest[0] in ("not_affected", "fixed"):
        expected = FindingDecision.VEX
    else:
        expected = FindingDecision.COUNTED  # affected, under investigation, or a tie at the latest time
    ordered = [documents[i] for i in order if i < len(documents)]
    for docs in (documents, ordered, list(reversed(documents))):
        assert decision(policy_with(*docs), finding) == expected
        statement, applied = VexIndex.build(docs, SOURCE).match(finding)
        assert len(applied) == len(statements)  # every statement applied, winning or not: none is stale
        if len(at_latest) == 1:
            assert statement is not None and statement.status == at_latest[0] and statement.timestamp == latest
        else:
            assert statement is None


@given(statuses, st.booleans())
def test_an_ignore_rule_outranks_any_vex_statement(status, ignore):
    doc = document("a.json", [body(status, [image_product()])], TIMES0)
    rules = (IgnoreRule(id="CVE-2024-0001", reason="accepted"),) if ignore else ()
    finding = Finding("CVE-2024-0001", "critical", "openssl", "3.0")
    got = decision(policy_with(doc, ignore=rules), finding)
    if ignore:
        assert got == FindingDecision.IGNORED
    else:
        assert got == (FindingDecision.VEX if status in ("not_affected", "fixed") else FindingDecision.COUNTED)


@given(names, names)
def test_a_statement_for_one_package_leaves_every_other_package_counted(named, other):
    assume(named != other)
    doc = document("a.json", [body("not_affected", [image_product(purl("deb", "debian", named, None))])], TIMES0)
    assert decision(policy_with(doc), Finding("CVE-2024-0001", "critical", other, "1")) == FindingDecision.COUNTED
    assert decision(policy_with(doc), Finding("CVE-2024-0001", "critical", named, "1")) == FindingDecision.VEX
