"""kubelet.runtime.kernel's mount checks: is_mountpoint (a device change, else the mount
table) and mount_targets (one read of the mount table for several paths)."""

from __future__ import annotations

import os
import subprocess

import pytest

from pybernetes.kubelet.runtime import kernel


def test_mount_roots_are_mount_points_and_plain_directories_are_not(tmp_path) -> None:
    assert kernel.is_mountpoint("/proc")
    assert kernel.is_mountpoint("/")
    assert not kernel.is_mountpoint(tmp_path)
    assert not kernel.is_mountpoint(tmp_path / "missing")


def test_mount_targets_answers_for_several_paths_at_once(tmp_path) -> None:
    assert kernel.mount_targets(["/proc", "/", tmp_path, str(tmp_path / "x")]) == {"/proc", "/"}
    assert kernel.mount_targets([]) == set()


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_a_file_bind_mount_on_the_same_device_is_found_in_the_mount_table(tmp_path) -> None:
    source, target = tmp_path / "source", tmp_path / "with space"
    source.write_text("x")
    target.touch()
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        assert os.stat(target).st_dev == os.stat(tmp_path).st_dev  # no device change to see
        assert kernel.is_mountpoint(target)
        assert kernel.mount_targets([target, source]) == {str(target)}
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert not kernel.is_mountpoint(target)
