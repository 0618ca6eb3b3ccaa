"""hostPath type checks: every type, the *OrCreate ones making what is missing, upstream's
failure messages."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from pybernetes.kubelet.volumes.hostpath import HostPathError, check_host_path


def test_no_type_checks_nothing(tmp_path) -> None:
    check_host_path(str(tmp_path / "missing"), "")
    check_host_path(str(tmp_path / "missing"), None)
    assert not (tmp_path / "missing").exists()


def test_directory_or_create_makes_a_0755_directory(tmp_path) -> None:
    path = tmp_path / "a" / "b"
    old = os.umask(0o077)
    try:
        check_host_path(str(path), "DirectoryOrCreate")
    finally:
        os.umask(old)
    assert path.is_dir()
    check_host_path(str(path), "DirectoryOrCreate")  # again: fine


def test_directory_or_create_on_a_file_fails(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(HostPathError, match=f"^hostPath type check failed: {tmp_path}/f is not a directory$"):
        check_host_path(str(tmp_path / "f"), "DirectoryOrCreate")


def test_directory(tmp_path) -> None:
    check_host_path(str(tmp_path), "Directory")
    with pytest.raises(HostPathError, match="is not a directory"):
        check_host_path(str(tmp_path / "missing"), "Directory")
    assert not (tmp_path / "missing").exists()


def test_directory_through_a_symlink(tmp_path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    check_host_path(str(tmp_path / "link"), "Directory")


def test_file_or_create_makes_an_empty_0644_file(tmp_path) -> None:
    path = tmp_path / "f"
    check_host_path(str(path), "FileOrCreate")
    assert path.read_bytes() == b""
    assert stat.S_IMODE(path.stat().st_mode) & 0o644 == 0o644
    path.write_text("keep")
    check_host_path(str(path), "FileOrCreate")
    assert path.read_text() == "keep"


def test_file_or_create_needs_its_directory(tmp_path) -> None:
    with pytest.raises(HostPathError, match="No such file or directory"):
        check_host_path(str(tmp_path / "no" / "f"), "FileOrCreate")


def test_file(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    check_host_path(str(tmp_path / "f"), "File")
    with pytest.raises(HostPathError, match=f"^hostPath type check failed: {tmp_path} is not a file$"):
        check_host_path(str(tmp_path), "File")


def test_socket(tmp_path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        check_host_path(str(path), "Socket")
    with pytest.raises(HostPathError, match="is not a socket file$"):
        check_host_path(str(tmp_path), "Socket")


def test_char_device(tmp_path) -> None:
    check_host_path("/dev/null", "CharDevice")
    with pytest.raises(HostPathError, match=f"^hostPath type check failed: {tmp_path} is not a character device$"):
        check_host_path(str(tmp_path), "CharDevice")


def test_block_device(tmp_path) -> None:
    with pytest.raises(HostPathError, match="is not a block device$"):
        check_host_path("/dev/null", "BlockDevice")
    blocks = [f"/dev/{n}" for n in sorted(os.listdir("/dev"))
              if stat.S_ISBLK(os.stat(f"/dev/{n}", follow_symlinks=False).st_mode)] \
        if os.path.isdir("/dev") else []
    if not blocks:
        pytest.skip("no block device on this machine to check the positive case")
    check_host_path(blocks[0], "BlockDevice")


def test_an_unknown_type(tmp_path) -> None:
    with pytest.raises(HostPathError, match="^Fancy is an invalid volume type$"):
        check_host_path(str(tmp_path), "Fancy")
