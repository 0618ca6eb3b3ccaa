"""Image formats, shared by the image store, archive imports and registry pulls: media types,
references (normalizing, splitting), layer decompression, telling manifests from indexes, and
choosing a platform's image from an index.

Pure (no I/O but reading a local layer blob).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import IO

import zstandard

from pybernetes.kubelet.runtime.protocol import RuntimeError_

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
REF_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
MAX_JSON_BLOB = 8 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_HEX64 = re.compile(r"[0-9a-f]{64}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")


class ImageError(RuntimeError_):
    """An image cannot be imported, resolved or unpacked."""

    def __init__(self, message: str, reason: str = "ErrImagePull") -> None:
        super().__init__(reason, message)


def normalize_ref(ref: str) -> str:
    """Docker's reference normalization: ``busybox`` -> ``docker.io/library/busybox:latest``,
    ``me/app:1`` -> ``docker.io/me/app:1``, ``registry:5000/x`` -> ``registry:5000/x:latest``;
    ``name@sha256:...`` keeps its digest and gets no tag."""
    text = ref.strip()
    name, _, digest = text.partition("@")
    if digest and not DIGEST.fullmatch(digest):
        raise ImageError(f"invalid image reference {ref!r}: bad digest", "InvalidImageName")
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if first and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        domain, path = first, name[slash + 1:]
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    tag = ""
    last = path.rfind("/")
    colon = path.rfind(":")
    if colon > last:
        path, tag = path[:colon], path[colon + 1:]
    if domain == "docker.io" and path and "/" not in path:
        path = "library/" + path
    if not _DOMAIN.fullmatch(domain) or not path or not all(
            _PATH_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise ImageError(f"invalid image reference {ref!r}", "InvalidImageName")
    if colon > last and not _TAG.fullmatch(tag):
        raise ImageError(f"invalid image reference {ref!r}: bad tag {tag!r}", "InvalidImageName")
    out = f"{domain}/{path}"
    if tag or not digest:
        out += ":" + (tag or "latest")
    return out + ("@" + digest if digest else "")


def repository(ref: str) -> str:
    """``domain/path`` of a normalized reference (tag and digest dropped)."""
    ref = ref.partition("@")[0]
    return ref[: ref.rfind(":")] if ref.rfind(":") > ref.rfind("/") else ref


def member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def open_layer(fileobj: IO[bytes]) -> IO[bytes]:
    """The uncompressed tar stream of a stored layer blob (plain, gzip'd or zstd'd)."""
    magic = fileobj.read(4)
    fileobj.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]
    if magic == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(fileobj, read_across_frames=True)  # type: ignore[return-value]
    return fileobj


def layer_diff_id(path: Path) -> str:
    """The sha256 of a layer blob's uncompressed content; ImageError if it cannot be
    decompressed."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw:
            stream = open_layer(raw)
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise ImageError(f"cannot be decompressed: {exc}") from exc
    return "sha256:" + digest.hexdigest()


def _platform_rank(descriptor: dict, os_name: str, architecture: str, variant: str) -> int | None:
    """How well an index entry fits the platform (lower is better), None when it does not."""
    platform = descriptor.get("platform")
    annotations = descriptor.get("annotations") or {}
    if annotations.get("vnd.docker.reference.type"):  # a build attestation, not an image
        return None
    if not isinstance(platform, dict):
        return None
    if platform.get("os") != os_name or platform.get("architecture") != architecture:
        return None
    have = str(platform.get("variant") or "")
    if have == variant:
        return 0
    return 1 if not have else 2


def select_platform(index: dict, where: str, os_name: str = "linux", architecture: str = "amd64",
                    variant: str = "") -> dict:
    """The descriptor of the image for ``os_name/architecture[/variant]`` in an image index or
    manifest list (an exact variant first, then one without a variant, then any); ImageError
    naming ``where`` when there is none."""
    best: tuple[int, int, dict] | None = None
    for position, descriptor in enumerate(index.get("manifests") or []):
        if not isinstance(descriptor, dict):
            continue
        rank = _platform_rank(descriptor, os_name, architecture, variant)
        if rank is not None and (best is None or (rank, position) < best[:2]):
            best = (rank, position, descriptor)
    if best is None:
        want = "/".join(p for p in (os_name, architecture, variant) if p)
        raise ImageError(f"no matching manifest for {want} in the manifest list entries of {where}")
    return best[2]


def repo_digest_for(reference: str, repo_digests: list[str]) -> str:
    """The repo digest (``repo@sha256:...``) a container of ``reference`` shows as its imageID,
    as containerd does: the one of the reference's repository, else the first; "" if none."""
    try:
        name = normalize_ref(reference)
    except ImageError:
        name = reference
    repo = name.partition("@")[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    for digest in repo_digests:
        if digest.partition("@")[0] == repo:
            return digest
    return repo_digests[0] if repo_digests else ""


def split_reference(name: str) -> tuple[str, str, str]:
    """(registry host, repository, tag or digest) of a normalized reference."""
    host, _, rest = name.partition("/")
    path, at, digest = rest.partition("@")
    if at:
        return host, path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path, digest
    repo, _, tag = path.rpartition(":")
    return host, repo, tag


def parse_manifest(body: bytes, content_type: str, where: str) -> tuple[str, dict]:
    """(media type, document) of a manifest or index; ImageError for anything else."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ImageError(f"{where}: manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ImageError(f"{where}: manifest is not a JSON object")
    media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
    if doc.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
        raise ImageError(f"{where}: Docker image manifest schema 1 is not supported")
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        if isinstance(doc.get("manifests"), list):
            media_type = OCI_INDEX
        elif isinstance(doc.get("config"), dict):
            media_type = OCI_MANIFEST
        else:
            raise ImageError(f"{where}: unsupported manifest media type {media_type!r}")
    if media_type in MANIFEST_TYPES:
        descriptors = [doc.get("config"), *(doc.get("layers") or [])]
        for descriptor in descriptors:
            if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str) \
                    or not DIGEST.fullmatch(descriptor["digest"]):
                raise ImageError(f"{where}: manifest has a descriptor without a sha256 digest: {descriptor!r}")
            if not isinstance(descriptor.get("size", 0), int) or descriptor.get("size", 0) < 0:
                raise ImageError(f"{where}: descriptor {descriptor['digest']} has an invalid size")
    return media_type, doc
