"""The node's OCI image store: images imported from archives, kept content-addressed on disk,
their layers unpacked once for overlayfs.  Pure file-system code (no network); registry pulls
will feed the same store.

Layout under ``root`` (``<data dir>/images``):

- ``blobs/sha256/<hex>``: manifests, configs and layers (as archived: plain or gzip'd tar).
  Each is written to ``tmp/`` while its sha256 is computed, checked, then renamed in place.
- ``refs.json``: ``{reference: manifest digest}``, replaced atomically.  References are
  normalized (``busybox`` -> ``docker.io/library/busybox:latest``); an untagged image is kept
  under its id (``sha256:<config digest>``).
- ``layers/<diff id hex>/``: each layer unpacked once (see layers.py), shared by images;
  ``layers/<hex>.skipped`` lists the whiteouts / opaque directories / devices a non-root
  process could not create.

``import_archive`` accepts ``docker save`` tarballs (manifest.json) and OCI image layout
tarballs (index.json; image indexes resolved for linux/amd64).  Every blob's digest and every
layer's diff id is verified before anything is stored; a failure changes nothing.  An image
whose tags all move to another image is dropped, and blobs and unpacked layers no image uses
any more are deleted (on import and on ``remove``).  Mutations hold ``root/lock`` (flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pybernetes.kubelet.runtime.layers import LayerError, unpack_layer
from pybernetes.kubelet.runtime.protocol import Image, NotFound, RuntimeError_

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
REF_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
MAX_JSON_BLOB = 8 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
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
    if digest and not _DIGEST.fullmatch(digest):
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


def _repository(ref: str) -> str:
    """``domain/path`` of a normalized reference (tag and digest dropped)."""
    ref = ref.partition("@")[0]
    return ref[: ref.rfind(":")] if ref.rfind(":") > ref.rfind("/") else ref


def _member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _open_layer(fileobj: IO[bytes]) -> IO[bytes]:
    """The uncompressed tar stream of a stored layer blob (plain or gzip'd)."""
    magic = fileobj.read(4)
    fileobj.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fileobj, mode="rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raise ImageError("zstd-compressed layers are not supported")
    return fileobj


class _Staging:
    """Blobs read from an archive into a temporary directory, digest checked."""

    def __init__(self, tar: tarfile.TarFile, tmp: Path) -> None:
        self.tar = tar
        self.tmp = tmp
        self.members = {_member_name(m.name): m for m in tar.getmembers() if m.isfile()}
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
            if not isinstance(diff_id, str) or not _DIGEST.fullmatch(diff_id):
                raise ImageError(f"image config has an invalid diff id {diff_id!r}")
            digest = hashlib.sha256()
            try:
                with open(self.blobs[layer], "rb") as raw:
                    stream = _open_layer(raw)
                    while chunk := stream.read(1 << 20):
                        digest.update(chunk)
            except (OSError, EOFError) as exc:
                raise ImageError(f"layer {layer} cannot be decompressed: {exc}") from exc
            actual = "sha256:" + digest.hexdigest()
            if actual != diff_id:
                raise ImageError(f"layer {layer}: uncompressed digest {actual} does not match "
                                 f"diff id {diff_id}")


class ImageStore:
    """See the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.layer_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"
        self.refs_file = self.root / "refs.json"
        for directory in (self.blob_dir, self.layer_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- plumbing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _refs(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.refs_file.read_bytes()))
        except FileNotFoundError:
            return {}

    def _write_refs(self, refs: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir)
        with os.fdopen(fd, "w") as out:
            json.dump(dict(sorted(refs.items())), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.refs_file)

    def _blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest.removeprefix("sha256:")

    def _json(self, digest: str) -> dict:
        return json.loads(self._blob_path(digest).read_bytes())

    def _image(self, config_id: str, manifest: dict, tags: list[str]) -> Image:
        config = self._json(config_id)
        return Image(id=config_id, repo_tags=sorted(tags),
                     size=sum(int(layer.get("size", 0)) for layer in manifest.get("layers", [])),
                     user=str((config.get("config") or {}).get("User") or ""))

    def _resolve(self, ref: str, refs: dict[str, str]) -> tuple[str, bool] | None:
        """(manifest digest, matched by name) for a reference or an image id (prefix)."""
        try:
            name = normalize_ref(ref)
        except ImageError:
            name = ""
        if name in refs:
            return refs[name], True
        if "@" in name:  # repo@digest: any tag of that repository pointing at that manifest
            repo, _, digest = name.partition("@")
            for key, value in refs.items():
                if value == digest and _repository(key) == _repository(repo):
                    return value, True
        text = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{3,64}", text):
            found = {md for md in set(refs.values())
                     if self._json(md)["config"]["digest"].removeprefix("sha256:").startswith(text)}
            if len(found) == 1:
                return found.pop(), False
        return None

    def _gc(self, refs: dict[str, str]) -> None:
        live: set[str] = set()
        layers: set[str] = set()
        for md in set(refs.values()):
            manifest = self._json(md)
            config_id = manifest["config"]["digest"]
            live.update({md, config_id, *(layer["digest"] for layer in manifest.get("layers", []))})
            config = self._json(config_id)
            layers.update(d.removeprefix("sha256:") for d in config.get("rootfs", {}).get("diff_ids", []))
        for path in self.blob_dir.iterdir():
            if "sha256:" + path.name not in live:
                path.unlink()
        for path in self.layer_dir.iterdir():
            if path.name.split(".")[0] not in layers:  # also ".<hex>-..." left by a crash
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    # -- import ------------------------------------------------------------------------------------

    def import_archive(self, path: Path | str) -> list[Image]:
        """Import a docker-archive or OCI-layout tarball; returns the images it holds."""
        with self._lock():
            staging_dir = Path(tempfile.mkdtemp(dir=self.tmp_dir))
            try:
                try:
                    with tarfile.open(path, "r:*") as tar:
                        staging = _Staging(tar, staging_dir)
                        if staging.has("manifest.json"):
                            found = self._stage_docker(staging)
                        elif staging.has("index.json"):
                            found = self._stage_oci(staging)
                        else:
                            raise ImageError(f"{path}: neither a docker archive (manifest.json) "
                                             "nor an OCI image layout (index.json)")
                except (tarfile.TarError, EOFError) as exc:
                    raise ImageError(f"{path}: not a readable tar archive: {exc}") from exc
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise ImageError(f"{path}: malformed image metadata: {exc!r}") from exc
                for digest, staged in staging.blobs.items():
                    target = self._blob_path(digest)
                    if not target.exists():
                        os.chmod(staged, 0o600)
                        os.replace(staged, target)
                refs = self._refs()
                for tags, md, config_id in found:
                    for tag in tags:
                        refs[tag] = md
                    if tags:
                        refs.pop(config_id, None)
                    elif md not in refs.values():
                        refs[config_id] = md
                self._write_refs(refs)
                self._gc(refs)
            finally:
                shutil.rmtree(staging_dir, ignore_errors=True)
            kept = set(refs.values())  # an archive may move its own tag from one image to another
            return [self._image(config_id, self._json(md), [t for t, v in refs.items() if v == md
                                                           and not t.startswith("sha256:")])
                    for _, md, config_id in found if md in kept]

    def _stage_docker(self, staging: _Staging) -> list[tuple[list[str], str, str]]:
        entries = staging.read_member_json("manifest.json")
        if not isinstance(entries, list) or not entries:
            raise ImageError("manifest.json lists no images")
        found = []
        for entry in entries:
            config_name = _member_name(entry["Config"])
            hex_name = re.fullmatch(r"(?:blobs/sha256/)?([0-9a-f]{64})(?:\.json)?", config_name)
            config_id = staging.stage(config_name, f"sha256:{hex_name.group(1)}" if hex_name else None)
            config = staging.json_blob(config_id)
            descriptors, layers = [], []
            for layer_name in entry.get("Layers") or []:
                layer_name = _member_name(layer_name)
                hex_name = re.fullmatch(r"blobs/sha256/([0-9a-f]{64})", layer_name)
                digest = staging.stage(layer_name, f"sha256:{hex_name.group(1)}" if hex_name else None)
                with open(staging.blobs[digest], "rb") as blob:
                    gzipped = blob.read(2) == b"\x1f\x8b"
                layers.append(digest)
                descriptors.append({"mediaType": OCI_LAYER_GZIP if gzipped else OCI_LAYER,
                                    "digest": digest, "size": staging.blobs[digest].stat().st_size})
            staging.check_diff_ids(config, layers)
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": OCI_CONFIG, "digest": config_id,
                                   "size": staging.blobs[config_id].stat().st_size},
                        "layers": descriptors}
            md = staging.stage_bytes(json.dumps(manifest, separators=(",", ":")).encode())
            found.append(([normalize_ref(t) for t in entry.get("RepoTags") or []], md, config_id))
        return found

    def _stage_oci(self, staging: _Staging) -> list[tuple[list[str], str, str]]:
        index = staging.read_member_json("index.json")
        found = []
        for descriptor in index.get("manifests") or []:
            annotations = descriptor.get("annotations") or {}
            name = next((annotations[a] for a in REF_NAME_ANNOTATIONS if annotations.get(a)), "")
            md, config_id = self._stage_oci_descriptor(staging, descriptor, depth=0)
            found.append(([normalize_ref(name)] if name else [], md, config_id))
        if not found:
            raise ImageError("index.json lists no manifests")
        return found

    @staticmethod
    def _stage_descriptor(staging: _Staging, descriptor: dict) -> str:
        digest = descriptor["digest"]
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise ImageError(f"unsupported digest {digest!r} (only sha256)")
        return staging.stage(f"blobs/sha256/{digest[7:]}", digest, descriptor.get("size"))

    def _stage_oci_descriptor(self, staging: _Staging, descriptor: dict, depth: int) -> tuple[str, str]:
        media_type = descriptor.get("mediaType", "")
        digest = self._stage_descriptor(staging, descriptor)
        doc = staging.json_blob(digest)
        media_type = media_type or doc.get("mediaType", "")
        if media_type in INDEX_TYPES:
            if depth > 2:
                raise ImageError(f"image index {digest} nests too deeply")
            for child in doc.get("manifests") or []:
                platform = child.get("platform") or {}
                if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                    return self._stage_oci_descriptor(staging, child, depth + 1)
            raise ImageError(f"image index {digest} has no linux/amd64 image")
        if media_type not in MANIFEST_TYPES:
            raise ImageError(f"unsupported manifest media type {media_type!r} ({digest})")
        config_id = self._stage_descriptor(staging, doc["config"])
        layers = [self._stage_descriptor(staging, layer) for layer in doc.get("layers") or []]
        staging.check_diff_ids(staging.json_blob(config_id), layers)
        return digest, config_id

    # -- queries -----------------------------------------------------------------------------------

    def list(self) -> list[Image]:
        by_manifest: dict[str, list[str]] = {}
        for ref, md in self._refs().items():
            by_manifest.setdefault(md, []).extend([] if ref.startswith("sha256:") else [ref])
        images = [self._image(self._json(md)["config"]["digest"], self._json(md), tags)
                  for md, tags in by_manifest.items()]
        return sorted(images, key=lambda image: (image.repo_tags, image.id))

    def get(self, ref: str) -> Image | None:
        refs = self._refs()
        found = self._resolve(ref, refs)
        if found is None:
            return None
        md = found[0]
        manifest = self._json(md)
        return self._image(manifest["config"]["digest"], manifest,
                           [r for r, v in refs.items() if v == md and not r.startswith("sha256:")])

    def config(self, ref: str) -> dict:
        """The image config's execution parameters (its ``config`` object: Entrypoint, Cmd,
        Env, WorkingDir, User ...), a copy."""
        found = self._resolve(ref, self._refs())
        if found is None:
            raise NotFound("image", ref)
        return dict(self._json(self._json(found[0])["config"]["digest"]).get("config") or {})

    # -- changes -----------------------------------------------------------------------------------

    def remove(self, ref: str) -> None:
        """Drop ``ref`` (or, given an image id, every reference to that image); delete blobs
        and layers no remaining image uses.  Unknown: NotFound."""
        with self._lock():
            refs = self._refs()
            found = self._resolve(ref, refs)
            if found is None:
                raise NotFound("image", ref)
            md, by_name = found
            if by_name and "@" not in normalize_ref(ref):
                refs.pop(normalize_ref(ref))
            else:
                refs = {k: v for k, v in refs.items() if v != md}
            self._write_refs(refs)
            self._gc(refs)

    def unpack(self, ref: str) -> list[Path]:
        """Unpack every layer of ``ref`` not unpacked yet; the layer directories, lowest first
        (reverse them for overlayfs' ``lowerdir``, which lists the top layer first)."""
        with self._lock():
            found = self._resolve(ref, self._refs())
            if found is None:
                raise NotFound("image", ref)
            manifest = self._json(found[0])
            config = self._json(manifest["config"]["digest"])
            out = []
            for layer, diff_id in zip(manifest.get("layers", []), config["rootfs"]["diff_ids"], strict=True):
                target = self.layer_dir / diff_id.removeprefix("sha256:")
                if not target.is_dir():
                    self._unpack_one(layer["digest"], target)
                out.append(target)
            return out

    def _unpack_one(self, digest: str, target: Path) -> None:
        tmp = Path(tempfile.mkdtemp(dir=self.layer_dir, prefix=f".{target.name}-"))
        try:
            with open(self._blob_path(digest), "rb") as raw:
                skipped = unpack_layer(_open_layer(raw), tmp)
            marker = target.with_name(target.name + ".skipped")
            if skipped:
                marker.write_text(json.dumps({"reason": "not root", "skipped": skipped}, indent=1))
            os.rename(tmp, target)
        except LayerError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImageError(f"layer {digest}: {exc}", "CreateContainerError") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
