"""``--pin-to``: gated references become digest references, and every other byte stays as it was."""

from __future__ import annotations

import difflib

import pytest
import yaml

from conftest import REPO_ROOT
from crgate.images import parse_image_ref
from crgate.manifests import ManifestError, images_in_text
from crgate.pinning import PinError, pin_bytes, pin_text, pinned_reference

DATA = REPO_ROOT / "tests" / "data" / "manifests"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def only_changes(before: str, after: str) -> list[tuple[str, str]]:
    """The (old line, new line) pairs that differ; asserts the line structure is the same."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_pinned_reference_drops_the_tag_and_keeps_the_host() -> None:
    assert pinned_reference(parse_image_ref("cr.yandex/crp1/app:1.0"), D1) == f"cr.yandex/crp1/app@{D1}"
    ref = parse_image_ref(f"cr.cloud.yandex.net/crp1/team/app:1.0@{D2}")
    assert pinned_reference(ref, D1) == f"cr.cloud.yandex.net/crp1/team/app@{D1}"


def test_helm_template_output_keeps_every_other_byte() -> None:
    text = (DATA / "helm-template.yaml").read_text()
    mapping = {"cr.yandex/crpdemo/app:clean": f"cr.yandex/crpdemo/app@{D1}"}
    out = pin_text(text, mapping, "helm-template.yaml")
    changes = only_changes(text, out)
    assert len(changes) == 2  # the container and the init container; the CronJob's digest ref was not asked
    for old, new in changes:
        assert new == old.replace("cr.yandex/crpdemo/app:clean", f"cr.yandex/crpdemo/app@{D1}")
    assert '"cr.yandex/crpdemo/app@' in out  # the double-quoted value stays double-quoted
    assert out.replace(f"cr.yandex/crpdemo/app@{D1}", "cr.yandex/crpdemo/app:clean") == text
    assert [u.image for u in images_in_text(out, "out")][1] == "docker.io/envoyproxy/envoy:v1.30.1"


def test_flow_style_lists_multiple_documents_and_other_registries() -> None:
    text = (DATA / "all-kinds.yaml").read_text()
    mapping = {
        "cr.yandex/crptest/app:pod": f"cr.yandex/crptest/app@{D1}",
        "cr.cloud.yandex.net/crptest/db:16": f"cr.cloud.yandex.net/crptest/db@{D2}",
    }
    out = pin_text(text, mapping)
    assert only_changes(text, out) == [
        (
            "    - {name: main, image: cr.yandex/crptest/app:pod}\n",
            f"    - {{name: main, image: cr.yandex/crptest/app@{D1}}}\n",
        ),
        (
            "      containers: [{name: db, image: cr.cloud.yandex.net/crptest/db:16}]\n",
            f"      containers: [{{name: db, image: cr.cloud.yandex.net/crptest/db@{D2}}}]\n",
        ),
    ]
    assert list(yaml.safe_load_all(out))[0]["spec"]["ephemeralContainers"][0]["image"] == "busybox:1.36"


def test_compose_anchor_is_pinned_once_and_what_inherits_it_follows() -> None:
    text = (DATA / "compose.yaml").read_text()
    mapping = {
        "cr.yandex/crpdemo/app:vulnerable": f"cr.yandex/crpdemo/app@{D1}",
        "cr.yandex/crpdemo/app:clean": f"cr.yandex/crpdemo/app@{D2}",
    }
    out = pin_text(text, mapping, "compose.yaml")
    assert len(only_changes(text, out)) == 2
    assert "  image: cr.yandex/crpdemo/app@" + D1 in out  # in the x-app anchor
    loaded = yaml.safe_load(out)
    assert loaded["services"]["web"]["image"] == f"cr.yandex/crpdemo/app@{D1}"  # inherited through <<: *app
    assert loaded["services"]["worker"]["image"] == f"cr.yandex/crpdemo/app@{D2}"
    assert loaded["services"]["cache"]["image"] == "redis:7"


COMMENTED = """\
# deploy.yaml: the web tier
---
apiVersion: apps/v1   # comment after a value
kind: Deployment
metadata:
  name: web
  annotations:
    note: "image cr.yandex/crp1/app:1.0 is the one we ship"   # the same text, not an image field
spec:
  template:
    spec:
      containers:
        - name: app
          image: 'cr.yandex/crp1/app:1.0'   # single-quoted, with a comment
        - name: alias
          image: &shared "cr.yandex/crp1/app:1.0"
        - name: again
          image: *shared
        - name: tagged
          image: !!str cr.yandex/crp1/app:1.0
...
---
apiVersion: v1
kind: ConfigMap
metadata: {name: config}
data:
  image: cr.yandex/crp1/app:1.0
"""


def test_comments_quotes_anchors_tags_and_look_alikes() -> None:
    out = pin_text(COMMENTED, {"cr.yandex/crp1/app:1.0": f"cr.yandex/crp1/app@{D1}"})
    pinned = f"cr.yandex/crp1/app@{D1}"
    assert only_changes(COMMENTED, out) == [
        (
            "          image: 'cr.yandex/crp1/app:1.0'   # single-quoted, with a comment\n",
            f"          image: '{pinned}'   # single-quoted, with a comment\n",
        ),
        ('          image: &shared "cr.yandex/crp1/app:1.0"\n', f'          image: &shared "{pinned}"\n'),
        ("          image: !!str cr.yandex/crp1/app:1.0\n", f"          image: !!str {pinned}\n"),
    ]  # the alias follows its anchor; the annotation and the ConfigMap value are not image fields
    documents = list(yaml.safe_load_all(out))
    containers = documents[0]["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [pinned] * 4
    assert documents[1]["data"]["image"] == "cr.yandex/crp1/app:1.0"


def test_crlf_line_endings_and_a_byte_order_mark_survive() -> None:
    text = (
        "\ufeffkind: Pod\r\nmetadata: {name: p}\r\nspec:\r\n  containers:\r\n"
        "    - name: a\r\n      image: cr.yandex/crp1/app:1\r\n"
    )
    data = pin_bytes(text.encode(), {"cr.yandex/crp1/app:1": f"cr.yandex/crp1/app@{D1}"})
    assert data == text.replace("cr.yandex/crp1/app:1", f"cr.yandex/crp1/app@{D1}").encode()


def test_nothing_to_pin_is_the_same_text() -> None:
    text = (DATA / "helm-template.yaml").read_text()
    assert pin_text(text, {"cr.yandex/crpother/x:1": f"cr.yandex/crpother/x@{D1}"}) == text


def test_block_scalars_and_bad_pins_are_refused() -> None:
    text = (
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "    - name: a\n      image: >-\n        cr.yandex/crp1/app:1\n"
    )
    with pytest.raises(PinError, match="line 6: Pod p, container a: the image is a block scalar"):
        pin_text(text, {"cr.yandex/crp1/app:1": f"cr.yandex/crp1/app@{D1}"})
    with pytest.raises(PinError, match="is not a digest reference"):
        pin_text(text, {"cr.yandex/crp1/app:1": "cr.yandex/crp1/app:2\n# injected"})
    with pytest.raises(ManifestError, match="not valid UTF-8"):
        pin_bytes(b"kind: Pod\n\xff", {})


def test_diff_of_a_pinned_helm_render_is_the_image_lines_only() -> None:
    text = (DATA / "helm-template.yaml").read_text()
    out = pin_text(text, {"docker.io/envoyproxy/envoy:v1.30.1": f"docker.io/envoyproxy/envoy@{D2}"})
    diff = [line for line in difflib.unified_diff(text.splitlines(), out.splitlines(), lineterm="", n=0)]
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("---", "+++"))]
    assert changed == [
        '-          image: "docker.io/envoyproxy/envoy:v1.30.1"',
        f'+          image: "docker.io/envoyproxy/envoy@{D2}"',
    ]
