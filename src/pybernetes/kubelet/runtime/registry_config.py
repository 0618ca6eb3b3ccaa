"""Registry configuration of a node: mirrors, per-host credentials and TLS, insecure registries.

Read from ``<data dir>/registries.yaml`` (YAML or JSON), in the shape of k3s's registries.yaml::

    mirrors:
      docker.io:                      # a registry host, or "*" for every registry without its own entry
        endpoint: ["http://127.0.0.1:5000", "https://mirror.example"]
        rewrite: {"^library/(.*)$": "cache/$1"}   # optional, repository rewrites at the mirrors
    configs:
      "mirror.example":               # an endpoint host[:port]
        auth: {username: u, password: p}          # or auth / identitytoken / registrytoken
        tls: {insecure_skip_verify: true, ca_file: /ca.pem, cert_file: c.pem, key_file: k.pem}
    insecure: ["registry.local:5000"]  # plain HTTP allowed (HTTPS tried first, unverified)

A pull of ``HOST/repo`` tries ``HOST``'s mirror endpoints in order, then the registry itself
(Docker Hub's is ``registry-1.docker.io``).  An endpoint without a scheme is HTTPS.  Registries
listed insecure, and loopback ones (``localhost``, ``127.0.0.0/8``, ``[::1]``), are tried over
HTTPS without verification first and then over plain HTTP, as docker and containerd do.

Pure: parsing and endpoint planning; no I/O but reading the file.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from pybernetes.kubelet.runtime.image_format import ImageError
from pybernetes.kubelet.runtime.registry_auth import DOCKER_HUB, Credentials, parse_auth

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


class RegistryConfigError(ValueError):
    """registries.yaml is malformed; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    insecure_skip_verify: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True, slots=True)
class HostConfig:
    auth: Credentials = field(default_factory=Credentials)
    tls: TLSConfig = field(default_factory=TLSConfig)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One place to pull from: ``url`` is ``scheme://host[:port][/prefix]`` (no trailing /)."""

    url: str
    host: str  # host[:port] of the url
    upstream: bool  # the registry itself, not a mirror
    http_fallback: bool  # HTTPS may fall back to plain HTTP (insecure or loopback)
    tls: TLSConfig
    auth: Credentials
    rewrite: tuple[tuple[str, str], ...] = ()

    def repository(self, repository: str) -> str:
        """``repository`` as this endpoint names it (the first matching rewrite, if any)."""
        for pattern, replacement in self.rewrite:
            if re.search(pattern, repository):
                return re.sub(pattern, re.sub(r"\$(\d+)", r"\\\1", replacement), repository, count=1)
        return repository


def is_loopback(host: str) -> bool:
    name = host[1:host.find("]")] if host.startswith("[") else host.partition(":")[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _mapping(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistryConfigError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _endpoint_url(text: object, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise RegistryConfigError(f"{where} must be a URL string")
    url = text.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryConfigError(f"{where}: {text!r} is not an http(s) URL")
    path = parts.path.rstrip("/")
    if path.endswith("/v2"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass(frozen=True)
class RegistryConfig:
    """See the module docstring."""

    mirrors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rewrites: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    configs: dict[str, HostConfig] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, data: object, source: str = "registries.yaml") -> RegistryConfig:
        top = _mapping(data, source)
        unknown = set(top) - {"mirrors", "configs", "insecure"}
        if unknown:
            raise RegistryConfigError(f"{source}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        mirrors: dict[str, tuple[str, ...]] = {}
        rewrites: dict[str, tuple[tuple[str, str], ...]] = {}
        for host, entry in _mapping(top.get("mirrors"), f"{source}: mirrors").items():
            where = f"{source}: mirrors[{host}]"
            entry = _mapping(entry, where)
            endpoints = entry.get("endpoint") or []
            if isinstance(endpoints, str):
                endpoints = [endpoints]
            if not isinstance(endpoints, list):
                raise RegistryConfigError(f"{where}.endpoint must be a list of URLs")
            mirrors[str(host)] = tuple(_endpoint_url(e, f"{where}.endpoint[{i}]") for i, e in enumerate(endpoints))
            rules = []
            for pattern, replacement in _mapping(entry.get("rewrite"), f"{where}.rewrite").items():
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    raise RegistryConfigError(f"{where}.rewrite: bad pattern {pattern!r}: {exc}") from exc
                rules.append((str(pattern), str(replacement)))
            rewrites[str(host)] = tuple(rules)
        configs: dict[str, HostConfig] = {}
        for host, entry in _mapping(top.get("configs"), f"{source}: configs").items():
            where = f"{source}: configs[{host}]"
            entry = _mapping(entry, where)
            tls = _mapping(entry.get("tls"), f"{where}.tls")
            try:
                auth = parse_auth(_mapping(entry.get("auth"), f"{where}.auth"))
            except ImageError as exc:  # a bad base64 "auth"
                raise RegistryConfigError(f"{where}.auth: {exc.message}") from exc
            configs[str(host)] = HostConfig(auth=auth, tls=TLSConfig(
                insecure_skip_verify=bool(tls.get("insecure_skip_verify", False)),
                ca_file=str(tls.get("ca_file") or ""), cert_file=str(tls.get("cert_file") or ""),
                key_file=str(tls.get("key_file") or "")))
        insecure = top.get("insecure") or []
        if not isinstance(insecure, list) or not all(isinstance(h, str) for h in insecure):
            raise RegistryConfigError(f"{source}: insecure must be a list of registry hosts")
        return cls(mirrors, rewrites, configs, frozenset(h.strip() for h in insecure))

    @classmethod
    def load(cls, path: Path | str) -> RegistryConfig:
        """The configuration in ``path``; an empty one when the file does not exist."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise RegistryConfigError(f"{path}: {exc.strerror or exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RegistryConfigError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, str(path))

    def with_insecure(self, *hosts: str) -> RegistryConfig:
        return RegistryConfig(self.mirrors, self.rewrites, self.configs, self.insecure | set(hosts))

    def endpoints(self, registry: str, auth: Credentials | None = None) -> list[Endpoint]:
        """Where to pull ``registry``'s images from, in order: its mirrors (or the ``*``
        mirrors), then the registry itself.  ``auth`` (the pod's pull secret) goes to the
        registry itself only; every endpoint host's ``configs`` entry gives its own."""
        key = registry if registry in self.mirrors else "*"
        urls = list(self.mirrors.get(key, ()))
        rewrite = self.rewrites.get(key, ())
        upstream = DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else f"https://{registry}"
        if not any(urlsplit(url).netloc == registry for url in urls):
            urls.append(upstream)
        out: list[Endpoint] = []
        for url in urls:
            host = urlsplit(url).netloc
            is_upstream = url == upstream or host == registry
            if any(e.url == url for e in out):
                continue
            config = self.configs.get(host) or self.configs.get(url) or HostConfig()
            credentials = config.auth
            if is_upstream and auth is not None and not auth.anonymous:
                credentials = auth
            out.append(Endpoint(url=url, host=host, upstream=is_upstream,
                                http_fallback=url.startswith("https://") and (
                                    host in self.insecure or is_loopback(host)),
                                tls=config.tls, auth=credentials, rewrite=() if is_upstream else rewrite))
        return out
