"""Image pulls (kubelet/runtime/registry.py) from a real docker-registry (distribution 2.8)
started by the test: OCI and Docker schema 2 manifests, an index with two platforms, tag and
digest references, gzip/zstd/plain layers, registry errors, a corrupt blob, token and basic
auth, deduplication, mirrors.  The aiohttp RegistryProxy (tests/support/registry.py) in front
of the registry counts requests, corrupts blobs and demands credentials."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
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
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One registry for the module, with: bb:1 (OCI), bb:v2s2 (Docker schema 2), app:1 (bb's
    base layer + another), multi:1 (linux/amd64 + linux/arm64 index), mixed:1 (plain + zstd)."""
    work = tmp_path_factory.mktemp("registry")
    with support.running_registry(work / "registry") as reg:
        bb = busybox_image.build_layout(work / "bb", "bb:1", extra_layers=[{"etc/hello": "hi\n"}])
        app = busybox_image.build_layout(work / "app", "app:1", extra_layers=[{"etc/app": "app\n"}])
        multi = support.build_index_layout(work / "multi", "multi:1", [("linux", "arm64"), ("linux", "amd64")])
        mixed = support.build_layout_compressed(work / "mixed", "mixed:1", ["none", "zstd"],
                                                extra_layers=[{"etc/z": "zstd\n"}])
        yield SimpleNamespace(
            registry=reg, host=reg.host, bb=bb, app=app, multi=multi, mixed=mixed,
            bb_digest=reg.push(work / "bb", "1", "bb:1"),
            v2s2_digest=reg.push(work / "bb", "1", "bb:v2s2", v2s2=True),
            app_digest=reg.push(work / "app", "1", "app:1"),
            multi_digest=reg.push(work / "multi", "1", "multi:1", all_platforms=True),
            mixed_digest=reg.push(work / "mixed", "1", "mixed:1"))


def blobs(store: ImageStore) -> set[str]:
    return {"sha256:" + p.name for p in store.blob_dir.iterdir()}


def assert_nothing_stored(store: ImageStore) -> None:
    assert store.list() == []
    assert blobs(store) == set()
    assert list(store.tmp_dir.iterdir()) == []


async def test_oci_manifest_by_tag(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    ref = f"{pushed.host}/bb:1"
    image = await pull(store, ref)
    assert image.id == pushed.bb["config"]
    assert image.repo_tags == [ref]
    assert image.repo_digests == [f"{pushed.host}/bb@{pushed.bb_digest}"]
    assert pushed.bb_digest == pushed.bb["manifest"]
    assert blobs(store) == {pushed.bb["manifest"], pushed.bb["config"], *pushed.bb["layers"]}
    assert store.config(ref)["Cmd"] == ["sh"]
    layers = await asyncio.to_thread(store.unpack, ref)
    assert (layers[0] / "bin" / "busybox").is_file()
    assert (layers[1] / "etc" / "hello").read_text() == "hi\n"
    assert store.last_used(ref) is not None


async def test_docker_schema2_manifest(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    image = await pull(store, f"{pushed.host}/bb:v2s2")
    assert image.id == pushed.bb["config"]  # the same image in Docker form
    assert pushed.v2s2_digest != pushed.bb_digest
    assert image.repo_digests == [f"{pushed.host}/bb@{pushed.v2s2_digest}"]
    manifest = store.blob_path(pushed.v2s2_digest).read_text()
    assert "application/vnd.docker.distribution.manifest.v2+json" in manifest
    layers = await asyncio.to_thread(store.unpack, f"{pushed.host}/bb:v2s2")
    assert (layers[1] / "etc" / "hello").read_text() == "hi\n"


async def test_index_resolved_for_linux_amd64(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    ref = f"{pushed.host}/multi:1"
    image = await pull(store, ref)
    amd64, arm64 = pushed.multi["images"]["linux/amd64"], pushed.multi["images"]["linux/arm64"]
    assert image.id == amd64["config"]
    assert image.repo_digests == [f"{pushed.host}/multi@{pushed.multi['index']}"]
    assert pushed.multi_digest == pushed.multi["index"]
    assert arm64["config"] not in blobs(store) and arm64["layers"][1] not in blobs(store)
    layers = await asyncio.to_thread(store.unpack, ref)
    assert (layers[-1] / "platform").read_text() == "linux/amd64\n"


async def test_digest_references(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    by_digest = f"{pushed.host}/multi@{pushed.multi['index']}"
    image = await pull(store, by_digest)
    assert image.repo_tags == [] and image.repo_digests == [by_digest]
    assert image.id == pushed.multi["images"]["linux/amd64"]["config"]
    platform = f"{pushed.host}/bb@{pushed.bb_digest}"
    assert (await pull(store, platform)).id == pushed.bb["config"]
    # present and content-addressed: pulling it again asks the registry nothing
    async with support.RegistryProxy(pushed.registry.url) as proxy:
        await pull(store, f"{proxy.host}/bb@{pushed.bb_digest}")
        assert proxy.blob_gets(pushed.bb["layers"][0]) == 0  # the store had them
        proxy.requests.clear()
        again = await pull(store, f"{proxy.host}/bb@{pushed.bb_digest}")
        assert again.id == pushed.bb["config"] and proxy.requests == []


async def test_zstd_and_uncompressed_layers(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    ref = f"{pushed.host}/mixed:1"
    image = await pull(store, ref)
    assert image.id == pushed.mixed["config"]
    assert store.blob_path(pushed.mixed["layers"][1]).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    layers = await asyncio.to_thread(store.unpack, ref)
    assert (layers[0] / "bin" / "busybox").is_file()
    assert (layers[1] / "etc" / "z").read_text() == "zstd\n"


async def test_missing_image_and_tag(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    for ref in (f"{pushed.host}/nothing:1", f"{pushed.host}/bb:nope"):
        with pytest.raises(ImageError) as failed:
            await pull(store, ref)
        assert failed.value.reason == "ErrImagePull"
        assert failed.value.message == f"{ref}: manifest unknown"
    assert_nothing_stored(store)


async def test_connection_refused(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    port = support.free_port()
    with pytest.raises(ImageError) as failed:
        await pull(store, f"127.0.0.1:{port}/x:1")
    assert failed.value.reason == "ErrImagePull"
    assert failed.value.message == f"127.0.0.1:{port}/x:1: cannot connect to 127.0.0.1:{port}: connection refused"


async def test_corrupt_layer_refused_then_pulled_from_a_good_source(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    layer = pushed.bb["layers"][1]
    async with support.RegistryProxy(pushed.registry.url, corrupt={layer}) as proxy:
        ref = f"{proxy.host}/bb:1"
        with pytest.raises(ImageError) as failed:
            await pull(store, ref)
        assert failed.value.reason == "ErrImagePull"
        assert f"blob {layer} is corrupt" in failed.value.message
        assert_nothing_stored(store)
        # the registry serves it right again: the pull fetches the blob anew
        proxy.corrupt.clear()
        image = await pull(store, ref)
        assert image.id == pushed.bb["config"] and proxy.blob_gets(layer) == 2
        assert store.blob_path(layer).is_file()

    # a corrupt mirror first, a good one next: one pull, the good blob stored
    store = ImageStore(tmp_path / "images2")
    async with support.RegistryProxy(pushed.registry.url, corrupt={layer}) as bad:
        config = RegistryConfig.from_dict({"mirrors": {"mirrored.test": {
            "endpoint": [bad.url, pushed.registry.url]}}})
        image = await pull(store, "mirrored.test/bb:1", config=config)
        assert image.id == pushed.bb["config"] and bad.blob_gets(layer) == 1
        assert image.repo_tags == ["mirrored.test/bb:1"]
        layers = await asyncio.to_thread(store.unpack, "mirrored.test/bb:1")
        assert (layers[1] / "etc" / "hello").read_text() == "hi\n"


async def test_diff_id_mismatch_refused(pushed: SimpleNamespace, tmp_path: Path) -> None:
    """A layer whose blob matches its digest but whose content is not what the config says."""
    work = pushed.registry.workdir.parent
    info = busybox_image.build_layout(work / "lying", "lying:1", extra_layers=[{"etc/lie": "x\n"}])
    blobs_dir = work / "lying" / "blobs" / "sha256"
    config = json.loads((blobs_dir / info["config"][7:]).read_bytes())
    config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
    body = json.dumps(config).encode()
    new_config = "sha256:" + hashlib.sha256(body).hexdigest()
    (blobs_dir / new_config[7:]).write_bytes(body)
    support.rewrite_layout(work / "lying", lambda m, _: m["config"].update(digest=new_config, size=len(body)))
    pushed.registry.push(work / "lying", "1", "lying:1")
    store = ImageStore(tmp_path / "images")
    with pytest.raises(ImageError) as failed:
        await pull(store, f"{pushed.host}/lying:1")
    message = failed.value.message
    assert f"layer {info['layers'][1]}: uncompressed digest sha256:" in message
    assert message.endswith(f"does not match diff id sha256:{'0' * 64}")
    assert_nothing_stored(store)


async def test_failed_pull_keeps_nothing(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    async with support.RegistryProxy(pushed.registry.url) as proxy:
        proxy.fail["/blobs/" + pushed.app["layers"][1]] = 500
        with pytest.raises(ImageError) as failed:
            await pull(store, f"{proxy.host}/app:1")
        assert failed.value.message.endswith("injected failure")
        assert_nothing_stored(store)  # the base layer it did fetch is gone again


async def test_bearer_token_auth(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    async with support.RegistryProxy(pushed.registry.url, auth="bearer", users={"alice": "s3cret"}) as proxy:
        ref = f"{proxy.host}/bb:1"
        with pytest.raises(ImageError) as anonymous:
            await pull(store, ref)
        assert anonymous.value.message == f"{ref}: unauthorized: authentication required"
        with pytest.raises(ImageError) as wrong:
            await pull(store, ref, auth={"username": "alice", "password": "nope"})
        assert "unauthorized: incorrect username or password" in wrong.value.message
        assert_nothing_stored(store)
        proxy.token_requests.clear()
        image = await pull(store, ref, auth={"username": "alice", "password": "s3cret"})
        assert image.id == pushed.bb["config"]
        # one token for the whole pull, asked for with the challenge's service and scope
        assert proxy.token_requests == [{"user": "alice", "scope": "repository:bb:pull",
                                         "service": "pybernetes-test"}]
        store2 = ImageStore(tmp_path / "images2")
        encoded = base64.b64encode(b"alice:s3cret").decode()
        assert (await pull(store2, ref, auth={"auth": encoded})).id == pushed.bb["config"]


async def test_identity_and_registry_tokens(pushed: SimpleNamespace, tmp_path: Path) -> None:
    async with support.RegistryProxy(pushed.registry.url, auth="bearer") as proxy:
        ref = f"{proxy.host}/bb:1"
        proxy.refresh_tokens["refresh-me"] = "carol"
        image = await pull(ImageStore(tmp_path / "a"), ref, auth={"identitytoken": "refresh-me"})
        assert image.id == pushed.bb["config"]
        assert proxy.token_requests == [{"user": "carol", "scope": "repository:bb:pull",
                                         "service": "pybernetes-test", "grant_type": "refresh_token"}]
        # a registry token is sent as it is: no token request
        proxy.tokens["ready-made"] = "dave"
        proxy.token_requests.clear()
        image = await pull(ImageStore(tmp_path / "b"), ref, auth={"registrytoken": "ready-made"})
        assert image.id == pushed.bb["config"] and proxy.token_requests == []
        with pytest.raises(ImageError) as failed:
            await pull(ImageStore(tmp_path / "c"), ref, auth={"identitytoken": "stale"})
        assert "unauthorized: invalid refresh token" in failed.value.message


async def test_basic_auth_and_registry_yaml_credentials(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    async with support.RegistryProxy(pushed.registry.url, auth="basic", users={"bob": "pw"}) as proxy:
        ref = f"{proxy.host}/bb:1"
        with pytest.raises(ImageError) as anonymous:
            await pull(store, ref)
        assert anonymous.value.message == f"{ref}: unauthorized: authentication required"
        assert (await pull(store, ref, auth={"username": "bob", "password": "pw"})).id == pushed.bb["config"]
        config = RegistryConfig.from_dict({"configs": {proxy.host: {"auth": {"username": "bob", "password": "pw"}}}})
        store2 = ImageStore(tmp_path / "images2")
        assert (await pull(store2, ref, config=config)).id == pushed.bb["config"]


async def test_parallel_pulls_of_one_ref_share_one_download(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    async with support.RegistryProxy(pushed.registry.url) as proxy:
        ref = f"{proxy.host}/bb:1"
        images = await asyncio.gather(*(pull(store, ref) for _ in range(4)))
        assert {image.id for image in images} == {pushed.bb["config"]}
        assert sum(1 for method, path in proxy.requests if "/manifests/" in path) == 1
        for digest in (pushed.bb["config"], *pushed.bb["layers"]):
            assert proxy.blob_gets(digest) == 1


async def test_shared_layers_fetched_once(pushed: SimpleNamespace, tmp_path: Path) -> None:
    base = pushed.bb["layers"][0]
    assert pushed.app["layers"][0] == base
    async with support.RegistryProxy(pushed.registry.url) as proxy:
        store = ImageStore(tmp_path / "images")
        await asyncio.gather(pull(store, f"{proxy.host}/bb:1"), pull(store, f"{proxy.host}/app:1"))
        assert proxy.blob_gets(base) == 1
        assert proxy.blob_gets(pushed.bb["layers"][1]) == 1 and proxy.blob_gets(pushed.app["layers"][1]) == 1
        # one after the other: the second finds the base layer in the store
        store = ImageStore(tmp_path / "images2")
        proxy.requests.clear()
        await pull(store, f"{proxy.host}/bb:1")
        await pull(store, f"{proxy.host}/app:1")
        assert proxy.blob_gets(base) == 1
        assert {i.repo_tags[0] for i in store.list()} == {f"{proxy.host}/bb:1", f"{proxy.host}/app:1"}


async def test_mirrors_tried_in_order(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    dead = support.free_port()
    async with support.RegistryProxy(pushed.registry.url) as first, \
            support.RegistryProxy(pushed.registry.url) as second:
        config = RegistryConfig.from_dict({"mirrors": {"mirrored.test": {
            "endpoint": [f"http://127.0.0.1:{dead}", first.url, second.url]}}})
        image = await pull(store, "mirrored.test/bb:1", config=config)
        assert image.repo_tags == ["mirrored.test/bb:1"] and image.id == pushed.bb["config"]
        assert first.requests and not second.requests
        # a mirror without the image: the next one serves it; rewrites name it there
        config = RegistryConfig.from_dict({"mirrors": {"*": {
            "endpoint": [first.url, second.url], "rewrite": {"^cache/(.*)$": "$1"}}}})
        first.fail["/manifests/"] = 404
        image = await pull(store, "elsewhere.test/cache/app:1", config=config)
        assert image.id == pushed.app["config"]
        assert ("GET", "/v2/app/manifests/1") in second.requests
    # every endpoint failing: the registry's own error, the mirrors' in brackets
    gone = f"127.0.0.1:{support.free_port()}"
    with pytest.raises(ImageError) as failed:
        await pull(store, f"{gone}/bb:2", config=RegistryConfig.from_dict(
            {"mirrors": {gone: {"endpoint": [pushed.registry.url]}}}))
    assert failed.value.message == (f"{gone}/bb:2: cannot connect to {gone}: connection refused "
                                    f"(mirror {pushed.registry.url}: manifest unknown)")


async def test_moved_tag_keeps_the_old_image_by_digest(pushed: SimpleNamespace, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    ref = f"{pushed.host}/moving:1"
    pushed.registry.push(pushed.registry.workdir.parent / "bb", "1", "moving:1")
    old = await pull(store, ref)
    pushed.registry.push(pushed.registry.workdir.parent / "app", "1", "moving:1")
    new = await pull(store, ref)
    assert new.id == pushed.app["config"] and new.repo_tags == [ref]
    kept = {i.id: i for i in store.list()}[old.id]
    assert kept.repo_tags == [] and kept.repo_digests == [f"{pushed.host}/moving@{pushed.bb_digest}"]
