"""Pulls over HTTPS from a docker-registry serving TLS with a test CA: verified with the CA
from registries.yaml, refused with the wrong CA (never retried as plain HTTP), accepted with
insecure_skip_verify, and unverified by default only for loopback registries."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))

import busybox_image  # noqa: E402
import registry as support  # noqa: E402

from pybernetes.kubelet.runtime.images import ImageError, ImageStore  # noqa: E402
from pybernetes.kubelet.runtime.registry import pull  # noqa: E402
from pybernetes.kubelet.runtime.registry_config import RegistryConfig  # noqa: E402

pytestmark = pytest.mark.skipif(support.missing() is not None, reason=str(support.missing()))


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    work = tmp_path_factory.mktemp("registry-tls")
    with support.running_registry(work / "registry", tls=True) as reg:
        info = busybox_image.build_layout(work / "bb", "bb:1")
        reg.push(work / "bb", "1", "bb:1")
        yield SimpleNamespace(registry=reg, info=info)


def mirrored(reg: support.DockerRegistry, tls: dict) -> RegistryConfig:
    """secure.test served by the TLS registry as its mirror, with ``tls`` for it."""
    return RegistryConfig.from_dict({"mirrors": {"secure.test": {"endpoint": [reg.url]}},
                                     "configs": {reg.host: {"tls": tls}}})


async def test_verified_with_the_configured_ca(tls_registry: SimpleNamespace, tmp_path: Path) -> None:
    reg = tls_registry.registry
    store = ImageStore(tmp_path / "images")
    image = await pull(store, "secure.test/bb:1", config=mirrored(reg, {"ca_file": str(reg.ca_file)}))
    assert image.id == tls_registry.info["config"]


async def test_wrong_ca_refused(tls_registry: SimpleNamespace, tmp_path: Path) -> None:
    reg = tls_registry.registry
    store = ImageStore(tmp_path / "images")
    other = reg.workdir / "other-ca.crt"
    config = RegistryConfig.from_dict({"configs": {reg.host: {"tls": {"ca_file": str(other)}}}})
    with pytest.raises(ImageError) as failed:
        await pull(store, f"{reg.host}/bb:1", config=config)
    assert failed.value.message.startswith(f"{reg.host}/bb:1: cannot reach {reg.host}: certificate verify failed")
    assert store.list() == []


async def test_insecure_skip_verify_and_loopback_default(tls_registry: SimpleNamespace, tmp_path: Path) -> None:
    reg = tls_registry.registry
    store = ImageStore(tmp_path / "images")
    image = await pull(store, "secure.test/bb:1", config=mirrored(reg, {"insecure_skip_verify": True}))
    assert image.id == tls_registry.info["config"]
    # a loopback registry without configuration: HTTPS, unverified (as docker treats 127.0.0.0/8)
    image = await pull(store, f"{reg.host}/bb:1")
    assert f"{reg.host}/bb:1" in image.repo_tags and image.id == tls_registry.info["config"]
