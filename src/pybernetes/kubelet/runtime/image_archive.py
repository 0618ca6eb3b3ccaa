"""Reading image archives for the image store: ``docker save`` tarballs (manifest.json) and
OCI image layout tarballs (index.json, image indexes resolved for linux/amd64).

:class:`Staging` copies an archive's blobs into a temporary directory, checking each digest
(and each layer's diff id against its config); ``stage_docker`` / ``stage_oci`` return the
images found as ``(normalized tags, manifest digest, config digest)``.  A docker archive gets
an OCI manifest written for it.  The store (images.py) moves the staged blobs into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from pybernetes.kubelet.runtime.image_format import (
    DIGEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    REF_NAME_ANNOTATIONS,
    ZSTD_MAGIC,
    ImageError,
    layer_diff_id,
    member_name,
    normalize_ref,
    select_platform,
)

Found = list[tuple[list[str], str, str]]


class Staging:
    """Blobs read from an archive into a temporary directory, digest checked."""

    def __init__(self, tar: tarfile.TarFile, tmp: Path) -> None:
        self.tar = tar
        self.tmp = tmp
        self.members = {member_name(m.name): m for m in tar.getmembers() if m.isfile()}
        self.blobs: dict[str, Path] = {}  # digest -> staged file

    def has(self, name: str) -> bool:
        return name in self.members

    def read_member_json(self, name: str) -> Any:
        member = self.members.get(name)
        if member is None:
            raise ImageError(f"archive has no {name}")
        if member.size > MAX_JSON_BLOB:
            raise ImageError(f"{name} is too large")
        src = self.tar.extractfile(member)
        assert src is not None
        try:
            return json.loads(src.read())
        except ValueError as exc:
            raise ImageError(f"{name} is not valid JSON: {exc}") from exc

    def stage(self, name: str, expected: str | None = None, size: int | None = None) -> str:
        member = self.members.get(name)
        if member is None:
            raise ImageError(f"archive has no {name}" + (f" (blob {expected})" if expected else ""))
        if size is not None and member.size != size:
            raise ImageError(f"blob {expected or name}: size {member.size}, descriptor says {size}")
        src = self.tar.extractfile(member)
        assert src is not None
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = "sha256:" + digest.hexdigest()
        if expected is not None and actual != expected:
            raise ImageError(f"blob {expected} ({name}) is corrupt: its content has digest {actual}")
        self.blobs[actual] = Path(tmp_name)
        return actual

    def stage_bytes(self, data: bytes) -> str:
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        self.blobs[actual] = Path(tmp_name)
        return actual

    def json_blob(self, digest: str) -> Any:
        path = self.blobs[digest]
        if path.stat().st_size > MAX_JSON_BLOB:
            raise ImageError(f"blob {digest} is too large for a manifest or config")
        try:
            return json.loads(path.read_bytes())
        except ValueError as exc:
            raise ImageError(f"blob {digest} is not valid JSON: {exc}") from exc

    def check_diff_ids(self, config: dict, layers: list[str]) -> None:
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise ImageError(f"image config lists {len(diff_ids)} diff ids for {len(layers)} layers")
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            if not isinstance(diff_id, str) or not DIGEST.fullmatch(diff_id):
                raise ImageError(f"image config has an invalid diff id {diff_id!r}")
            try:
                actual = layer_diff_id(self.blobs[layer])
            except ImageError as exc:
                raise ImageError(f"layer {layer} cannot be decompressed: {exc.__cause__}") from exc
            if actual != diff_id:
                raise ImageError(f"layer {layer}: uncompressed digest {actual} does not match "
                                 f"diff id {diff_id}")


def stage_docker(staging: Staging) -> Found:
    entries = staging.read_member_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError("manifest.json lists no images")
    found = []
    for entry in entries:
        config_name = member_name(entry["Config"])
        hex_name = re.fullmatch(r"(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?", config_name)
        config_id = staging.stage(config_name, f"sha256:{hex_name.group(1)}" if hex_name else None)
        config = staging.json_blob(config_id)
        descriptors, layers = [], []
        for layer_name in entry.get("Layers") or []:
            layer_name = member_name(layer_name)
            hex_name = re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", layer_name)
            digest = staging.stage(layer_name, f"sha256:{hex_name.group(1)}" if hex_name else None)
            with open(staging.blobs[digest], "rb") as blob:
                magic = blob.read(4)
            media_type = (OCI_LAYER_GZIP if magic[:2] == b"\x1f\x8b" else OCI_LAYER_ZSTD if magic == ZSTD_MAGIC
                          else OCI_LAYER)
            layers.append(digest)
            descriptors.append({"mediaType": media_type,
                                "digest": digest, "size": staging.blobs[digest].stat().st_size})
        staging.check_diff_ids(config, layers)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_id,
                               "size": staging.blobs[config_id].stat().st_size},
                    "layers": descriptors}
        md = staging.stage_bytes(json.dumps(manifest, separators=(",", ":")).encode())
        found.append(([normalize_ref(t) for t in entry.get("RepoTags") or []], md, config_id))
    return found


def stage_oci(staging: Staging) -> Found:
    index = staging.read_member_json("index.json")
    found = []
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        name = next((annotations[a] for a in REF_NAME_ANNOTATIONS if annotations.get(a)), "")
        md, config_id = _stage_oci_descriptor(staging, descriptor, depth=0)
        found.append(([normalize_ref(name)] if name else [], md, config_id))
    if not found:
        raise ImageError("index.json lists no manifests")
    return found


def _stage_descriptor(staging: Staging, descriptor: dict) -> str:
    digest = descriptor["digest"]
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ImageError(f"unsupported digest {digest!r} (only sha256)")
    return staging.stage(f"blobs/sha256/{digest[7:]}", digest, descriptor.get("size"))


def _stage_oci_descriptor(staging: Staging, descriptor: dict, depth: int) -> tuple[str, str]:
    media_type = descriptor.get("mediaType", "")
    digest = _stage_descriptor(staging, descriptor)
    doc = staging.json_blob(digest)
    media_type = media_type or doc.get("mediaType", "")
    if media_type in INDEX_TYPES:
        if depth > 2:
            raise ImageError(f"image index {digest} nests too deeply")
        return _stage_oci_descriptor(staging, select_platform(doc, f"image index {digest}"), depth + 1)
    if media_type not in MANIFEST_TYPES:
        raise ImageError(f"unsupported manifest media type {media_type!r} ({digest})")
    config_id = _stage_descriptor(staging, doc["config"])
    layers = [_stage_descriptor(staging, layer) for layer in doc.get("layers") or []]
    staging.check_diff_ids(staging.json_blob(config_id), layers)
    return digest, config_id
