"""registries.yaml (kubelet/runtime/registry_config.py): parsing, clear errors, and the
endpoints a pull tries (mirrors in order, then the registry; plain HTTP where allowed)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from pybernetes.kubelet.runtime.registry_auth import Credentials
from pybernetes.kubelet.runtime.registry_config import RegistryConfig, RegistryConfigError, is_loopback

SAMPLE = """
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "mirror.example:8443/v2/"
    rewrite:
      "^library/(.*)$": "cache/$1"
  "*":
    endpoint: ["https://any.example"]
configs:
  "mirror.example:8443":
    auth: {username: m, password: pw}
    tls: {insecure_skip_verify: true}
  "registry.example":
    auth: {auth: "AUTH"}
    tls: {ca_file: /etc/ca.pem, cert_file: /c.pem, key_file: /k.pem}
insecure: ["plain.example:5000"]
""".replace("AUTH", base64.b64encode(b"u:p").decode())


def test_load_sample(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    path.write_text(SAMPLE)
    config = RegistryConfig.load(path)
    assert config.mirrors["docker.io"] == ("http://127.0.0.1:5000", "https://mirror.example:8443")
    assert config.configs["registry.example"].auth == Credentials("u", "p")
    assert config.configs["registry.example"].tls.ca_file == "/etc/ca.pem"
    assert config.insecure == {"plain.example:5000"}
    assert RegistryConfig.load(tmp_path / "absent.yaml") == RegistryConfig()
    json_path = tmp_path / "registries.json"
    json_path.write_text('{"mirrors": {"quay.io": {"endpoint": ["http://127.0.0.1:1"]}}}')
    assert RegistryConfig.load(json_path).mirrors == {"quay.io": ("http://127.0.0.1:1",)}


def test_docker_hub_endpoints() -> None:
    config = RegistryConfig.from_dict(yaml.safe_load(SAMPLE))
    pod_secret = Credentials("pod", "secret")
    first, second, hub = config.endpoints("docker.io", pod_secret)
    assert (first.url, first.upstream, first.http_fallback) == ("http://127.0.0.1:5000", False, False)
    assert first.auth == Credentials()  # a pod's secret is for the registry, not for mirrors
    assert (second.url, second.auth, second.tls.insecure_skip_verify) == (
        "https://mirror.example:8443", Credentials("m", "pw"), True)
    assert second.repository("library/busybox") == "cache/busybox"
    assert second.repository("me/app") == "me/app"
    assert (hub.url, hub.upstream, hub.auth, hub.http_fallback) == (
        "https://registry-1.docker.io", True, pod_secret, False)
    assert hub.repository("library/busybox") == "library/busybox"  # rewrites are for mirrors


def test_other_registries() -> None:
    config = RegistryConfig.from_dict(yaml.safe_load(SAMPLE))
    # no entry of its own: the "*" mirrors, then itself
    mirror, own = config.endpoints("registry.example")
    assert mirror.url == "https://any.example" and not mirror.upstream
    assert (own.url, own.upstream, own.auth) == ("https://registry.example", True, Credentials("u", "p"))
    assert own.tls.cert_file == "/c.pem"
    # insecure and loopback registries may fall back to plain HTTP
    assert config.endpoints("plain.example:5000")[-1].http_fallback
    assert not config.endpoints("plain.example")[-1].http_fallback
    assert RegistryConfig().endpoints("127.0.0.1:5000")[0].http_fallback
    assert RegistryConfig().endpoints("localhost:5000")[0].http_fallback
    assert RegistryConfig().with_insecure("reg.lan").endpoints("reg.lan")[0].http_fallback
    # a mirror that is the registry itself is not tried twice
    same = RegistryConfig.from_dict({"mirrors": {"127.0.0.1:5000": {"endpoint": ["http://127.0.0.1:5000"]}}})
    assert [e.url for e in same.endpoints("127.0.0.1:5000")] == ["http://127.0.0.1:5000"]
    assert same.endpoints("127.0.0.1:5000")[0].upstream


def test_is_loopback() -> None:
    assert is_loopback("localhost:5000") and is_loopback("127.0.0.2") and is_loopback("[::1]:5000")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("registry.example")


@pytest.mark.parametrize(("data", "message"), [
    ([1], "registries.yaml must be a mapping"),
    ({"mirror": {}}, "unknown field(s) mirror"),
    ({"mirrors": {"docker.io": {"endpoint": 5}}}, "mirrors[docker.io].endpoint must be a list"),
    ({"mirrors": {"docker.io": {"endpoint": ["ftp://x"]}}}, "is not an http(s) URL"),
    ({"mirrors": {"docker.io": {"endpoint": [""]}}}, "endpoint[0] must be a URL"),
    ({"mirrors": {"docker.io": {"endpoint": [], "rewrite": {"(": "x"}}}}, "bad pattern"),
    ({"configs": {"r": {"auth": {"auth": "***"}}}}, "configs[r].auth"),
    ({"configs": {"r": {"tls": "yes"}}}, "configs[r].tls must be a mapping"),
    ({"insecure": "r"}, "insecure must be a list"),
])
def test_bad_config(data: object, message: str) -> None:
    with pytest.raises(RegistryConfigError) as failed:
        RegistryConfig.from_dict(data)
    assert message in str(failed.value)


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    path.write_text("mirrors: [\n")
    with pytest.raises(RegistryConfigError) as failed:
        RegistryConfig.load(path)
    assert str(failed.value).startswith(f"{path}: not valid YAML")
