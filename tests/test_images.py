"""Image reference parsing: every accepted form, and clear errors for the rest."""

import pytest

from crgate.errors import ImageRefError
from crgate.exitcodes import ExitCode
from crgate.images import parse_image_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("raw", "registry", "repo", "tag", "digest"),
    [
        ("cr.yandex/crpabc/app:1.0", "crpabc", "app", "1.0", None),
        ("cr.yandex/crpabc/app", "crpabc", "app", "latest", None),
        ("cr.yandex/crpabc/team/app:v2", "crpabc", "team/app", "v2", None),
        (f"cr.yandex/crpabc/app@{DIGEST}", "crpabc", "app", None, DIGEST),
        (f"cr.yandex/crpabc/app:1.0@{DIGEST}", "crpabc", "app", "1.0", DIGEST),
        ("cr.cloud.yandex.net/crpabc/app:x", "crpabc", "app", "x", None),
        ("container-registry.cloud.yandex.net/crpabc/my-app_1.x:latest", "crpabc", "my-app_1.x", "latest", None),
        ("cr.yandexcloud.kz/crpabc/app:1", "crpabc", "app", "1", None),
        ("cr.yandex/crpabc/a.b_c-d/e-1/f.2:1", "crpabc", "a.b_c-d/e-1/f.2", "1", None),
    ],
)
def test_valid_references(raw, registry, repo, tag, digest):
    ref = parse_image_ref(raw)
    assert (ref.registry_id, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)
    assert ref.repository_name == f"{registry}/{repo}"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("docker.io/library/nginx:1", "not a Yandex Container Registry host"),
        ("nginx:latest", "no registry host"),
        ("cr.yandex/crpabc", "no repository"),
        ("cr.yandex/crpabc/App:1", "repository 'App' is not valid"),
        ("cr.yandex/crpabc/app:bad tag", "whitespace"),
        ("cr.yandex/crpabc/app:-x", "tag '-x' is not a valid tag"),
        ("cr.yandex/crpabc/app@sha256:1234", "digest 'sha256:1234'"),
        ("cr.yandex/CRP/app:1", "registry id 'CRP' is not valid"),
    ],
)
def test_invalid_references_name_the_problem(raw, reason):
    with pytest.raises(ImageRefError) as caught:
        parse_image_ref(raw)
    assert reason in str(caught.value)
    assert "expected cr.yandex/<registry-id>/<repository>:<tag>" in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    "repository", ["a__b", "a--b", "a---b", "a.-b", "a_.b", "a..b", "-a", "a-", "_a", "a.", "team//app", "team/a__b"]
)
def test_repository_names_follow_yandexs_pattern_not_dockers(repository):
    """Docker allows ``__`` and ``--``; Yandex's pattern allows one separator between alphanumerics."""
    with pytest.raises(ImageRefError) as caught:
        parse_image_ref(f"cr.yandex/crpabc/{repository}:1")
    message = str(caught.value)
    assert f"repository '{repository}' is not valid" in message
    assert "single '.', '_' or '-'" in message and "no '__', '--'" in message
    assert caught.value.exit_code == ExitCode.USAGE
