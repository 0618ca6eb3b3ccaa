"""``pybernetes image pull REF [--data-dir] [--insecure] [--creds]`` against a real
docker-registry started by the test, with DATA_DIR/registries.yaml mirrors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

import busybox_image  # noqa: E402
import registry as support  # noqa: E402

from pybernetes.cli.main import main  # noqa: E402

pytestmark = pytest.mark.skipif(support.missing() is not None, reason=str(support.missing()))


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    work = tmp_path_factory.mktemp("registry-cli")
    with support.running_registry(work / "registry") as reg:
        info = busybox_image.build_layout(work / "bb", "bb:1")
        yield SimpleNamespace(registry=reg, info=info, digest=reg.push(work / "bb", "1", "tools/bb:1"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_pull_then_ls(pushed: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    ref = f"{pushed.registry.host}/tools/bb:1"
    code, out, err = run(capsys, "image", "pull", ref, "--data-dir", data, "--insecure")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == [ref, f"{pushed.registry.host}/tools/bb@{pushed.digest}"]
    assert lines[2].startswith(f"image id {pushed.info['config']}, ")
    code, out, _ = run(capsys, "image", "ls", "--data-dir", data)
    assert code == 0 and out.splitlines()[1].split()[:2] == [ref, pushed.info["config"][7:19]]


def test_registries_yaml_mirror(pushed: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "registries.yaml").write_text(
        f"mirrors:\n  mirrored.test:\n    endpoint:\n      - {pushed.registry.url}\n")
    code, out, err = run(capsys, "image", "pull", "mirrored.test/tools/bb:1", "--data-dir", str(data))
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "mirrored.test/tools/bb:1"


def test_errors_exit_1(pushed: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    ref = f"{pushed.registry.host}/tools/none:1"
    code, out, err = run(capsys, "image", "pull", ref, "--data-dir", str(data))
    assert code == 1 and out == ""
    assert err == f"pybernetes image pull: ErrImagePull: {ref}: manifest unknown\n"
    (data / "registries.yaml").write_text("mirrors: [1, 2]\n")
    code, _, err = run(capsys, "image", "pull", ref, "--data-dir", str(data))
    assert code == 1 and "registries.yaml: mirrors must be a mapping" in err
