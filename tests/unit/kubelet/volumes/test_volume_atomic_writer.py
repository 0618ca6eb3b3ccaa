"""The atomic writer: upstream's ..data layout, one rename per update, no-op when unchanged,
stale names and directories removed, modes, fsGroup, and bad paths refused untouched."""

from __future__ import annotations

import os
import stat

import pytest

from pybernetes.kubelet.volumes.atomic_writer import AtomicWriter, FileProjection, validate_path

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown to another group")


def ts_dirs(target) -> list[str]:
    return sorted(n for n in os.listdir(target) if n.startswith("..") and n not in ("..data",))


def test_first_write_makes_the_layout(tmp_path) -> None:
    target = tmp_path / "vol"
    writer = AtomicWriter(target)
    assert writer.write({"a": FileProjection(b"1"), "dir/b": FileProjection(b"2", 0o600)}) is True
    data = os.readlink(target / "..data")
    assert data.startswith("..") and ts_dirs(target) == [data]
    assert os.readlink(target / "a") == "..data/a" and os.readlink(target / "dir") == "..data/dir"
    assert (target / "a").read_bytes() == b"1" and (target / "dir" / "b").read_bytes() == b"2"
    assert stat.S_IMODE(os.stat(target / "a").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(target / "dir" / "b").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(target / data).st_mode) == 0o755
    assert writer.read() == {"a": b"1", "dir/b": b"2"}


def test_unchanged_payload_writes_nothing(tmp_path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1")})
    before = os.readlink(tmp_path / "..data")
    assert writer.write({"a": FileProjection(b"1")}) is False
    assert os.readlink(tmp_path / "..data") == before


def test_update_swaps_the_data_link_and_drops_the_old_files(tmp_path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1"), "gone": FileProjection(b"x")})
    old = os.readlink(tmp_path / "..data")
    assert writer.write({"a": FileProjection(b"2"), "new": FileProjection(b"n")}) is True
    new = os.readlink(tmp_path / "..data")
    assert new != old and ts_dirs(tmp_path) == [new]
    assert (tmp_path / "a").read_bytes() == b"2" and (tmp_path / "new").read_bytes() == b"n"
    assert not os.path.lexists(tmp_path / "gone")
    assert not os.path.lexists(tmp_path / "..data_tmp")


def test_a_mode_change_alone_is_an_update(tmp_path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1", 0o644)})
    assert writer.write({"a": FileProjection(b"1", 0o400)}) is True
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o400


def test_leftover_directories_of_a_crash_are_removed(tmp_path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1")})
    (tmp_path / "..2020_01_01_00_00_00.123").mkdir()
    writer.write({"a": FileProjection(b"2")})
    assert ts_dirs(tmp_path) == [os.readlink(tmp_path / "..data")]


def test_empty_payload_gives_an_empty_volume(tmp_path) -> None:
    writer = AtomicWriter(tmp_path)
    writer.write({"a": FileProjection(b"1")})
    writer.write({})
    assert [n for n in os.listdir(tmp_path) if not n.startswith("..")] == []
    assert writer.read() == {}


@pytest.mark.parametrize("path,message", [
    ("/abs", "must be relative path"),
    ("a/../b", "must not contain '..'"),
    ("..hidden", "must not start with '..'"),
    ("", "must not be empty"),
    ("x" * 256, "segments must be less than or equal to 255"),
])
def test_bad_paths_are_refused_before_anything_is_written(tmp_path, path, message) -> None:
    writer = AtomicWriter(tmp_path / "vol")
    with pytest.raises(ValueError, match=message):
        writer.write({"ok": FileProjection(b"1"), path: FileProjection(b"2")})
    assert not (tmp_path / "vol").exists()


def test_validate_path_cleans() -> None:
    assert validate_path("./a//b/") == "a/b"


@needs_root
def test_fs_group_owns_files_and_directories(tmp_path) -> None:
    writer = AtomicWriter(tmp_path, fs_group=4321)
    writer.write({"d/f": FileProjection(b"1", 0o600)})
    data = tmp_path / os.readlink(tmp_path / "..data")
    f = os.stat(data / "d" / "f")
    assert f.st_gid == 4321 and stat.S_IMODE(f.st_mode) == 0o640
    for directory in (data, data / "d"):
        st = os.stat(directory)
        assert st.st_gid == 4321 and st.st_mode & stat.S_ISGID
    assert writer.write({"d/f": FileProjection(b"1", 0o600)}) is False  # the group's bits are expected
