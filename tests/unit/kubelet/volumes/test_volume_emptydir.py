"""emptyDir: disk directories 0777 with the sizeLimit recorded, medium Memory as a sized tmpfs
(root), the fallback without root, unsupported media."""

from __future__ import annotations

import os
import stat

import pytest

from pybernetes.kubelet.volumes import mountutil
from pybernetes.kubelet.volumes.emptydir import EmptyDirError, node_memory_bytes, setup_empty_dir

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mounting a tmpfs")


def test_disk_directory_is_0777_whatever_the_umask(tmp_path) -> None:
    path = tmp_path / "pods" / "uid" / "volumes" / "kubernetes.io~empty-dir" / "cache"
    old = os.umask(0o077)
    try:
        info = setup_empty_dir(path, {}, root=False)
    finally:
        os.umask(old)
    assert path.is_dir() and stat.S_IMODE(path.stat().st_mode) == 0o777
    assert info.size_limit is None and not info.tmpfs


def test_size_limit_is_recorded(tmp_path) -> None:
    info = setup_empty_dir(tmp_path / "v", {"sizeLimit": "1Gi"}, root=False)
    assert info.size_limit == 1024**3
    assert setup_empty_dir(tmp_path / "w", {"sizeLimit": "500M"}, root=False).size_limit == 500_000_000


def test_setup_again_keeps_the_contents(tmp_path) -> None:
    setup_empty_dir(tmp_path / "v", {}, root=False)
    (tmp_path / "v" / "data").write_text("x")
    setup_empty_dir(tmp_path / "v", {}, root=False)
    assert (tmp_path / "v" / "data").read_text() == "x"


def test_memory_without_root_falls_back_to_disk(tmp_path) -> None:
    info = setup_empty_dir(tmp_path / "v", {"medium": "Memory"}, root=False)
    assert not info.tmpfs and (tmp_path / "v").is_dir()
    assert not mountutil.is_mount_point(tmp_path / "v")


@pytest.mark.parametrize("medium,message", [("HugePages", "not supported"), ("Tape", "unknown storage medium")])
def test_unsupported_media(tmp_path, medium, message) -> None:
    with pytest.raises(EmptyDirError, match=message):
        setup_empty_dir(tmp_path / "v", {"medium": medium}, root=False)


def test_a_bad_size_limit(tmp_path) -> None:
    with pytest.raises(EmptyDirError, match="invalid sizeLimit"):
        setup_empty_dir(tmp_path / "v", {"sizeLimit": "lots"}, root=False)


def test_node_memory_is_read() -> None:
    assert node_memory_bytes() > 64 * 1024 * 1024


@pytest.fixture
def unmount_after(tmp_path):
    try:
        yield tmp_path
    finally:
        if os.geteuid() == 0:
            mountutil.unmount_all_under(tmp_path)


@needs_root
def test_memory_is_a_tmpfs_of_the_size_limit(unmount_after) -> None:
    path = unmount_after / "v"
    info = setup_empty_dir(path, {"medium": "Memory", "sizeLimit": "8Mi"}, root=True)
    assert info.tmpfs and mountutil.fs_type(path) == "tmpfs"
    st = os.statvfs(path)
    assert st.f_blocks * st.f_frsize == 8 * 1024 * 1024
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o1777  # a tmpfs root, as upstream's
    setup_empty_dir(path, {"medium": "Memory", "sizeLimit": "8Mi"}, root=True)  # idempotent
    assert len(mountutil.mounts_under(path)) == 1


@needs_root
def test_memory_without_limit_is_sized_by_the_node(unmount_after) -> None:
    path = unmount_after / "v"
    setup_empty_dir(path, {"medium": "Memory"}, root=True, node_memory=32 * 1024 * 1024)
    st = os.statvfs(path)
    assert st.f_blocks * st.f_frsize == 32 * 1024 * 1024
    mountutil.unmount_all_under(unmount_after)
    assert not mountutil.mounts_under(unmount_after)
