"""Push real images to a real registry through the OCI distribution API (test helper, stdlib only).

Builds small but genuine images: a gzip-compressed tar layer, an image config whose ``rootfs.diff_ids``
is the layer's uncompressed digest, and the manifests Docker/buildx push: a single manifest, an OCI
image index with one provenance attestation manifest per platform (the shape ``docker buildx build
--platform linux/amd64,linux/arm64`` pushes), and the same index as a Docker manifest list. Blobs go up
as ``POST /v2/<name>/blobs/uploads/`` + ``PUT <location>?digest=``, manifests as ``PUT
/v2/<name>/manifests/<reference>``, each answer checked.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class Pushed:
    """What a push stored: the manifest's digest, bytes and media type."""

    digest: str
    data: bytes
    media_type: str


@dataclass
class Pusher:
    """Pushes to ``base_url`` (``http://127.0.0.1:PORT``) as ``user``/``password`` (Basic), or with the
    ``Authorization`` header ``authorize(scope)`` returns (a registry with token auth)."""

    base_url: str
    user: str
    password: str
    authorize: Callable[[str], str] | None = None
    pushed_blobs: set[str] = field(default_factory=set)

    def _request(self, method: str, url: str, body: bytes | None = None, content_type: str | None = None):
        if self.authorize is not None:
            repository = (
                urllib.parse.urlsplit(url).path.removeprefix("/v2/").split("/blobs/")[0].split("/manifests/")[0]
            )
            headers = {"Authorization": self.authorize(f"repository:{repository}:pull,push")}
        else:
            credentials = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            headers = {"Authorization": f"Basic {credentials}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {url}: HTTP {error.code}: {error.read()[:500]!r}") from None

    def blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        if (repository, digest) in self.pushed_blobs:
            return digest
        status, headers, _ = self._request("POST", f"{self.base_url}/v2/{repository}/blobs/uploads/")
        assert status == 202, status
        location = urllib.parse.urljoin(self.base_url, headers["Location"])
        separator = "&" if "?" in location else "?"
        status, headers, _ = self._request(
            "PUT", f"{location}{separator}digest={digest}", data, "application/octet-stream"
        )
        assert status == 201 and headers["Docker-Content-Digest"] == digest, (status, dict(headers))
        self.pushed_blobs.add((repository, digest))  # type: ignore[arg-type]
        return digest

    def manifest(self, repository: str, reference: str, document: dict) -> Pushed:
        data = canonical(document)
        media_type = document["mediaType"]
        status, headers, _ = self._request(
            "PUT", f"{self.base_url}/v2/{repository}/manifests/{reference}", data, media_type
        )
        assert status == 201 and headers["Docker-Content-Digest"] == digest_of(data), (status, dict(headers))
        return Pushed(digest_of(data), data, media_type)

    # -------------------------------------------------------------------------------- whole images

    def image(self, repository: str, platform: str, *, docker: bool = False, tag: str | None = None) -> Pushed:
        """A one-layer image for ``os/arch[/variant]``, pushed by digest (or by ``tag``)."""
        os_name, arch, *variant = platform.split("/")
        layer_tar = _tar({"etc/crgate-platform": platform.encode()})
        layer = gzip.compress(layer_tar, mtime=0)
        config: dict = {
            "architecture": arch,
            "os": os_name,
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer_tar)]},
            "config": {"Env": ["PATH=/usr/bin"]},
        }
        if variant:
            config["variant"] = variant[0]
        config_data = canonical(config)
        document = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                "digest": self.blob(repository, config_data),
                "size": len(config_data),
            },
            "layers": [
                {
                    "mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                    "digest": self.blob(repository, layer),
                    "size": len(layer),
                }
            ],
        }
        data = canonical(document)
        return self.manifest(repository, tag or digest_of(data), document)

    def sbom(self, repository: str, tag: str, *, oras_1_1: bool = False) -> Pushed:
        """An SPDX SBOM as ``oras push <ref> sbom.spdx.json:application/spdx+json`` stores it: oras 1.0's
        image manifest with config ``application/vnd.unknown.config.v1+json``, or (``oras_1_1``) the OCI 1.1
        form with ``artifactType`` and the empty config."""
        spdx = canonical({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app", "packages": []})
        empty = b"{}"
        config_type = "application/vnd.oci.empty.v1+json" if oras_1_1 else "application/vnd.unknown.config.v1+json"
        document: dict = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            **({"artifactType": "application/spdx+json"} if oras_1_1 else {}),
            "config": {"mediaType": config_type, "digest": self.blob(repository, empty), "size": len(empty)},
            "layers": [
                {
                    "mediaType": "application/spdx+json",
                    "digest": self.blob(repository, spdx),
                    "size": len(spdx),
                    "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"},
                }
            ],
            "annotations": {"org.opencontainers.image.created": "2026-12-07T00:00:00Z"},
        }
        return self.manifest(repository, tag, document)

    def attestation(
        self,
        repository: str,
        subject: Pushed,
        *,
        tag: str | None = None,
        predicate: str = "https://slsa.dev/provenance/v0.2",
    ) -> Pushed:
        """An in-toto attestation manifest for ``subject``, as buildx pushes it (platform unknown/unknown)."""
        statement = canonical(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": predicate,
                "subject": [{"name": "_", "digest": {"sha256": subject.digest.removeprefix("sha256:")}}],
                "predicate": {"builder": {"id": ""}},
            }
        )
        config_data = canonical(
            {"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}
        )
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.blob(repository, config_data), "size": len(config_data)},
            "layers": [
                {
                    "mediaType": IN_TOTO,
                    "digest": self.blob(repository, statement),
                    "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": predicate},
                }
            ],
        }
        return self.manifest(repository, tag or digest_of(canonical(document)), document)

    def index(
        self,
        repository: str,
        tag: str,
        platforms: dict[str, Pushed],
        *,
        attestations: bool = True,
        docker: bool = False,
        annotate: dict[str, dict[str, str]] | None = None,
    ) -> tuple[Pushed, dict[str, Pushed]]:
        """An index (or Docker manifest list) of ``platforms``, with an attestation per platform;
        ``annotate`` adds annotations to the entries of some platforms."""
        entries: list[dict] = []
        attested: dict[str, Pushed] = {}
        for platform, image in platforms.items():
            os_name, arch, *variant = platform.split("/")
            described = {"architecture": arch, "os": os_name, **({"variant": variant[0]} if variant else {})}
            entry = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.data)}
            if annotate and platform in annotate:
                entry["annotations"] = annotate[platform]
            entries.append({**entry, "platform": described})
        if attestations:
            for platform, image in platforms.items():
                attestation = self.attestation(repository, image)
                attested[platform] = attestation
                entries.append(
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": attestation.digest,
                        "size": len(attestation.data),
                        "annotations": {
                            "vnd.docker.reference.digest": image.digest,
                            "vnd.docker.reference.type": "attestation-manifest",
                        },
                        "platform": {"architecture": "unknown", "os": "unknown"},
                    }
                )
        document = {"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX, "manifests": entries}
        return self.manifest(repository, tag, document), attested


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
