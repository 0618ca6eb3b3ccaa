"""Kubeconfig loading, in-cluster config and TLS contexts."""

from __future__ import annotations

import base64
import ssl
import subprocess

import pytest
import yaml

from pybernetes.client.kubeconfig import (
    Config,
    ConfigError,
    in_cluster_config,
    load_config,
    load_kubeconfig,
)


def _doc(**user) -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [
            {"name": "c1", "cluster": {"server": "https://a:6443,https://b:6443",
                                       "certificate-authority-data": base64.b64encode(b"CA").decode()}},
            {"name": "c2", "cluster": {"server": "http://127.0.0.1:8080/", "certificate-authority": "ca.pem"}},
        ],
        "users": [{"name": "u1", "user": user}, {"name": "u2", "user": {"tokenFile": "tok"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "team"}},
                     {"name": "other", "context": {"cluster": "c2", "user": "u2"}}],
    }


def test_current_context_and_named_context(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(_doc(token="abc")))
    (tmp_path / "ca.pem").write_bytes(b"FILE-CA")
    (tmp_path / "tok").write_text("file-token\n")
    cfg = load_kubeconfig(path)
    assert cfg.servers == ["https://a:6443", "https://b:6443"]
    assert cfg.ca_data == b"CA" and cfg.namespace == "team"
    assert cfg.auth_header() == "Bearer abc"
    other = load_kubeconfig(path, context="other")
    assert other.servers == ["http://127.0.0.1:8080"] and other.ca_data == b"FILE-CA"
    assert other.namespace == "default"
    assert other.bearer_token() == "file-token"  # relative to the kubeconfig's directory
    assert other.ssl_context() is None  # plain http


def test_bad_kubeconfigs(tmp_path):
    path = tmp_path / "k"
    doc = _doc()
    doc["current-context"] = "missing"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="missing"):
        load_kubeconfig(path)
    path.write_text("- a list")
    with pytest.raises(ConfigError):
        load_kubeconfig(path)
    with pytest.raises(ConfigError):
        load_kubeconfig(tmp_path / "nope")


def test_basic_auth_and_token_file_rereads(tmp_path, monkeypatch):
    cfg = Config(servers=["http://x"], username="me", password="pw")
    assert cfg.auth_header() == "Basic " + base64.b64encode(b"me:pw").decode()
    tok = tmp_path / "token"
    tok.write_text("one")
    cfg = Config(servers=["http://x"], token_file=str(tok))
    assert cfg.bearer_token() == "one"
    tok.write_text("two")
    assert cfg.bearer_token() == "one"  # cached for a minute
    monkeypatch.setattr("pybernetes.client.kubeconfig.TOKEN_REREAD", 0.0)
    assert cfg.bearer_token() == "two"


def test_in_cluster(tmp_path):
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "namespace").write_text("apps\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.43.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    cfg = in_cluster_config(tmp_path, env)
    assert cfg.servers == ["https://10.43.0.1:443"] and cfg.namespace == "apps"
    assert cfg.auth_header() == "Bearer sa-token"
    assert in_cluster_config(tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00::1",
                                        "KUBERNETES_SERVICE_PORT": "443"}).server == "https://[fd00::1]:443"
    with pytest.raises(ConfigError):
        in_cluster_config(tmp_path, {})


def test_load_config_uses_KUBECONFIG(tmp_path, monkeypatch):
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump(_doc(token="t")))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{path}")
    assert load_config().servers[0] == "https://a:6443"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def test_tls_context_with_ca_and_client_certificate(tmp_path):
    try:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test",
                 "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"), "-days", "1")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("openssl is not available")
    cert, key = (tmp_path / "c.pem").read_bytes(), (tmp_path / "k.pem").read_bytes()
    ctx = Config(servers=["https://x"], ca_data=cert, cert_data=cert, key_data=key).ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1
    insecure = Config(servers=["https://x"], insecure_skip_tls_verify=True).ssl_context()
    assert insecure.verify_mode == ssl.CERT_NONE
    with pytest.raises(ConfigError):
        Config(servers=["https://x"], cert_data=cert).ssl_context()
