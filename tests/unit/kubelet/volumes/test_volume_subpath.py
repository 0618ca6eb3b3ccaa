"""volumeMounts to runtime mounts: subPath / subPathExpr made and checked (no escape through
.., absolute paths or symbolic links), pinned by a bind mount as root, read-only volumes,
propagation, upstream's messages."""

from __future__ import annotations

import os
import stat

import pytest

from pybernetes.kubelet.volumes import mountutil
from pybernetes.kubelet.volumes.common import VolumeError
from pybernetes.kubelet.volumes.subpath import expand, make_mounts

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: bind mounts")
POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {}}


def container(*mounts, privileged=False) -> dict:
    c = {"name": "app", "volumeMounts": list(mounts)}
    if privileged:
        c["securityContext"] = {"privileged": True}
    return c


@pytest.fixture
def vol(tmp_path):
    v = tmp_path / "vol"
    v.mkdir()
    os.chmod(v, 0o777)
    try:
        yield v
    finally:
        if os.geteuid() == 0:
            mountutil.unmount_all_under(tmp_path)


def mounts_of(vol, *vms, env=None, readonly=(), subpaths=None, privileged=False):
    return make_mounts(POD, container(*vms, privileged=privileged), {"data": str(vol)}, env or {},
                       readonly_volumes=set(readonly), subpaths_dir=subpaths)


def test_plain_mount(vol) -> None:
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/data"})
    assert (m.container_path, m.host_path, m.readonly, m.propagation) == ("/data", str(vol), False, "private")


def test_read_only_from_the_mount_or_the_volume(vol) -> None:
    [a, b] = mounts_of(vol, {"name": "data", "mountPath": "/a", "readOnly": True}, {"name": "data", "mountPath": "/b"},
                       readonly={"data"})
    assert a.readonly and b.readonly


def test_propagation(vol) -> None:
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/d", "mountPropagation": "HostToContainer"})
    assert m.propagation == "rslave"
    with pytest.raises(VolumeError, match="only to privileged containers") as err:
        mounts_of(vol, {"name": "data", "mountPath": "/d", "mountPropagation": "Bidirectional"})
    assert err.value.reason == "CreateContainerConfigError"
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/d", "mountPropagation": "Bidirectional"}, privileged=True)
    assert m.propagation == "rshared"


def test_unknown_volume(vol) -> None:
    with pytest.raises(VolumeError, match='^cannot find volume "other" to mount into container "app"$'):
        mounts_of(vol, {"name": "other", "mountPath": "/x"})


def test_sub_path_is_made_with_the_volume_mode(vol) -> None:
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/x", "subPath": "a/b"})
    assert m.host_path == str(vol / "a" / "b") and (vol / "a" / "b").is_dir()
    assert stat.S_IMODE((vol / "a").stat().st_mode) == 0o777


def test_sub_path_expr(vol) -> None:
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/x", "subPathExpr": "logs/$(POD_NAME)"},
                    env={"POD_NAME": "web-1"})
    assert m.host_path == str(vol / "logs" / "web-1")
    with pytest.raises(VolumeError, match="^missing value for POD_NAME$"):
        mounts_of(vol, {"name": "data", "mountPath": "/x", "subPathExpr": "$(POD_NAME)"})


def test_expand() -> None:
    assert expand("$$(X)-$(X)-$(", {"X": "1"}) == "$(X)-1-$("
    assert expand("a$b", {}) == "a$b"


@pytest.mark.parametrize("sub,message", [
    ("/etc", "^error SubPath `/etc` must not be an absolute path$"),
    ("a/../../etc", "^unable to provision SubPath `a/../../etc`: must not contain '..'$"),
])
def test_bad_sub_paths(vol, sub, message) -> None:
    with pytest.raises(VolumeError, match=message) as err:
        mounts_of(vol, {"name": "data", "mountPath": "/x", "subPath": sub})
    assert err.value.reason == "CreateContainerConfigError"


def test_expr_expanding_to_backsteps(vol) -> None:
    with pytest.raises(VolumeError, match="must not contain '..'"):
        mounts_of(vol, {"name": "data", "mountPath": "/x", "subPathExpr": "$(P)"}, env={"P": "../x"})


def test_symlink_out_of_the_volume_is_refused(vol, tmp_path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (vol / "evil").symlink_to(outside)
    (vol / "nested").mkdir()
    (vol / "nested" / "up").symlink_to("../../secret")
    for sub in ("evil", "nested/up", "evil/newdir"):
        with pytest.raises(VolumeError, match='^failed to prepare subPath for volumeMount "data" of container "app"$'):
            mounts_of(vol, {"name": "data", "mountPath": "/x", "subPath": sub})
    assert os.listdir(outside) == []


def test_symlink_inside_the_volume_is_fine(vol) -> None:
    (vol / "..data").mkdir()
    (vol / "..data" / "conf").write_text("x")
    (vol / "conf").symlink_to("..data/conf")
    [m] = mounts_of(vol, {"name": "data", "mountPath": "/etc/conf", "subPath": "conf"})
    assert m.host_path == str(vol / "..data" / "conf")


@needs_root
def test_sub_paths_are_pinned_by_bind_mounts(vol, tmp_path) -> None:
    (vol / "file").write_text("f")
    subpaths = tmp_path / "pod" / "volume-subpaths"
    [d, f] = mounts_of(vol, {"name": "data", "mountPath": "/d", "subPath": "dir"},
                       {"name": "data", "mountPath": "/f", "subPath": "file"}, subpaths=subpaths)
    assert d.host_path == str(subpaths / "data" / "app" / "0")
    assert f.host_path == str(subpaths / "data" / "app" / "1")
    assert mountutil.is_mount_point(d.host_path) and mountutil.is_mount_point(f.host_path)
    (vol / "dir" / "x").write_text("through")
    assert (subpaths / "data" / "app" / "0" / "x").read_text() == "through"
    assert (subpaths / "data" / "app" / "1").read_text() == "f"
    # a container swapping the directory for a link after the mount changes nothing
    os.rename(vol / "dir", vol / "moved")
    (vol / "dir").symlink_to("/etc")
    assert (subpaths / "data" / "app" / "0" / "x").read_text() == "through"
    # preparing again (a restarted container) replaces the mount, and refuses the link now
    with pytest.raises(VolumeError):
        mounts_of(vol, {"name": "data", "mountPath": "/d", "subPath": "dir"}, subpaths=subpaths)
    mountutil.unmount_all_under(subpaths)
    assert not mountutil.mounts_under(subpaths)
