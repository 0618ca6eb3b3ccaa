"""What pulls need of the image store (kubelet/runtime/images.py): blobs held by a pull
survive garbage collection, a failed pull's blobs are discarded, repo digests, zstd layers,
last-use times, and image GC at a disk high-water mark."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from pybernetes.kubelet.runtime import images as images_module
from pybernetes.kubelet.runtime.images import ImageError, ImageStore
from pybernetes.kubelet.runtime.protocol import NotFound


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SHARED = layer({"shared": b"base"})


def put_image(store: ImageStore, own: bytes, *, compress: str = "none") -> tuple[str, str]:
    """Blobs of a two-layer image (SHARED + its own layer) put straight into the store, as a
    pull does; (manifest digest, config digest)."""
    raw_layers = [SHARED, layer({"own": own})]
    blobs = [zstandard.ZstdCompressor().compress(r) if compress == "zstd" else r for r in raw_layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(r) for r in raw_layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": sha(config), "size": len(config)},
                           "layers": [{"digest": sha(b), "size": len(b)} for b in blobs]}).encode()
    for blob in (config, manifest, *blobs):
        assert store.put_blob(blob) == sha(blob)
    return sha(manifest), sha(config)


def pulled(store: ImageStore, name: str, own: bytes) -> tuple[str, str]:
    md, config = put_image(store, own)
    store.record_pull([f"r.example/{name}:1", f"r.example/{name}@{md}"], md)
    return md, config


def stored(store: ImageStore) -> set[str]:
    return {"sha256:" + p.name for p in store.blob_dir.iterdir()}


def test_record_pull_names_and_repo_digests(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    md, config = pulled(store, "app", b"1")
    image = store.get("r.example/app:1")
    assert image is not None and image.id == config
    assert image.repo_tags == ["r.example/app:1"] and image.repo_digests == [f"r.example/app@{md}"]
    assert store.get(f"r.example/app@{md}") == image
    assert store.get(f"r.example/app:1@{md}") == image  # a tag beside the digest is ignored
    assert store.last_used("r.example/app:1") is not None
    # removing the last tag removes the image, its digest name too
    store.remove("r.example/app:1")
    assert store.list() == [] and stored(store) == set()


def test_pinned_blobs_survive_collection_and_discard(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    pulled(store, "keep", b"k")
    with store.pinned([sha(b"held")]):
        store.put_blob(b"held")
        store.put_blob(b"loose")
        store.remove("r.example/keep:1")  # collects garbage: the held blob stays, the loose one goes
        assert sha(b"held") in stored(store) and sha(b"loose") not in stored(store)
        # another store object over the same directory (in this process) honours the pin
        ImageStore(tmp_path).discard([sha(b"held")])
        assert sha(b"held") in stored(store)
    store.discard([sha(b"held")])
    assert stored(store) == set()


def test_discard_keeps_what_images_use(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    md, config = pulled(store, "a", b"a")
    other_md, other_config = put_image(store, b"b")  # a failed pull of b left these
    store.discard([other_md, other_config, sha(SHARED), sha(layer({"own": b"b"}))])
    assert stored(store) == {md, config, sha(SHARED), sha(layer({"own": b"a"}))}


def test_record_pull_refuses_missing_blobs(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    md, _ = put_image(store, b"x")
    store.blob_path(sha(SHARED)).unlink()  # another process collected it meanwhile
    with pytest.raises(ImageError) as failed:
        store.record_pull(["r.example/x:1"], md)
    assert f"blob {sha(SHARED)} left the store" in failed.value.message
    assert store.list() == []


def test_zstd_layers_unpack_and_import(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "store")
    md, _ = put_image(store, b"zz", compress="zstd")
    store.record_pull(["r.example/z:1"], md)
    lower, own = store.unpack("r.example/z:1")
    assert (lower / "shared").read_bytes() == b"base" and (own / "own").read_bytes() == b"zz"
    # a docker archive with a zstd layer imports (its layer gets the zstd media type)
    raw = layer({"f": b"archived"})
    blob = zstandard.ZstdCompressor().compress(raw)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(raw)]}}).encode()
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in ((f"{sha(config)[7:]}.json", config), ("l.tar.zst", blob),
                           ("manifest.json", json.dumps([{"Config": f"{sha(config)[7:]}.json",
                                                          "RepoTags": ["z:2"], "Layers": ["l.tar.zst"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (image,) = store.import_archive(archive)
    manifest = json.loads(store.blob_path(store._refs()["docker.io/library/z:2"]).read_bytes())
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    (unpacked,) = store.unpack("z:2")
    assert (unpacked / "f").read_bytes() == b"archived"


def test_touch_and_last_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path)
    monkeypatch.setattr(images_module.time, "time", lambda: 1000.0)
    md, config = pulled(store, "a", b"a")
    assert store.last_used("r.example/a:1") == 1000.0
    monkeypatch.setattr(images_module.time, "time", lambda: 2000.0)
    store.touch(config)  # by image id
    assert store.last_used(f"r.example/a@{md}") == 2000.0
    with pytest.raises(NotFound):
        store.touch("r.example/none:1")
    assert store.last_used("r.example/none:1") is None


def fake_disk(store: ImageStore, monkeypatch: pytest.MonkeyPatch, base: float, per_image: float) -> None:
    """The file system's use as base + per_image for each image in the store."""
    monkeypatch.setattr(store, "disk_usage_percent", lambda: base + per_image * len(store.list()))


def test_gc_unused_removes_least_recently_used_until_low(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path)
    clock = [100.0]
    monkeypatch.setattr(images_module.time, "time", lambda: clock[0])
    ids = {}
    for name in ("old", "middle", "new", "busy"):
        clock[0] += 10
        ids[name] = pulled(store, name, name.encode())[1]
    clock[0] += 10
    store.touch("r.example/old:1")  # now the most recently used
    clock[0] += 1000
    fake_disk(store, monkeypatch, 50, 10)  # 4 images: 90 %
    removed = store.gc_unused({ids["busy"]}, high=85, low=70)
    # LRU first (middle, then new), the busy one never; stop at 70 %
    assert [i.id for i in removed] == [ids["middle"], ids["new"]]
    assert removed[0].repo_tags == ["r.example/middle:1"]
    assert {i.id for i in store.list()} == {ids["old"], ids["busy"]}
    assert sha(layer({"own": b"middle"})) not in stored(store) and sha(SHARED) in stored(store)
    # below the high-water mark: nothing to do
    assert store.gc_unused(set(), high=85, low=70) == []
    # in use given by reference, as the kubelet may: kept
    fake_disk(store, monkeypatch, 80, 10)
    assert store.gc_unused({"r.example/old:1", "r.example/busy:1"}, high=85, low=0) == []


def test_gc_unused_spares_young_images_and_checks_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path)
    clock = [1000.0]
    monkeypatch.setattr(images_module.time, "time", lambda: clock[0])
    old = pulled(store, "old", b"o")[1]
    clock[0] += 100
    pulled(store, "young", b"y")
    clock[0] += 30
    fake_disk(store, monkeypatch, 80, 10)
    assert [i.id for i in store.gc_unused(set(), high=85, low=0, min_age=60)] == [old]
    assert [i.repo_tags for i in store.list()] == [["r.example/young:1"]]
    for high, low in ((80, 85), (101, 50), (50, -1)):
        with pytest.raises(ValueError):
            store.gc_unused(set(), high=high, low=low)


def test_disk_usage_percent_is_the_real_file_system(tmp_path: Path) -> None:
    assert 0.0 < ImageStore(tmp_path).disk_usage_percent() <= 100.0
