"""``--from-manifest``: images found in Kubernetes manifests, helm output and compose files; malformed
input is exit 2 with file, document and line; images outside Yandex follow ``unscannable``."""

from __future__ import annotations

import io
import json

import pytest

from conftest import REPO_ROOT, VULNERABLE_FINDINGS, check_args, image, run_cli, scenario
from crgate.manifests import ManifestError, images_in_text, read_manifests, registry_host, unique

DATA = REPO_ROOT / "tests" / "data" / "manifests"


def images(text: str) -> list[tuple[str, int, str, bool]]:
    return [(u.image, u.line, u.where, u.ref is not None) for u in images_in_text(text, "m.yaml")]


def test_every_workload_kind_container_list_and_list_items():
    uses = read_manifests([str(DATA / "all-kinds.yaml")], io.BytesIO())
    assert [(u.image, u.document, u.where) for u in uses] == [
        ("cr.yandex/crptest/app:pod", 1, "Pod debug, container main"),
        ("busybox:1.36", 1, "Pod debug, ephemeral container shell"),
        ("cr.cloud.yandex.net/crptest/db:16", 2, "StatefulSet db, container db"),
        ("container-registry.cloud.yandex.net/crptest/agent:1", 3, "DaemonSet agent, container agent"),
        ("cr.yandex/crptest/rs:1", 4, "ReplicaSet rs, container rs"),
        ("ghcr.io/example/once:1", 5, "Job once, container once"),
        ("cr.yandexcloud.kz/crptest/wait:1", 5, "Job once, init container wait"),
        ("cr.yandex/crptest/listed:1", 6, "Deployment listed, container listed"),
        ("cr.yandex/crptest/canary:2", 7, "Rollout canary, container canary"),
    ]
    assert [u.image for u in uses if u.ref is None] == ["busybox:1.36", "ghcr.io/example/once:1"]


def test_helm_template_output_with_empty_documents_and_cronjob():
    uses = read_manifests([str(DATA / "helm-template.yaml")], io.BytesIO())
    assert [(u.image, u.where) for u in uses] == [
        ("cr.yandex/crpdemo/app:clean", "Deployment web, container web"),
        ("docker.io/envoyproxy/envoy:v1.30.1", "Deployment web, container proxy"),
        ("cr.yandex/crpdemo/app:clean", "Deployment web, init container migrate"),
        (
            "cr.yandex/crpdemo/app@sha256:d2a6f29620b33e4d4249d0c56ae86c99b0df56c3c3dd63ade959b81483528c35",
            "CronJob web-report, container report",
        ),
    ]
    assert len(unique(uses)) == 3
    assert uses[0].location == "%s, document 3, line 44: Deployment web, container web" % (DATA / "helm-template.yaml")


def test_compose_services_with_merge_keys():
    uses = read_manifests([str(DATA / "compose.yaml")], io.BytesIO())
    assert [(u.image, u.where) for u in uses] == [
        ("cr.yandex/crpdemo/app:vulnerable", "compose service web"),  # inherited from the anchor
        ("cr.yandex/crpdemo/app:clean", "compose service worker"),  # an explicit key wins over the merge
        ("redis:7", "compose service cache"),
    ]


def test_stdin_is_read_for_dash():
    uses = read_manifests(["-"], io.BytesIO(b"services:\n  a:\n    image: cr.yandex/crp1/a:1\n"))
    assert [(u.image, u.source, u.line) for u in uses] == [("cr.yandex/crp1/a:1", "<stdin>", 3)]


@pytest.mark.parametrize(
    ("image_ref", "host"),
    [
        ("nginx", "docker.io"),
        ("library/nginx:1", "docker.io"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app", "localhost:5000"),
        ("CR.Yandex/crp1/app", "cr.yandex"),
        ("ghcr.io/a/b", "ghcr.io"),
    ],
)
def test_registry_host(image_ref, host):
    assert registry_host(image_ref) == host


MALFORMED = {
    "bad yaml": ("kind: Pod\nspec: [\n", 1, 3, "invalid YAML"),
    "bad yaml in a later document": ("kind: Service\n---\nkind: Pod\n  bad: indent\n", 2, 4, "invalid YAML"),
    "not a mapping": ("- a\n- b\n", 1, 1, "must be a mapping"),
    "no containers": ("kind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec: {}\n", 1, 5, "has no"),
    "no pod spec": ("kind: Deployment\nmetadata: {name: w}\nspec: {replicas: 1}\n", 1, 3, "has no spec.template"),
    "containers not a list": ("kind: Pod\nspec:\n  containers: {a: b}\n", 1, 3, "must be a list"),
    "container without image": ("kind: Pod\nspec:\n  containers:\n    - name: a\n", 1, 4, "has no image"),
    "image not a string": ("kind: Pod\nspec:\n  containers:\n    - image: [a]\n", 1, 4, "non-empty string"),
    "empty image": ("kind: Pod\nspec:\n  containers:\n    - image: ''\n", 1, 4, "non-empty string"),
    "duplicate image key": (
        "kind: Pod\nspec:\n  containers:\n    - image: cr.yandex/crp1/a:1\n      image: nginx\n",
        1,
        5,
        "duplicate key 'image'",
    ),
    "helm not rendered": ("kind: Pod\nspec:\n  containers:\n    - image: '{{ .Values.image }}'\n", 1, 4, "unrendered"),
    "compose variable": ("services:\n  a:\n    image: cr.yandex/${REG}/a:1\n", 1, 3, "unrendered"),
    "yandex host with a port": ("kind: Pod\nspec:\n  containers:\n    - image: cr.yandex:443/crp1/a:1\n", 1, 4, "host"),
    "bad yandex reference": ("kind: Pod\nspec:\n  containers:\n    - image: cr.yandex/BAD/a:1\n", 1, 4, "registry id"),
    "list item without kind": ("kind: List\nitems:\n  - metadata: {}\n", 1, 3, "has no 'kind'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifests_name_file_document_and_line(case):
    text, document, line, message = MALFORMED[case]
    with pytest.raises(ManifestError) as caught:
        images_in_text(text, "deploy.yaml")
    assert f"manifest deploy.yaml, document {document}, line {line}: " in str(caught.value)
    assert message in str(caught.value)


def test_unreadable_and_non_utf8_files(tmp_path):
    with pytest.raises(ManifestError, match="cannot read it"):
        read_manifests([str(tmp_path / "absent.yaml")], io.BytesIO())
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"kind: Pod\n\xff\n")
    with pytest.raises(ManifestError, match="line 2: the file is not valid UTF-8"):
        read_manifests([str(bad)], io.BytesIO())


def test_other_kinds_and_plain_yaml_have_no_images():
    assert images("kind: ConfigMap\ndata: {image: nginx}\n---\nfoo: bar\n---\n") == []


# -- the CLI ----------------------------------------------------------------------------------------

DEMO = scenario(
    image("crpclean", "clean", "sha256:" + "a" * 64),
    image("crpvuln", "vuln", "sha256:" + "b" * 64, VULNERABLE_FINDINGS),
)
POD = "kind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"


def pod(*image_refs: str) -> str:
    return POD.format(containers="".join(f"    - {{name: c{i}, image: '{ref}'}}\n" for i, ref in enumerate(image_refs)))


@pytest.fixture
def unscannable(tmp_path, monkeypatch):
    """Run in a directory whose ``.crgate.yaml`` sets ``unscannable`` (the default limits otherwise)."""

    def set_mode(mode: str) -> None:
        (tmp_path / ".crgate.yaml").write_text(
            f"version: 1\nthresholds: {{critical: 0, high: 0}}\nunscannable: {mode}\n"
        )
        monkeypatch.chdir(tmp_path)

    return set_mode


def run_manifest(emu, text: str, *extra: str):
    return run_cli(check_args(emu, "--from-manifest", "-", "--format", "json", *extra), stdin=text)


def test_clean_manifest_passes_and_vulnerable_fails(start_emulator, tmp_path):
    emu = start_emulator(DEMO)
    clean = tmp_path / "clean.yaml"
    clean.write_text(pod("cr.yandex/crptest/app:clean", "cr.yandex/crptest/app:clean"))
    result = run_cli(check_args(emu, "--from-manifest", str(clean), "--format", "json"))
    assert result.code == 0, result.output
    assert [i["ref"] for i in json.loads(result.stdout)["images"]] == ["cr.yandex/crptest/app:clean"]
    vulnerable = tmp_path / "vuln.yaml"
    vulnerable.write_text(pod("cr.yandex/crptest/app:vuln"))
    result = run_cli(check_args(emu, "--from-manifest", str(clean), "--from-manifest", str(vulnerable)))
    assert result.code == 1, result.output
    assert emu.stats.scans_started == 3


def test_manifest_from_stdin_and_arguments_together(start_emulator):
    emu = start_emulator(DEMO)
    result = run_manifest(emu, pod("cr.yandex/crptest/app:vuln"), "cr.yandex/crptest/app:clean")
    assert result.code == 1, result.output
    assert [i["ref"] for i in json.loads(result.stdout)["images"]] == [
        "cr.yandex/crptest/app:clean",
        "cr.yandex/crptest/app:vuln",
    ]


def test_unscannable_warn_is_listed_and_passes(start_emulator):
    emu = start_emulator(DEMO)
    result = run_manifest(emu, pod("cr.yandex/crptest/app:clean", "nginx:1.25"))
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["warnings"]) == 1
    assert doc["warnings"][0].startswith("nginx:1.25 (<stdin>, document 1, line 6: Pod p, container c1)")
    assert "not in Yandex Container Registry" in doc["warnings"][0] and "unscannable: warn" in doc["warnings"][0]
    assert "not scanned: nginx:1.25" in result.stderr


def test_unscannable_fail_fails_the_run(start_emulator, unscannable):
    unscannable("fail")
    emu = start_emulator(DEMO)
    result = run_manifest(emu, pod("cr.yandex/crptest/app:clean", "nginx:1.25"))
    assert result.code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "fail" and doc["images"][0]["verdict"] == "pass"
    assert "unscannable: fail" in doc["warnings"][0]
    assert "FAIL: 1 image(s) outside Yandex Container Registry (unscannable: fail) (exit 1)" in result.stderr


def test_unscannable_fail_does_not_hide_an_error(start_emulator, unscannable):
    unscannable("fail")
    emu = start_emulator(DEMO)
    result = run_manifest(emu, pod("cr.yandex/crptest/app:absent", "nginx:1.25"))
    assert result.code == 3, result.output


def test_unscannable_skip_is_still_listed(start_emulator, unscannable):
    unscannable("skip")
    emu = start_emulator(DEMO)
    result = run_manifest(emu, pod("cr.yandex/crptest/app:clean", "nginx:1.25"))
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == []
    assert "not scanned: nginx:1.25 (<stdin>, document 1, line 6" in result.stderr


def test_only_unscannable_images_need_no_scan_and_no_credentials(unscannable):
    result = run_cli(["check", "--from-manifest", "-", "--format", "json"], stdin=pod("nginx:1.25"))
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["images"] == []
    unscannable("fail")
    result = run_cli(["check", "--from-manifest", "-"], stdin=pod("nginx:1.25"))
    assert result.code == 1, result.output


def test_unknown_unscannable_mode_is_a_policy_error(unscannable):
    unscannable("maybe")
    result = run_cli(["check", "--from-manifest", "-"], stdin=pod("nginx:1.25"))
    assert result.code == 2
    assert ".crgate.yaml:3 (key 'unscannable')" in result.stderr


def test_manifest_without_images_is_exit_2():
    result = run_cli(["check", "--emulator", "--from-manifest", "-"], stdin="kind: ConfigMap\n")
    assert result.code == 2
    assert "no container images found in -" in result.stderr


def test_malformed_manifest_is_exit_2_before_any_call(start_emulator, tmp_path):
    emu = start_emulator(DEMO)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Service\n---\nkind: Pod\nspec:\n  containers:\n    - name: a\n")
    result = run_cli(check_args(emu, "--from-manifest", str(bad)))
    assert result.code == 2
    assert (
        f"crgate: error: manifest {bad}, document 2, line 6: Pod (unnamed), container a has no image" in result.stderr
    )
    assert "Traceback" not in result.output
    assert sum(emu.stats.calls.values()) == 0


def test_duplicate_keys_anywhere_are_refused_like_kubectl_and_compose_do():
    """The shared strict reader refuses a repeated key in any mapping, not only on the image's path."""
    with pytest.raises(ManifestError) as caught:
        images_in_text("kind: ConfigMap\ndata:\n  a: '1'\n  a: '2'\n", "m.yaml")
    assert "manifest m.yaml, document 1, line 4: invalid YAML: duplicate key 'a' (first set on line 3)" in str(
        caught.value
    )


def test_merge_key_must_refer_to_a_mapping():
    with pytest.raises(ManifestError) as caught:
        images_in_text("x: &base [a]\nservices:\n  web:\n    <<: *base\n", "c.yaml")
    assert "line 4: a merge key ('<<') must refer to a mapping or a list of mappings" in str(caught.value)


CRDS = DATA / "crds.yaml"
CRD_IMAGES = [
    ("cr.yandex/crptest/worker:1", "ScaledJob queue-worker, container worker"),
    ("cr.yandex/crptest/builder:2", "Workflow pipeline, container at spec.templates[1].container"),
    ("cr.yandex/crptest/scripter:3", "Workflow pipeline, script at spec.templates[2].script"),
    ("cr.yandex/crptest/base:4", "Task test, stepTemplate at spec.stepTemplate"),
    ("cr.yandex/crptest/tester:5", "Task test, step unit"),
    ("postgres:16", "Task test, sidecar db"),
    ("cr.yandex/crptest/knative:6", "Service hello, container (unnamed)"),
    ("cr.yandex/crptest/nightly:7", "CronJob nightly, container job"),
    ("cr.yandex/crptest/web:8", "Deployment web, container web"),
]


def test_images_are_found_in_every_kind_and_the_rest_is_reported_not_taken():
    from crgate.manifests import read_manifest

    manifest = read_manifest(str(CRDS), io.BytesIO())
    assert [(u.image, u.where) for u in manifest.uses] == CRD_IMAGES
    assert [(u.value, u.document, u.line, u.where) for u in manifest.untaken] == [
        ("cr.yandex/crptest/hidden:9", 7, 86, "ConfigMap settings, data.IMAGE"),
        ("cr.yandex/crptest/sidecar:10", 7, 87, "ConfigMap settings, data.sidecarImage"),
    ]


def test_the_cli_gates_every_kind_and_lists_what_it_did_not_take(start_emulator, tmp_path):
    names = [ref.split("/")[-1].split(":") for ref, _ in CRD_IMAGES if ref.startswith("cr.yandex")]
    emu = start_emulator(
        {
            "registries": [
                {
                    "id": "crptest",
                    "repositories": [
                        {"name": repo, "images": [{"id": f"crp{repo}", "tags": [tag], "scan": {"duration": 0.05}}]}
                        for repo, tag in names
                    ],
                }
            ]
        }
    )
    pinned = tmp_path / "pinned.yaml"
    result = run_cli(check_args(emu, "--from-manifest", str(CRDS), "--pin-to", str(pinned), "--format", "json"))
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert sorted(i["ref"] for i in doc["images"]) == sorted(r for r, _ in CRD_IMAGES if r.startswith("cr.yandex"))
    assert "2 other value(s) under an image-like key were not taken" in result.stderr
    assert "not taken: cr.yandex/crptest/hidden:9" in result.stderr and "data.sidecarImage" in result.stderr
    text = pinned.read_text()
    for ref, _ in CRD_IMAGES:
        if ref.startswith("cr.yandex"):
            assert ref not in text  # pinned in every kind
    assert text.count("@sha256:") == 8 and "postgres:16" in text and "cr.yandex/crptest/hidden:9" in text


def test_a_manifest_with_only_untaken_values_is_exit_2_naming_them():
    result = run_cli(["check", "--from-manifest", "-"], stdin="kind: ConfigMap\ndata: {image: cr.yandex/crp1/a:1}\n")
    assert result.code == 2, result.output
    assert "no container images found" in result.stderr and "cr.yandex/crp1/a:1" in result.stderr


def test_a_manifest_with_thousands_of_untaken_values_lists_a_bounded_number() -> None:
    """A rendered chart may name thousands of image-like values: the summary lists the first
    ``MAX_UNTAKEN_SHOWN`` one per line and counts the rest, so the log stays readable and bounded."""
    from crgate.targets import MAX_UNTAKEN_SHOWN, select_targets

    count = MAX_UNTAKEN_SHOWN + 7
    data = "\n".join(f"  image{n}Image: cr.yandex/crptest/extra{n}:1" for n in range(count))
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - {name: app, image: cr.yandex/crptest/app:1}\n"
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n{data}\n"
    )
    selection = select_targets([], [], ["-"], io.BytesIO(text.encode()))
    assert len(selection.untaken) == count
    lines = selection.summary("warn")
    shown = [line for line in lines if line.startswith("  not taken: ")]
    assert len(shown) == MAX_UNTAKEN_SHOWN
    assert shown[0].startswith("  not taken: cr.yandex/crptest/extra0:1")
    assert lines[-1] == "  ... and 7 more not taken"
