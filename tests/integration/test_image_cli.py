"""``pybernetes image import | ls | rm`` against a store in a temporary data directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pybernetes.cli.main import main

PYBERNETES = str(Path(sys.executable).parent / "pybernetes")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _archive(path: Path, tags: list[str], content: bytes) -> str:
    """A one-layer docker-archive; returns the image id."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as layer_tar:
        _add(layer_tar, "hello", content)
    layer = layer_buf.getvalue()
    config = json.dumps({"config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    with tarfile.open(path, "w") as tar:
        _add(tar, f"{config_hex}.json", config)
        _add(tar, "l/layer.tar", gzip.compress(layer))
        _add(tar, "manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": tags,
                                                 "Layers": ["l/layer.tar"]}]).encode())
    return config_hex


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_import_ls_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    image_id = _archive(tmp_path / "a.tar", ["busybox", "me/app:1"], b"hi")
    code, out, _ = _run(capsys, "image", "import", str(tmp_path / "a.tar"), "--data-dir", data)
    assert code == 0
    assert out.split() == ["docker.io/library/busybox:latest", "docker.io/me/app:1"]
    code, out, _ = _run(capsys, "image", "ls", "--data-dir", data)
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY:TAG", "IMAGE", "ID", "SIZE"]
    assert [line.split()[:2] for line in lines[1:]] == [
        ["docker.io/library/busybox:latest", image_id[:12]], ["docker.io/me/app:1", image_id[:12]]]
    code, out, _ = _run(capsys, "image", "rm", "busybox", "--data-dir", data)
    assert code == 0
    code, out, _ = _run(capsys, "image", "ls", "--data-dir", data)
    assert len(out.splitlines()) == 2 and "docker.io/me/app:1" in out
    code, _, err = _run(capsys, "image", "rm", "busybox", "--data-dir", data)
    assert code == 1 and "not found" in err


def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.tar").write_bytes(b"junk")
    code, _, err = _run(capsys, "image", "import", str(tmp_path / "junk.tar"), "--data-dir", str(tmp_path))
    assert code == 1 and "pybernetes image import:" in err
    code, _, err = _run(capsys, "image", "import", str(tmp_path / "missing.tar"), "--data-dir", str(tmp_path))
    assert code == 1 and "missing.tar" in err


def test_real_process(tmp_path: Path) -> None:
    _archive(tmp_path / "a.tar", ["registry:5000/x"], b"x")
    done = subprocess.run([PYBERNETES, "image", "import", str(tmp_path / "a.tar"), "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "registry:5000/x:latest"
