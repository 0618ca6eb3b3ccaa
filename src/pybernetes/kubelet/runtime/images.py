"""The node's OCI image store: images imported from archives or pulled from registries, kept
content-addressed on disk, their layers unpacked once for overlayfs.  File-system code (no
network): registry.py fetches, this module stores.

Layout under ``root`` (``<data dir>/images``):

- ``blobs/sha256/<hex>``: manifests, configs and layers (as distributed: plain, gzip'd or
  zstd'd tar).  Each is written to ``tmp/`` while its sha256 is computed, checked, then
  renamed in place.
- ``refs.json``: ``{reference: manifest digest}``, replaced atomically.  References are
  normalized (``busybox`` -> ``docker.io/library/busybox:latest``).  A pulled image is also
  named ``repo@<digest pulled>`` (its repo digest, which keeps it when its tag moves on); an
  imported untagged image is kept under its id (``sha256:<config digest>``).
- ``usage.json``: ``{manifest digest: last use}`` (pull, import, ``touch``), for image GC.
- ``layers/<diff id hex>/``: each layer unpacked once (see layers.py), shared by images;
  ``layers/<hex>.skipped`` lists the whiteouts / opaque directories / devices a non-root
  process could not create.

``import_archive`` accepts ``docker save`` and OCI image layout tarballs (image_archive.py).
Every blob's digest and every layer's diff id is verified before anything is stored; a
failure changes nothing.  An imported image whose tags all move to another image is dropped;
removing an image's last tag removes the image.  Blobs and unpacked layers no image uses are
deleted (on import, pull and ``remove``), except blobs a pull in this process still holds
(``pinned``).  ``gc_unused`` is upstream's image GC at a disk high-water mark.  Mutations
hold ``root/lock`` (flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from pybernetes.kubelet.runtime.image_archive import Staging, stage_docker, stage_oci
from pybernetes.kubelet.runtime.image_format import ImageError, normalize_ref, open_layer, repository
from pybernetes.kubelet.runtime.layers import LayerError, unpack_layer
from pybernetes.kubelet.runtime.protocol import Image, NotFound

__all__ = ["ImageError", "ImageStore", "normalize_ref"]

# blobs that pulls in this process hold unreferenced, per store root: not garbage yet
_PINS: dict[str, Counter[str]] = {}


class ImageStore:
    """See the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.layer_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"
        self.refs_file = self.root / "refs.json"
        self.usage_file = self.root / "usage.json"
        self._pins = _PINS.setdefault(str(self.root.resolve()), Counter())
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
        self._write_json(self.refs_file, dict(sorted(refs.items())))

    def _write_json(self, path: Path, data: dict, durable: bool = True) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=1)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)

    def _usage(self) -> dict[str, float]:
        """{manifest digest: last use (epoch seconds)}."""
        try:
            return dict(json.loads(self.usage_file.read_bytes()))
        except (FileNotFoundError, ValueError):
            return {}

    def _blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest.removeprefix("sha256:")

    def _json(self, digest: str) -> dict:
        return json.loads(self._blob_path(digest).read_bytes())

    def _image(self, config_id: str, manifest: dict, names: list[str]) -> Image:
        """The Image for a manifest; ``names`` are its references (tags, and ``repo@digest``
        names, which become repo_digests; image ids are left out)."""
        config = self._json(config_id)
        return Image(id=config_id, repo_tags=sorted(n for n in names if "@" not in n and not n.startswith("sha256:")),
                     repo_digests=sorted(n for n in names if "@" in n),
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
        if "@" in name:  # repo[:tag]@digest: the repo digest, or a tag of that repository at it
            repo, _, digest = name.partition("@")
            if f"{repository(repo)}@{digest}" in refs:
                return refs[f"{repository(repo)}@{digest}"], True
            for key, value in refs.items():
                if value == digest and repository(key) == repository(repo):
                    return value, True
        text = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{3,64}", text):
            found = {md for md in set(refs.values())
                     if self._json(md)["config"]["digest"].removeprefix("sha256:").startswith(text)}
            if len(found) == 1:
                return found.pop(), False
        return None

    def _live(self, refs: dict[str, str]) -> tuple[set[str], set[str]]:
        """(blob digests, unpacked layer hexes) the images of ``refs`` use."""
        live: set[str] = set()
        layers: set[str] = set()
        for md in set(refs.values()):
            manifest = self._json(md)
            config_id = manifest["config"]["digest"]
            live.update({md, config_id, *(layer["digest"] for layer in manifest.get("layers", []))})
            config = self._json(config_id)
            layers.update(d.removeprefix("sha256:") for d in config.get("rootfs", {}).get("diff_ids", []))
        return live, layers

    def _gc(self, refs: dict[str, str]) -> None:
        live, layers = self._live(refs)
        for path in self.blob_dir.iterdir():
            if "sha256:" + path.name not in live and "sha256:" + path.name not in self._pins:
                path.unlink(missing_ok=True)
        usage = self._usage()
        if set(usage) - set(refs.values()):
            self._write_json(self.usage_file, {md: t for md, t in usage.items() if md in refs.values()},
                             durable=False)
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
                        staging = Staging(tar, staging_dir)
                        if staging.has("manifest.json"):
                            found = stage_docker(staging)
                        elif staging.has("index.json"):
                            found = stage_oci(staging)
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
                self._mark_used([md for _, md, _ in found])
                self._gc(refs)
            finally:
                shutil.rmtree(staging_dir, ignore_errors=True)
            kept = set(refs.values())  # an archive may move its own tag from one image to another
            return [self._image(config_id, self._json(md), [t for t, v in refs.items() if v == md])
                    for _, md, config_id in found if md in kept]

    # -- queries -----------------------------------------------------------------------------------

    def list(self) -> list[Image]:
        by_manifest: dict[str, list[str]] = {}
        for ref, md in self._refs().items():
            by_manifest.setdefault(md, []).append(ref)
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
        return self._image(manifest["config"]["digest"], manifest, [r for r, v in refs.items() if v == md])

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
                if all("@" in k for k, v in refs.items() if v == md):  # its last tag: the image goes
                    refs = {k: v for k, v in refs.items() if v != md}
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
                skipped = unpack_layer(open_layer(raw), tmp)
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

    # -- pulls (registry.py feeds the store through these) ------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self._blob_path(digest)

    def has_blob(self, digest: str) -> bool:
        return self._blob_path(digest).is_file()

    @contextlib.contextmanager
    def pinned(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep these blobs from garbage collection in this process while a pull holds them
        before its image references them."""
        held = list(digests)
        self._pins.update(held)
        try:
            yield
        finally:
            self._pins.subtract(held)
            for digest in held:
                if self._pins[digest] <= 0:
                    del self._pins[digest]

    def new_blob_file(self) -> tuple[int, Path]:
        """An open file (fd, path) in the store's tmp directory for a blob being fetched."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
        return fd, Path(name)

    def add_blob(self, tmp: Path, digest: str) -> None:
        """Move a fetched blob, whose digest the caller verified, into place."""
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._blob_path(digest))

    def put_blob(self, data: bytes) -> str:
        """Store a small blob (a manifest or config) from memory; its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            fd, tmp = self.new_blob_file()
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self.add_blob(tmp, digest)
        return digest

    def layer_diff_ids(self) -> dict[str, str]:
        """{layer blob digest: its diff id} for the stored images (checked when stored)."""
        out: dict[str, str] = {}
        for md in set(self._refs().values()):
            try:
                manifest = self._json(md)
                config = self._json(manifest["config"]["digest"])
            except (OSError, ValueError, KeyError):
                continue
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            for layer, diff_id in zip(manifest.get("layers") or [], diff_ids, strict=False):
                out[layer["digest"]] = diff_id
        return out

    def record_pull(self, names: list[str], manifest_digest: str) -> Image:
        """Point ``names`` (normalized references) at a pulled image manifest whose blobs are
        all stored, and record its use.  ImageError if a blob has gone (another process's
        garbage collection), so that the pull can be retried."""
        with self._lock():
            manifest = self._json(manifest_digest)
            config_id = manifest["config"]["digest"]
            for digest in (config_id, *(layer["digest"] for layer in manifest.get("layers") or [])):
                if not self.has_blob(digest):
                    raise ImageError(f"blob {digest} left the store during the pull")
            refs = self._refs()
            for name in names:
                refs[name] = manifest_digest
            refs.pop(config_id, None)  # was imported untagged: now it has names
            self._write_refs(refs)
            self._mark_used([manifest_digest])
            self._gc(refs)
            return self._image(config_id, manifest, [r for r, v in refs.items() if v == manifest_digest])

    def discard(self, digests: Iterable[str]) -> None:
        """Delete blobs a failed pull fetched, unless an image or another pull uses them."""
        with self._lock():
            live, _ = self._live(self._refs())
            for digest in digests:
                if digest not in live and digest not in self._pins:
                    self._blob_path(digest).unlink(missing_ok=True)

    # -- use times and garbage collection ---------------------------------------------------------

    def _mark_used(self, manifests: Iterable[str]) -> None:
        usage = self._usage()
        now = time.time()
        usage.update(dict.fromkeys(manifests, now))
        self._write_json(self.usage_file, usage, durable=False)

    def touch(self, ref: str) -> None:
        """Record that ``ref`` (a reference or an image id) was used now (a container started)."""
        with self._lock():
            found = self._resolve(ref, self._refs())
            if found is None:
                raise NotFound("image", ref)
            self._mark_used([found[0]])

    def last_used(self, ref: str) -> float | None:
        found = self._resolve(ref, self._refs())
        return None if found is None else self._usage().get(found[0])

    def disk_usage_percent(self) -> float:
        """How full the file system holding the store is, as upstream's image GC counts it
        (100 - available * 100 / capacity)."""
        st = os.statvfs(self.root)
        return 100.0 - st.f_bavail * 100.0 / st.f_blocks if st.f_blocks else 0.0

    def gc_unused(self, in_use: set[str], high: int = 85, low: int = 80, *,
                  min_age: float = 0.0) -> list[Image]:
        """Upstream's image garbage collection: when the file system holding the store is at
        least ``high`` % used, remove images not in ``in_use`` (image ids, references or
        manifest digests of the images containers use), least recently used first and none
        used in the last ``min_age`` seconds, until it is at most ``low`` % used.  Returns
        the removed images."""
        if not 0 <= low <= high <= 100:
            raise ValueError(f"image GC thresholds must satisfy 0 <= low ({low}) <= high ({high}) <= 100")
        if self.disk_usage_percent() < high:
            return []
        wanted = set(in_use)
        for name in in_use:
            with contextlib.suppress(ImageError):
                wanted.add(normalize_ref(name))
        removed: list[Image] = []
        with self._lock():
            refs = self._refs()
            usage = self._usage()
            now = time.time()
            names: dict[str, list[str]] = {}
            for name, md in refs.items():
                names.setdefault(md, []).append(name)
            candidates = []
            for md, mine in names.items():
                config_id = self._json(md)["config"]["digest"]
                if wanted & {md, config_id, config_id.removeprefix("sha256:"), *mine}:
                    continue
                used = usage.get(md, 0.0)
                if now - used >= min_age:
                    candidates.append((used, md, config_id))
            for _, md, config_id in sorted(candidates):
                if self.disk_usage_percent() <= low:
                    break
                removed.append(self._image(config_id, self._json(md), names[md]))
                refs = {k: v for k, v in refs.items() if v != md}
                self._write_refs(refs)
                self._gc(refs)
        return removed
