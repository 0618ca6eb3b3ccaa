"""fsGroup ownership: group and setgid bits as upstream sets them, links never followed,
OnRootMismatch skipping a matching root."""

from __future__ import annotations

import os
import stat

import pytest

from pybernetes.kubelet.volumes.ownership import root_matches, set_volume_ownership

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: changing a file's group")
GID = 2345


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_files_and_directories_get_the_group(tmp_path) -> None:
    vol = tmp_path / "vol"
    (vol / "sub").mkdir(parents=True)
    os.chmod(vol, 0o755)
    os.chmod(vol / "sub", 0o700)
    (vol / "sub" / "f").write_text("x")
    os.chmod(vol / "sub" / "f", 0o600)
    assert set_volume_ownership(vol, GID) is True
    for path in (vol, vol / "sub", vol / "sub" / "f"):
        assert os.lstat(path).st_gid == GID
    assert mode(vol) == 0o2775 and mode(vol / "sub") == 0o2770
    assert mode(vol / "sub" / "f") == 0o660


def test_read_only_volumes_get_read_bits_only(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    os.chmod(tmp_path / "f", 0o600)
    set_volume_ownership(tmp_path, GID, readonly=True)
    assert mode(tmp_path / "f") == 0o640


def test_links_are_not_followed(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host")
    os.chmod(outside, 0o600)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "link").symlink_to(outside)
    set_volume_ownership(vol, GID)
    assert os.lstat(outside).st_gid != GID and mode(outside) == 0o600
    assert os.lstat(vol / "link").st_gid == GID


def test_on_root_mismatch(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    assert not root_matches(tmp_path, GID)
    set_volume_ownership(tmp_path, GID)
    assert root_matches(tmp_path, GID)
    (tmp_path / "g").write_text("new")
    os.chmod(tmp_path / "g", 0o600)
    assert set_volume_ownership(tmp_path, GID, policy="OnRootMismatch") is False
    assert mode(tmp_path / "g") == 0o600  # not walked
    assert set_volume_ownership(tmp_path, GID, policy="Always") is True
    assert mode(tmp_path / "g") == 0o660


def test_no_group_changes_nothing(tmp_path) -> None:
    assert set_volume_ownership(tmp_path, None) is False
