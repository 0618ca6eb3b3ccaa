"""Registry credentials (kubelet/runtime/registry_auth.py): WWW-Authenticate parsing,
dockerconfigjson entries, and kubelet's keyring matching of credential keys to images."""

from __future__ import annotations

import base64

import pytest

from pybernetes.kubelet.runtime.images import ImageError
from pybernetes.kubelet.runtime.registry_auth import (
    Credentials,
    credentials_for,
    key_matches,
    parse_auth,
    parse_challenge,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("header", "want"), [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/busybox:pull"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/busybox:pull"})]),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ("bearer realm=http://t/token, service=svc", [("bearer", {"realm": "http://t/token", "service": "svc"})]),
    # commas inside quotes, several challenges, escapes, a token68
    ('Basic realm="a, b", Bearer realm="x",scope="repository:a:pull,push", Negotiate abc==',
     [("basic", {"realm": "a, b"}), ("bearer", {"realm": "x", "scope": "repository:a:pull,push"}),
      ("negotiate", {"": "abc=="})]),
    ('Bearer realm="say \\"hi\\""', [("bearer", {"realm": 'say "hi"'})]),
    ("Bearer", [("bearer", {})]),
    ("", []),
])
def test_parse_challenge(header: str, want: list) -> None:
    assert parse_challenge(header) == want


def test_parse_auth_forms() -> None:
    assert parse_auth(None) == Credentials() and parse_auth({}).anonymous
    assert parse_auth({"username": "u", "password": "p"}) == Credentials("u", "p")
    assert parse_auth({"auth": b64("u:p:with:colons")}) == Credentials("u", "p:with:colons")
    assert parse_auth({"identitytoken": "refresh"}) == Credentials(identity_token="refresh")
    assert parse_auth({"registrytoken": "tok"}) == Credentials(registry_token="tok")
    assert parse_auth({"auth": b64("u:p")}).basic() == "Basic " + b64("u:p")
    # username/password win over auth (as docker's config does when both are set)
    assert parse_auth({"username": "a", "password": "b", "auth": b64("c:d")}) == Credentials("a", "b")


@pytest.mark.parametrize("bad", [{"auth": "%%%"}, {"auth": b64("no-colon")}, "user:pass"])
def test_parse_auth_rejects(bad: object) -> None:
    with pytest.raises(ImageError):
        parse_auth(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "ref", "matches"), [
    ("registry.example", "registry.example/app:1", True),
    ("https://registry.example", "registry.example/app:1", True),
    ("registry.example:5000", "registry.example:5000/app", True),
    ("registry.example:5000", "registry.example/app", False),  # ports must be equal
    ("registry.example", "registry.example:5000/app", False),
    ("registry.example/team", "registry.example/team/app", True),  # path prefix
    ("registry.example/team", "registry.example/teammate/app", False),
    ("registry.example/team", "registry.example/other/app", False),
    ("*.example", "registry.example/app", True),  # one glob per DNS label
    ("*.example", "a.registry.example/app", False),
    ("*.*.example", "a.registry.example/app", True),
    ("other.example", "registry.example/app", False),
    # Docker Hub under its many names
    ("https://index.docker.io/v1/", "busybox", True),
    ("index.docker.io", "library/busybox:1", True),
    ("docker.io", "me/app", True),
    ("registry-1.docker.io", "docker.io/me/app", True),
    ("index.docker.io/me", "me/app", True),
    ("index.docker.io/you", "me/app", False),
    ("https://index.docker.io/v1/", "quay.io/me/app", False),
    ("127.0.0.1:5000", "127.0.0.1:5000/app", True),
    ("localhost:5000", "localhost:5000/app@sha256:" + "a" * 64, True),
])
def test_key_matches(key: str, ref: str, matches: bool) -> None:
    assert bool(key_matches(key, ref)) is matches


def test_credentials_for_picks_the_most_specific_entry() -> None:
    docs = [
        {"auths": {"registry.example": {"username": "host"},
                   "registry.example/team": {"username": "team"},
                   "*.example": {"username": "glob"}}},
        {"auths": {"registry.example/team/app": {"username": "app"}}},
    ]
    assert credentials_for("registry.example/team/app:1", docs) == {"username": "app"}
    assert credentials_for("registry.example/team/other", docs) == {"username": "team"}
    assert credentials_for("registry.example/x", docs) == {"username": "host"}
    assert credentials_for("mirror.example/x", docs) == {"username": "glob"}
    assert credentials_for("quay.io/x", docs) is None
    # equally specific keys: the earlier secret wins (kubelet keeps pull secrets in order)
    two = [{"auths": {"r.example": {"username": "first"}}}, {"auths": {"r.example": {"username": "second"}}}]
    assert credentials_for("r.example/a", two) == {"username": "first"}


def test_credentials_for_docker_hub_and_legacy_dockercfg() -> None:
    entry = {"auth": b64("me:pw"), "email": "me@example.com"}
    assert credentials_for("busybox", [{"auths": {"https://index.docker.io/v1/": entry}}]) == entry
    assert credentials_for("busybox", [{"https://index.docker.io/v1/": entry}]) == entry  # .dockercfg
    assert credentials_for("busybox", [{"auths": {"quay.io": entry}}]) is None
    found = credentials_for("busybox", [{"auths": {"docker.io": entry}}])
    assert found == entry and found is not entry  # a copy
    assert credentials_for("x", [{"auths": "not a map"}, "junk"]) is None  # type: ignore[list-item]
