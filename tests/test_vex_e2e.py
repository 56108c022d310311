"""VEX end to end: ``--vex`` and the policy's ``vex:`` list through the CLI against the emulator, in every
output format, and every way a VEX document can be wrong (exit 2, naming the file and the JSON path)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import DIGEST_A, DIGEST_B, VULNERABLE_FINDINGS, check_args, digest_of, finding, image, run_cli, scenario

VULN = "cr.yandex/crptest/app:vuln"
OTHER = "cr.yandex/crptest/app:other"
FINDINGS = [*VULNERABLE_FINDINGS, finding("CVE-2024-0001", "CRITICAL", package="libssl3", fixed_by="1.0.1")]


@pytest.fixture
def emu(start_emulator):
    return start_emulator(
        scenario(
            image("crpvuln", "vuln", DIGEST_B, FINDINGS),
            image("crpother", "other", DIGEST_A, [finding("CVE-2024-0001", "CRITICAL", fixed_by="1.0.1")]),
        )
    )


def statement(product: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "vulnerability": {"name": "CVE-2024-0001"},
        "products": [product],
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def oci_product(digest: str, *packages: str) -> dict[str, Any]:
    product: dict[str, Any] = {"@id": f"pkg:oci/app@{digest.replace(':', '%3A')}?repository_url=cr.yandex/crptest/app"}
    if packages:
        product["subcomponents"] = [{"@id": purl} for purl in packages]
    return product


def vex_document(*statements: dict[str, Any], timestamp: str = "2026-12-01T10:00:00Z") -> dict[str, Any]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.invalid/vex/app-1",
        "author": "Platform security <security@example.invalid>",
        "timestamp": timestamp,
        "version": 1,
        "statements": list(statements),
    }


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return str(path)


def openssl_vex(emu, tmp_path: Path, **fields: Any) -> str:
    digest = digest_of(emu, "crpvuln")
    return write(
        tmp_path,
        "app.openvex.json",
        vex_document(statement(oci_product(digest, "pkg:deb/debian/openssl@1.0.0"), **fields)),
    )


def json_run(emu, *args: str, refs: tuple[str, ...] = (VULN, OTHER)) -> tuple[int, dict[str, Any], str]:
    result = run_cli(check_args(emu, *refs, "--max", "critical=0", "--format", "json", *args))
    assert result.code in (0, 1), result.output
    return result.code, json.loads(result.stdout), result.stderr


def findings_of(doc: dict[str, Any], index: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["cve"], f["package"]): f for f in doc["images"][index]["findings"]}


def test_not_affected_takes_out_exactly_that_package_in_that_image(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path)
    code, doc, _ = json_run(emu, "--vex", vex)
    assert code == 1
    vuln, other = findings_of(doc, 0), findings_of(doc, 1)
    taken = vuln[("CVE-2024-0001", "openssl")]
    assert taken["decision"] == "vex"
    assert taken["vex"] == {
        "document": vex,
        "statement": 0,
        "vulnerability": "CVE-2024-0001",
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
        "impact_statement": None,
        "timestamp": "2026-12-01T10:00:00Z",
    }
    assert vuln[("CVE-2024-0001", "libssl3")]["decision"] == "counted"  # the same CVE in another package
    assert other[("CVE-2024-0001", "openssl")]["decision"] == "counted"  # ... and in another image
    assert doc["images"][0]["counted"]["critical"] == 1 and doc["images"][0]["counts"]["critical"] == 2
    assert doc["images"][1]["counted"]["critical"] == 1
    listed = doc["policy"]["vex"]
    assert listed == [{"path": vex, "sha256": listed[0]["sha256"], "format": "openvex", "statements": 1}]
    assert len(listed[0]["sha256"]) == 64
    assert doc["stale_vex"] == []


def test_a_vex_statement_lets_an_image_pass(emu, tmp_path):
    digest = digest_of(emu, "crpother")
    vex = write(tmp_path, "other.json", vex_document(statement({"@id": f"{OTHER.rsplit(':', 1)[0]}:other"})))
    code, doc, _ = json_run(emu, "--vex", vex, refs=(OTHER,))
    assert code == 0
    assert doc["images"][0]["findings"][0]["decision"] == "vex"
    assert doc["images"][0]["digest"] == digest


@pytest.mark.parametrize(
    "fields",
    [{"status": "affected", "justification": None, "action_statement": "upgrade"}, {"status": "under_investigation"}],
)
def test_affected_and_under_investigation_keep_the_finding_counted_and_say_so(emu, tmp_path, fields):
    vex = openssl_vex(emu, tmp_path, **fields)
    _, doc, _ = json_run(emu, "--vex", vex)
    judged = findings_of(doc, 0)[("CVE-2024-0001", "openssl")]
    assert judged["decision"] == "counted"
    assert judged["vex"]["status"] == fields["status"]


def test_fixed_takes_the_finding_out(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path, status="fixed", justification=None)
    _, doc, _ = json_run(emu, "--vex", vex)
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["vex"]["status"] == "fixed"
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["decision"] == "vex"


def test_the_latest_statement_wins_across_documents_and_a_tie_counts(emu, tmp_path):
    digest = digest_of(emu, "crpvuln")
    product = oci_product(digest, "pkg:deb/debian/openssl")
    old = write(tmp_path, "old.json", vex_document(statement(product), timestamp="2026-11-01T00:00:00Z"))
    newer = write(
        tmp_path,
        "new.json",
        vex_document(statement(product, status="affected", justification=None), timestamp="2026-12-01T00:00:00Z"),
    )
    _, doc, _ = json_run(emu, "--vex", old, "--vex", newer)
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["decision"] == "counted"
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["vex"]["document"] == newer
    # The statement's own timestamp outranks its document's.
    later = write(
        tmp_path,
        "later.json",
        vex_document(statement(product, timestamp="2026-12-02T00:00:00Z"), timestamp="2026-01-01T00:00:00Z"),
    )
    _, doc, _ = json_run(emu, "--vex", newer, "--vex", later)
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["decision"] == "vex"
    # Two statements at the same latest time: a tie counts as affected (no statement wins).
    tie = write(tmp_path, "tie.json", vex_document(statement(product), timestamp="2026-12-01T00:00:00Z"))
    _, doc, stderr = json_run(emu, "--vex", newer, "--vex", tie)
    judged = findings_of(doc, 0)[("CVE-2024-0001", "openssl")]
    assert judged["decision"] == "counted" and judged["vex"] is None
    assert doc["stale_vex"] == []  # both applied, neither won: neither is stale


def test_a_platform_image_matches_a_statement_naming_its_own_digest_or_its_index(start_emulator, tmp_path):
    from test_multiplatform_e2e import MULTI, emulator_data

    emu = start_emulator(emulator_data())
    index, amd64, arm64 = (digest_of(emu, name) for name in ("crpmulti", "crpamd64", "crparm64"))

    def vex_for(digest: str) -> str:
        body = vex_document(
            {
                "vulnerability": {"name": "ALIAS-1", "aliases": ["CVE-2024-0100"]},
                "products": [{"@id": f"pkg:oci/app@{digest.replace(':', '%3A')}"}],
                "status": "not_affected",
                "impact_statement": "the service never inflates untrusted data",
            }
        )
        return write(tmp_path, f"{digest[7:19]}.json", body)

    for digest, decision in ((index, "vex"), (arm64, "vex"), (amd64, "counted")):
        result = run_cli(check_args(emu, MULTI, "--format", "json", "--vex", vex_for(digest)))
        doc = json.loads(result.stdout)
        arm = next(i for i in doc["images"] if i["platform"] == "linux/arm64/v8")
        assert arm["findings"][0]["decision"] == decision, digest
        assert result.code == (0 if decision == "vex" else 1)
        if decision == "vex":
            assert arm["findings"][0]["vex"]["impact_statement"] == "the service never inflates untrusted data"


def test_a_statement_for_another_product_matches_nothing_and_is_reported_stale(emu, tmp_path):
    body = vex_document(
        statement({"@id": "pkg:deb/debian/openssl@1.0.0"}),
        statement({"@id": "docker.io/library/app:vuln"}),
        statement({"@id": "cr.yandex/crptest/app:prod"}),
    )
    vex = write(tmp_path, "elsewhere.json", body)
    code, doc, stderr = json_run(emu, "--vex", vex)
    assert code == 1
    assert all(f["decision"] != "vex" for image in doc["images"] for f in image["findings"])
    assert len(doc["stale_vex"]) == 3
    assert (
        f"VEX {vex} statement 0 (CVE-2024-0001 not_affected) matched no finding in this run (stale)" in doc["warnings"]
    )
    assert "matched no finding in this run (stale)" in stderr


def test_the_policy_lists_vex_documents_relative_to_itself(emu, tmp_path):
    policies = tmp_path / "policies"
    (policies / "vex").mkdir(parents=True)
    vex = openssl_vex(emu, policies / "vex")
    policy = policies / "policy.yaml"
    policy.write_text("version: 1\nthresholds: {critical: 0}\nvex: [vex/app.openvex.json]\n")
    code, doc, _ = json_run(emu, "--policy", str(policy))
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["decision"] == "vex"
    assert doc["policy"]["vex"][0]["path"] == vex
    validated = run_cli(["policy", "validate", str(policy)])
    assert validated.code == 0 and "1 VEX document (1 statement)" in validated.stdout


def test_a_pinned_policy_must_pin_its_vex_documents(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path)
    sha = json.loads(run_cli(check_args(emu, VULN, "--format", "json", "--vex", vex)).stdout)["policy"]["vex"][0][
        "sha256"
    ]
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nthresholds: {critical: 0}\nvex: [app.openvex.json]\n")
    import hashlib

    pin = hashlib.sha256(policy.read_bytes()).hexdigest()
    result = run_cli(check_args(emu, VULN, "--policy", str(policy), "--policy-sha256", pin))
    assert result.code == 2
    assert "is pinned, but its VEX document" in result.stderr and sha in result.stderr
    policy.write_text(f"version: 1\nthresholds: {{critical: 0}}\nvex:\n  - {{path: app.openvex.json, sha256: {sha}}}\n")
    pin = hashlib.sha256(policy.read_bytes()).hexdigest()
    assert run_cli(check_args(emu, VULN, "--policy", str(policy), "--policy-sha256", pin)).code == 1
    Path(vex).write_text(Path(vex).read_text().replace("vulnerable_code_not_in_execute_path", "component_not_present"))
    result = run_cli(check_args(emu, VULN, "--policy", str(policy), "--policy-sha256", pin))
    assert result.code == 2 and "but the policy pins" in result.stderr
    assert emu.stats.calls["ScannerService.Scan"] == 2  # the refused runs made no call


def test_every_format_shows_the_vex_decision_and_its_source(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path)
    out = {fmt: tmp_path / f"report.{fmt}" for fmt in ("text", "markdown", "sarif", "gitlab", "codequality", "junit")}
    args = [arg for fmt, path in out.items() for arg in ("--output", f"{fmt}={path}")]
    result = run_cli(check_args(emu, VULN, "--max", "critical=0", "--vex", vex, *args))
    assert result.code == 1, result.output
    note = f"VEX not_affected (vulnerable_code_not_in_execute_path): {vex} statement 0"
    text = out["text"].read_text()
    assert "not affected or fixed per VEX (1):" in text and f"CVE-2024-0001 in openssl: {note}" in text
    markdown = out["markdown"].read_text()
    assert (
        "**Not affected or fixed per VEX** (1):" in markdown
        and "vulnerable\\_code\\_not\\_in\\_execute\\_path" in markdown
    )
    sarif = json.loads(out["sarif"].read_text())
    results = sarif["runs"][0]["results"]
    suppressed = [r for r in results if r["properties"]["decision"] == "vex"]
    assert len(suppressed) == 1 and suppressed[0]["level"] == "note"
    assert suppressed[0]["suppressions"] == [{"kind": "external", "status": "accepted", "justification": note}]
    assert note in suppressed[0]["message"]["text"]
    gitlab = json.loads(out["gitlab"].read_text())
    described = [v for v in gitlab["vulnerabilities"] if "VEX" in v["description"]]
    assert len(described) == 1 and f"Not counted by crgate: {note}." in described[0]["description"]
    quality = json.loads(out["codequality"].read_text())
    assert not any("openssl" in entry["description"] and "CVE-2024-0001" in entry["check_name"] for entry in quality)
    assert any("libssl3" in entry["description"] for entry in quality)  # the same CVE elsewhere stays
    junit = ET.parse(out["junit"]).getroot()
    assert any(
        f"vex: CVE-2024-0001 openssl 1.0.0 (fixed in 1.0.1): {note}" in (e.text or "") for e in junit.iter("system-out")
    )


def test_evaluate_takes_vex_too(emu, tmp_path):
    saved = tmp_path / "saved.json"
    first = run_cli(check_args(emu, VULN, "--max", "critical=0", "--output", f"json={saved}"))
    assert first.code == 1
    policy = write(tmp_path, "p.yaml", "version: 1\nthresholds: {critical: 1}\n")
    vex = openssl_vex(emu, tmp_path)
    assert run_cli(["evaluate", str(saved), "--policy", policy]).code == 1
    result = run_cli(["evaluate", str(saved), "--policy", policy, "--vex", vex, "--format", "json"])
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert findings_of(doc, 0)[("CVE-2024-0001", "openssl")]["decision"] == "vex"


def test_an_image_id_target_matches_no_vex_product(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path)
    _, doc, _ = json_run(emu, "--vex", vex, refs=("--image-id", "crpvuln"))
    assert all(f["decision"] != "vex" for f in doc["images"][0]["findings"])
    assert len(doc["stale_vex"]) == 1


# -- malformed documents: exit 2 before any call, naming the file and where --------------------------

GOOD = vex_document(statement({"@id": VULN}))


def _broken(change: str) -> object:
    doc = json.loads(json.dumps(GOOD))
    first = doc["statements"][0]
    match change:
        case "no justification":
            del first["justification"]
        case "bad justification":
            first["justification"] = "we_checked"
        case "bad status":
            first["status"] = "safe"
        case "unknown key":
            first["severity"] = "low"
        case "no context":
            del doc["@context"]
        case "other context":
            doc["@context"] = "https://openvex.dev/ns/v0.1.0"
        case "bad timestamp":
            first["timestamp"] = "yesterday"
        case "no products":
            first["products"] = []
        case "bad purl":
            first["products"] = [{"@id": "pkg:/nothing"}]
        case "bad oci digest":
            first["products"] = [{"@id": "pkg:oci/app@latest"}]
        case "duplicate key":
            return json.dumps(GOOD).replace('"status": "not_affected"', '"status": "fixed", "status": "not_affected"')
        case "not json":
            return "{statements: []"
        case "deep":
            return "[" * 100 + "]" * 100
    return doc


MALFORMED = {
    "no justification": ("$.statements[0]", "needs a 'justification'"),
    "bad justification": ("$.statements[0].justification", "expected one of component_not_present"),
    "bad status": ("$.statements[0].status", "expected one of not_affected, affected, fixed, under_investigation"),
    "unknown key": ("$.statements[0].severity", "unknown key"),
    "no context": ("$.@context", "is missing"),
    "other context": ("$.@context", "this crgate reads OpenVEX 0.2.0"),
    "bad timestamp": ("$.statements[0].timestamp", "is not an RFC 3339 timestamp"),
    "no products": ("$.statements[0].products", "expected a non-empty list of products"),
    "bad purl": ("$.statements[0].products[0]", "is not a valid package URL"),
    "bad oci digest": ("$.statements[0].products[0]", "a pkg:oci version must be sha256"),
    "duplicate key": ("", "appears twice in one object"),
    "not json": ("", "not valid JSON"),
    "deep": ("", "nests 100 levels deep"),
}


@pytest.mark.parametrize("change", sorted(MALFORMED))
def test_a_malformed_document_is_exit_2_naming_the_file_and_where(emu, tmp_path, change):
    path, fragment = MALFORMED[change]
    vex = write(tmp_path, "bad.json", _broken(change))
    result = run_cli(check_args(emu, VULN, "--vex", vex))
    assert result.code == 2, result.output
    assert f"VEX document {vex}" in result.stderr and path in result.stderr and fragment in result.stderr
    assert "Traceback" not in result.output
    assert emu.stats.calls.get("ScannerService.Scan", 0) == 0


def test_a_malformed_document_named_by_the_policy_names_the_policy_line_too(emu, tmp_path):
    write(tmp_path, "bad.json", _broken("no justification"))
    policy = write(tmp_path, "policy.yaml", "version: 1\nthresholds: {critical: 0}\nvex:\n  - bad.json\n")
    result = run_cli(check_args(emu, VULN, "--policy", policy))
    assert result.code == 2
    assert f"policy {policy}:4 (key 'vex[0]'): VEX document {tmp_path / 'bad.json'}: $.statements[0]" in result.stderr


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("vex: vex.json", "'vex' must be a list of VEX document paths, got a single value"),
        ("vex: [a.json, a.json]", "'a.json' is listed twice"),
        ("vex: [missing.json]", "cannot read the VEX document"),
        ("vex: [{path: a.json, sha256: abc}]", "expected the document's SHA-256 as 64 hex digits"),
        ("vex: [{file: a.json}]", "unknown key 'file'"),
    ],
)
def test_bad_vex_keys_in_the_policy_are_exit_2(tmp_path, body, fragment):
    policy = write(tmp_path, "policy.yaml", f"version: 1\nthresholds: {{critical: 0}}\n{body}\n")
    result = run_cli(["policy", "validate", policy])
    assert result.code == 2 and fragment in result.stderr, result.output


def test_the_same_vex_file_twice_on_the_command_line_is_exit_2(emu, tmp_path):
    vex = openssl_vex(emu, tmp_path)
    result = run_cli(check_args(emu, VULN, "--vex", vex, "--vex", vex))
    assert result.code == 2 and "already in force" in result.stderr
