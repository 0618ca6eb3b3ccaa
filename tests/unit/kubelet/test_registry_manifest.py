"""The pure parts of a pull (kubelet/runtime/image_format.py, registry.py): choosing the
linux/amd64 image of an index, telling manifests apart, the registry's error words, and
splitting references."""

from __future__ import annotations

import json

import pytest

from pybernetes.kubelet.runtime.image_format import parse_manifest, select_platform, split_reference
from pybernetes.kubelet.runtime.images import ImageError
from pybernetes.kubelet.runtime.registry import registry_error_message

D = "sha256:" + "a" * 64


def entry(digest: str, os_name: str = "linux", arch: str = "amd64", variant: str = "", **annotations: str) -> dict:
    platform = {"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})}
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
            "platform": platform, **({"annotations": annotations} if annotations else {})}


def test_select_platform() -> None:
    index = {"manifests": [entry("arm", arch="arm64", variant="v8"), entry("win", os_name="windows"),
                           entry("amd"), entry("amd-again")]}
    assert select_platform(index, "x")["digest"] == "amd"  # the first fitting entry
    # buildx attestations (platform unknown/unknown, or annotated) are never images
    attest = {"manifests": [entry("att", os_name="unknown", arch="unknown"),
                            entry("att2", **{"vnd.docker.reference.type": "attestation-manifest"}),
                            entry("img")]}
    assert select_platform(attest, "x")["digest"] == "img"
    # variants: the exact one, else one without a variant, else any
    variants = {"manifests": [entry("v3", variant="v3"), entry("plain"), entry("v2", variant="v2")]}
    assert select_platform(variants, "x", variant="v2")["digest"] == "v2"
    assert select_platform(variants, "x", variant="v4")["digest"] == "plain"
    assert select_platform({"manifests": [entry("v3", variant="v3")]}, "x")["digest"] == "v3"
    assert select_platform(index, "x", architecture="arm64", variant="v8")["digest"] == "arm"


def test_select_platform_none() -> None:
    with pytest.raises(ImageError) as failed:
        select_platform({"manifests": [entry("arm", arch="arm64"), {"digest": "no-platform"}, "junk"]},
                        "r.example/app:1")
    assert failed.value.message == ("no matching manifest for linux/amd64 in the manifest list entries "
                                    "of r.example/app:1")
    with pytest.raises(ImageError):
        select_platform({}, "x")


def manifest(media_type: str | None = "application/vnd.oci.image.manifest.v1+json", **extra: object) -> bytes:
    doc = {"schemaVersion": 2, **({"mediaType": media_type} if media_type else {}),
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": D, "size": 3}]}
    doc.update(extra)
    return json.dumps(doc).encode()


def test_parse_manifest_kinds() -> None:
    assert parse_manifest(manifest(), "", "x")[0] == "application/vnd.oci.image.manifest.v1+json"
    docker = manifest("application/vnd.docker.distribution.manifest.v2+json")
    assert parse_manifest(docker, "", "x")[0] == "application/vnd.docker.distribution.manifest.v2+json"
    # no mediaType field: the Content-Type header, else the shape
    assert parse_manifest(manifest(None), "application/vnd.docker.distribution.manifest.v2+json; x=y",
                          "x")[0] == "application/vnd.docker.distribution.manifest.v2+json"
    assert parse_manifest(manifest(None), "application/json", "x")[0] == "application/vnd.oci.image.manifest.v1+json"
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(index, "application/vnd.docker.distribution.manifest.list.v2+json", "x")[0] == \
        "application/vnd.docker.distribution.manifest.list.v2+json"
    assert parse_manifest(index, "", "x")[0] == "application/vnd.oci.image.index.v1+json"


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"{", "", "x: manifest is not valid JSON"),
    (b"[]", "", "x: manifest is not a JSON object"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(),
     "application/vnd.docker.distribution.manifest.v1+prettyjws", "x: Docker image manifest schema 1 is not supported"),
    (json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode(), "", "unsupported manifest media type"),
    (manifest(layers=[{"digest": "md5:abc", "size": 1}]), "", "without a sha256 digest"),
    (manifest(layers=[{"digest": D, "size": -1}]), "", "has an invalid size"),
    (manifest(config=None), "", "without a sha256 digest"),
])
def test_parse_manifest_refuses(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ImageError) as failed:
        parse_manifest(body, content_type, "x")
    assert message in failed.value.message


@pytest.mark.parametrize(("status", "body", "want"), [
    (404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}',
     "manifest unknown"),
    (401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}',
     "unauthorized: authentication required"),
    (404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"OCI manifest found, but accept header does not '
          b'support OCI manifests"}]}',
     "manifest unknown: OCI manifest found, but accept header does not support OCI manifests"),
    (403, b'{"errors":[{"code":"DENIED"},{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
     "denied; toomanyrequests: slow down"),
    (502, b"upstream gone", "502 Bad Gateway: upstream gone"),
    (500, b"<html><body>oops</body></html>", "500 Internal Server Error"),
    (404, b"", "404 Not Found"),
])
def test_registry_error_message(status: int, body: bytes, want: str) -> None:
    reasons = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
               502: "Bad Gateway"}
    assert registry_error_message(status, reasons[status], body) == want


def test_split_reference() -> None:
    assert split_reference("docker.io/library/busybox:latest") == ("docker.io", "library/busybox", "latest")
    assert split_reference("127.0.0.1:5000/a/b:1") == ("127.0.0.1:5000", "a/b", "1")
    assert split_reference(f"r.example/app@{D}") == ("r.example", "app", D)
    assert split_reference(f"r.example:5000/app:1@{D}") == ("r.example:5000", "app", D)
