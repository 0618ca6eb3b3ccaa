"""The image store (kubelet/runtime/images.py, layers.py): docker-archive and OCI-layout imports
built here with tarfile, digests and diff ids verified, references normalized, shared blobs kept
on removal, layers unpacked with whiteouts and opaque directories, path escapes refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from pybernetes.kubelet.runtime.images import ImageError, ImageStore, normalize_ref
from pybernetes.kubelet.runtime.protocol import NotFound

IS_ROOT = os.geteuid() == 0

# -- building test images ---------------------------------------------------------------------


def layer_tar(entries: list[tuple]) -> bytes:
    """entries: ("file", name, data[, mode]) | ("dir", name) | ("symlink", name, target)
    | ("hardlink", name, target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "file":
                data = rest[0]
                info.size = len(data)
                info.mode = rest[1] if len(rest) > 1 else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, rest[0], 0o777
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, rest[0]
            tar.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(layers: list[bytes], user: str = "", cmd: list[str] | None = None) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"User": user, "Cmd": cmd or ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/w",
                   "Entrypoint": None},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
    }).encode()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, images: list[dict]) -> Path:
    """images: {"tags": [...], "layers": [tar bytes], "gzip": bool, "user": str, "config": bytes?}"""
    manifest = []
    with tarfile.open(path, "w") as tar:
        for image in images:
            config = image.get("config") or image_config(image["layers"], image.get("user", ""))
            config_name = sha(config)[7:] + ".json"
            add(tar, config_name, config)
            names = []
            for n, layer in enumerate(image["layers"]):
                blob = gzip.compress(layer, mtime=0) if image.get("gzip") else layer
                name = f"{sha(config)[7:19]}{n}/layer.tar"
                add(tar, name, blob)
                names.append(name)
            manifest.append({"Config": config_name, "RepoTags": image["tags"], "Layers": names})
        add(tar, "manifest.json", json.dumps(manifest).encode())
    return path


def oci_layout(path: Path, layers: list[bytes], ref_name: str, *, use_index: bool = False,
               docker_types: bool = False, corrupt: bool = False, user: str = "") -> tuple[Path, str]:
    """An OCI layout tarball with gzip'd layers; returns (path, config digest)."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        blobs[sha(data)] = data
        return {"digest": sha(data), "size": len(data)}

    config = image_config(layers, user)
    layer_type = ("application/vnd.docker.image.rootfs.diff.tar.gzip" if docker_types
                  else "application/vnd.oci.image.layer.v1.tar+gzip")
    manifest = {"schemaVersion": 2,
                "mediaType": ("application/vnd.docker.distribution.manifest.v2+json" if docker_types
                              else "application/vnd.oci.image.manifest.v1+json"),
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
                "layers": [{"mediaType": layer_type, **blob(gzip.compress(layer, mtime=0))}
                           for layer in layers]}
    top = {"mediaType": manifest["mediaType"], **blob(json.dumps(manifest).encode()),
           "platform": {"os": "linux", "architecture": "amd64"}}
    if use_index:
        other = {"mediaType": top["mediaType"], "digest": "sha256:" + "0" * 64, "size": 1,
                 "platform": {"os": "linux", "architecture": "arm64"}}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [other, top]}
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", **blob(json.dumps(index).encode())}
    top["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    with tarfile.open(path, "w") as tar:
        add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [top]}).encode())
        for digest, data in blobs.items():
            if corrupt and digest == manifest["layers"][0]["digest"]:
                data = data[:-1] + bytes([data[-1] ^ 1])
            add(tar, f"blobs/sha256/{digest[7:]}", data)
    return path, sha(config)


BASE = layer_tar([("dir", "bin"), ("file", "bin/sh", b"#!shell", 0o755), ("dir", "etc"),
                  ("file", "etc/passwd", b"root:x:0:0\n"), ("dir", "opt"), ("file", "opt/old", b"x")])
APP = layer_tar([("file", "app", b"app", 0o700), ("symlink", "sh", "/bin/sh"),
                 ("hardlink", "app2", "app"), ("file", "etc/.wh.passwd", b""),
                 ("dir", "opt"), ("file", "opt/.wh..wh..opq", b""), ("file", "opt/new", b"n")])


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "want"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("me/app:1", "docker.io/me/app:1"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/me/app", "docker.io/me/app:latest"),
    ("registry:5000/x", "registry:5000/x:latest"),
    ("localhost/a/b:v2", "localhost/a/b:v2"),
    ("quay.io/org/img", "quay.io/org/img:latest"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64),
])
def test_normalize_ref(ref: str, want: str) -> None:
    assert normalize_ref(ref) == want


@pytest.mark.parametrize("ref", ["", "Busybox", "a//b", "x:", "busybox@sha256:zz", "a/b:bad tag"])
def test_normalize_ref_rejects(ref: str) -> None:
    with pytest.raises(ImageError) as err:
        normalize_ref(ref)
    assert err.value.reason == "InvalidImageName"


def test_docker_archive_import_list_get_config(tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "a.tar", [
        {"tags": ["busybox:latest", "me/app:1"], "layers": [BASE], "gzip": True, "user": "1000"}])
    store = ImageStore(tmp_path / "images")
    [image] = store.import_archive(archive)
    assert image.repo_tags == ["docker.io/library/busybox:latest", "docker.io/me/app:1"]
    config = image_config([BASE], "1000")
    assert image.id == sha(config)
    assert image.size == len(gzip.compress(BASE, mtime=0))
    assert image.user == "1000"
    assert store.list() == [image]
    assert store.get("busybox") == image
    assert store.get(image.id) == image
    assert store.get(image.id[7:19]) == image
    assert store.get("nothere") is None
    assert store.config("me/app:1")["Cmd"] == ["sh"]
    assert store.config("busybox")["WorkingDir"] == "/w"
    assert (tmp_path / "images" / "blobs" / "sha256" / image.id[7:]).read_bytes() == config
    refs = json.loads((tmp_path / "images" / "refs.json").read_text())
    assert set(refs) == {"docker.io/library/busybox:latest", "docker.io/me/app:1"}
    with pytest.raises(NotFound):
        store.config("nothere")


@pytest.mark.parametrize("use_index", [False, True])
@pytest.mark.parametrize("docker_types", [False, True])
def test_oci_layout_import(tmp_path: Path, use_index: bool, docker_types: bool) -> None:
    archive, config_id = oci_layout(tmp_path / "o.tar", [BASE, APP], "registry:5000/x",
                                    use_index=use_index, docker_types=docker_types, user="app")
    store = ImageStore(tmp_path / "images")
    [image] = store.import_archive(archive)
    assert image.id == config_id
    assert image.repo_tags == ["registry:5000/x:latest"]
    assert image.user == "app"
    assert store.get("registry:5000/x:latest") == image
    layers = store.unpack("registry:5000/x")
    assert [p.name for p in layers] == [sha(BASE)[7:], sha(APP)[7:]]


def test_reimport_is_idempotent_and_retag_drops_old_image(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    first = docker_archive(tmp_path / "1.tar", [{"tags": ["app:1"], "layers": [BASE]}])
    store.import_archive(first)
    store.import_archive(first)
    assert len(store.list()) == 1
    second = docker_archive(tmp_path / "2.tar", [{"tags": ["app:1"], "layers": [BASE, APP]}])
    [new] = store.import_archive(second)
    assert store.list() == [new]
    blobs = {p.name for p in (tmp_path / "images" / "blobs" / "sha256").iterdir()}
    assert sha(image_config([BASE]))[7:] not in blobs  # the untagged old config went
    assert sha(BASE)[7:] in blobs  # shared layer kept


def test_remove_keeps_shared_blobs_and_layers(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    archive = docker_archive(tmp_path / "a.tar", [
        {"tags": ["base:1"], "layers": [BASE]},
        {"tags": ["app:1", "app:latest"], "layers": [BASE, APP], "user": "x"}])
    base, app = store.import_archive(archive)
    store.unpack("base:1")
    store.unpack("app:1")
    blob_dir = tmp_path / "images" / "blobs" / "sha256"
    layer_dir = tmp_path / "images" / "layers"
    store.remove("app:latest")  # another tag still names it
    assert store.get("app:1") is not None
    store.remove(app.id)
    assert store.get("app:1") is None
    assert store.list() == [base]
    names = {p.name for p in blob_dir.iterdir()}
    assert sha(BASE)[7:] in names and sha(APP)[7:] not in names
    assert {p.name for p in layer_dir.iterdir()} == {sha(BASE)[7:]}
    assert (layer_dir / sha(BASE)[7:] / "bin" / "sh").read_bytes() == b"#!shell"
    store.remove("base:1")
    assert store.list() == []
    assert list(blob_dir.iterdir()) == [] and list(layer_dir.iterdir()) == []
    with pytest.raises(NotFound):
        store.remove("base:1")


def test_corrupt_blob_refused_and_nothing_stored(tmp_path: Path) -> None:
    archive, _ = oci_layout(tmp_path / "o.tar", [BASE, APP], "bad:1", corrupt=True)
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImageError) as err:
        store.import_archive(archive)
    assert sha(gzip.compress(BASE, mtime=0)) in str(err.value) and "corrupt" in str(err.value)
    assert store.list() == []
    assert list((tmp_path / "images" / "blobs" / "sha256").iterdir()) == []
    assert list((tmp_path / "images" / "tmp").iterdir()) == []
    assert not (tmp_path / "images" / "refs.json").exists()


def test_diff_id_mismatch_refused(tmp_path: Path) -> None:
    config = image_config([APP])  # diff id of another layer
    archive = docker_archive(tmp_path / "a.tar", [{"tags": ["x:1"], "layers": [BASE], "config": config}])
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImageError, match="does not match diff id " + sha(APP)):
        store.import_archive(archive)
    assert store.list() == []
    assert list((tmp_path / "images" / "blobs" / "sha256").iterdir()) == []


def test_not_an_image_archive(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    (tmp_path / "junk").write_bytes(b"not a tar")
    with pytest.raises(ImageError, match="not a readable tar"):
        store.import_archive(tmp_path / "junk")
    with tarfile.open(tmp_path / "empty.tar", "w") as tar:
        add(tar, "hello", b"x")
    with pytest.raises(ImageError, match="neither a docker archive"):
        store.import_archive(tmp_path / "empty.tar")


def test_unpack_whiteouts_opaque_links_modes(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    store.import_archive(docker_archive(tmp_path / "a.tar", [{"tags": ["app:1"], "layers": [BASE, APP]}]))
    lower, upper = store.unpack("app:1")
    assert store.unpack("app:1") == [lower, upper]  # once
    assert (lower / "etc" / "passwd").read_bytes() == b"root:x:0:0\n"
    assert stat.S_IMODE((lower / "bin" / "sh").stat().st_mode) == 0o755
    assert (lower / "bin" / "sh").stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE((upper / "app").stat().st_mode) == 0o700
    assert os.readlink(upper / "sh") == "/bin/sh"
    assert (upper / "app2").stat().st_ino == (upper / "app").stat().st_ino
    assert (upper / "opt" / "new").read_bytes() == b"n"
    assert not (upper / "etc" / ".wh.passwd").exists() and not (upper / "opt" / ".wh..wh..opq").exists()
    if not IS_ROOT:
        skipped = json.loads((upper.parent / (upper.name + ".skipped")).read_text())["skipped"]
        assert skipped == ["whiteout etc/passwd", "opaque opt"]
        pytest.skip("whiteout device and opaque xattr need root")
    st = os.lstat(upper / "etc" / "passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(upper / "opt", "trusted.overlay.opaque") == b"y"
    assert not (upper.parent / (upper.name + ".skipped")).exists()


@pytest.mark.parametrize(("entries", "message"), [
    ([("file", "/etc/x", b"x")], "absolute path"),
    ([("file", "a/../../x", b"x")], "escapes"),
    ([("symlink", "l", "/etc"), ("file", "l/passwd", b"x")], "through the symlink"),
    ([("hardlink", "h", "../../etc/passwd")], "escapes"),
    ([("hardlink", "h", "missing")], "not in the layer"),
    ([("file", "etc/.wh.", b"")], "whiteout without a name"),
    ([("file", "./", b"x")], "replaces the layer root"),
])
def test_unpack_refuses_escapes(tmp_path: Path, entries: list[tuple], message: str) -> None:
    bad = layer_tar(entries)
    store = ImageStore(tmp_path / "images")
    store.import_archive(docker_archive(tmp_path / "a.tar", [{"tags": ["bad:1"], "layers": [BASE, bad]}]))
    with pytest.raises(ImageError, match=message):
        store.unpack("bad:1")
    layer_dir = tmp_path / "images" / "layers"
    assert {p.name for p in layer_dir.iterdir()} == {sha(BASE)[7:]}  # nothing half-written
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x").exists()


def test_unpack_without_root_records_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as an unprivileged process would see it
    store = ImageStore(tmp_path / "images")
    store.import_archive(docker_archive(tmp_path / "a.tar", [{"tags": ["app:1"], "layers": [BASE, APP]}]))
    _, upper = store.unpack("app:1")
    skipped = json.loads((upper.parent / (upper.name + ".skipped")).read_text())["skipped"]
    assert skipped == ["whiteout etc/passwd", "opaque opt"]
    assert not (upper / "etc" / "passwd").exists()
    assert (upper / "opt" / "new").read_bytes() == b"n"
