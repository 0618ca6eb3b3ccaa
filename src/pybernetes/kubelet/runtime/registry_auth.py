"""Registry credentials: what a pull authenticates with, and the pure rules for choosing them.

- :func:`parse_auth` turns a dockerconfigjson entry (``{"username", "password"}``,
  ``{"auth": base64("user:pass")}``, ``{"identitytoken"}`` or ``{"registrytoken"}``, as kubelet
  receives them from imagePullSecrets) into :class:`Credentials`.
- :func:`credentials_for` picks the entry for an image from a list of decoded
  ``.dockerconfigjson`` (``{"auths": {...}}``) or legacy ``.dockercfg`` documents, with the
  kubelet credential keyring's matching rules: a key is a URL (scheme optional) whose host may
  use ``*`` globs per DNS label, whose port must equal the image's, and whose path must be a
  prefix of the image's repository path; the most specific key wins; for Docker Hub images
  the keys ``index.docker.io``, ``https://index.docker.io/v1/`` and ``registry-1.docker.io``
  also match.
- :func:`parse_challenge` reads a ``WWW-Authenticate`` header (RFC 7235: several challenges,
  quoted or bare parameter values) into ``[(scheme, {param: value})]``.

Pure functions; the HTTP side (fetching a bearer token) lives in registry.py.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pybernetes.kubelet.runtime.image_format import ImageError, normalize_ref

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "docker.io")

_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s"]*)')


@dataclass(frozen=True, slots=True)
class Credentials:
    """What to authenticate with; all empty means anonymous."""

    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token, exchanged at the token realm
    registry_token: str = ""  # a bearer token sent as is

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic(self) -> str:
        """The ``Authorization`` header value for basic auth."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def parse_auth(auth: dict | None) -> Credentials:
    """Credentials from a dockerconfigjson entry (or k3s registries.yaml ``auth``); ``None`` or
    ``{}`` is anonymous.  A bad ``auth`` field is an ImageError."""
    if not auth:
        return Credentials()
    if not isinstance(auth, dict):
        raise ImageError(f"registry credentials must be an object, not {type(auth).__name__}")
    username = str(auth.get("username") or "")
    password = str(auth.get("password") or "")
    encoded = auth.get("auth")
    if encoded and not (username or password):
        try:
            decoded = base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ImageError("registry credentials: \"auth\" is not base64 of user:password") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ImageError("registry credentials: \"auth\" does not decode to user:password")
    identity = str(auth.get("identitytoken") or auth.get("identity_token") or auth.get("identityToken") or "")
    registry = str(auth.get("registrytoken") or auth.get("registry_token") or auth.get("registryToken") or "")
    return Credentials(username, password, identity, registry)


def registry_host(ref: str) -> str:
    """The registry part of a (normalized) reference: ``docker.io``, ``127.0.0.1:5000`` ..."""
    return normalize_ref(ref).split("/", 1)[0]


def _split_host(host: str) -> tuple[str, str]:
    """(host name, port) of ``host[:port]`` (IPv6 literals in brackets)."""
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1].lower(), host[end + 2:] if host[end + 1: end + 2] == ":" else ""
    name, _, port = host.partition(":")
    return name.lower(), port


def _parse_key(key: str) -> tuple[str, str, str] | None:
    """A credential key as (host, port, path); None when it is not a usable key."""
    text = key.strip()
    if not text:
        return None
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if not parts.netloc:
        return None
    host, port = _split_host(parts.netloc.rpartition("@")[2])
    return host, port, parts.path.strip("/")


def _host_matches(pattern: str, host: str) -> bool:
    """kubelet's glob rule: as many DNS labels on both sides, each label fnmatch'ed."""
    want, have = pattern.split("."), host.split(".")
    return len(want) == len(have) and all(fnmatch.fnmatchcase(h, w) for w, h in zip(want, have, strict=True))


def key_matches(key: str, ref: str) -> int:
    """How specifically the credential key ``key`` matches the image ``ref`` (0: no match; a
    larger number: a more specific key)."""
    parsed = _parse_key(key)
    if parsed is None:
        return 0
    host, port, path = parsed
    name = normalize_ref(ref).partition("@")[0]
    ref_host, _, repo = name.partition("/")
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    image_host, image_port = _split_host(ref_host)
    if image_host == DOCKER_HUB and not image_port and host in DOCKER_HUB_ALIASES and not port:
        if host == "index.docker.io" and path == "v1":  # https://index.docker.io/v1/, docker's default key
            path = ""
        host = DOCKER_HUB
    if port != image_port or not _host_matches(host, image_host):
        return 0
    if path and not (repo == path or repo.startswith(path + "/")):
        return 0
    # more specific: a longer path, then fewer wildcards, then a longer key
    return 1 + len(path) * 1000 + (100 - host.count("*")) * 10 + min(len(key), 9)


def credentials_for(ref: str, dockerconfigjsons: list[dict]) -> dict | None:
    """The dockerconfigjson entry (a copy) for ``ref``'s registry from decoded
    ``.dockerconfigjson`` documents (``{"auths": {key: entry}}``) or legacy ``.dockercfg`` ones
    (``{key: entry}``), in kubelet's keyring order: the most specific matching key; between
    equally specific keys, the earlier document.  None when no key matches."""
    best: tuple[int, int] | None = None
    found: dict | None = None
    for position, document in enumerate(dockerconfigjsons):
        if not isinstance(document, dict):
            continue
        auths = document.get("auths") if isinstance(document.get("auths"), dict) else document
        for key, entry in auths.items():
            if not isinstance(entry, dict) or not isinstance(key, str):
                continue
            score = key_matches(key, ref)
            if score and (best is None or (score, -position) > best):
                best, found = (score, -position), entry
    return dict(found) if found is not None else None


def _split_commas(text: str) -> list[str]:
    """``text`` split at the commas outside quoted strings."""
    items, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _param(item: str) -> tuple[str, str] | None:
    match = _PARAM.fullmatch(item)
    if not match:
        return None
    value = match.group(2)
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return match.group(1).lower(), value


def parse_challenge(header: str) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` challenges as ``[(scheme lower-cased, {param lower-cased: value})]``
    (RFC 7235: several challenges in one header, quoted or bare values); a token68 value is
    kept under the key ``""``."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for item in _split_commas(header or ""):
        param = _param(item)
        if param is not None and challenges:  # another parameter of the current challenge
            challenges[-1][1][param[0]] = param[1]
            continue
        scheme, _, rest = item.partition(" ")
        params: dict[str, str] = {}
        rest = rest.strip()
        if rest:
            param = _param(rest)
            if _TOKEN68.fullmatch(rest):
                params[""] = rest
            elif param is not None:
                params[param[0]] = param[1]
        challenges.append((scheme.lower(), params))
    return challenges


def bearer_scope(repository: str) -> str:
    """The token scope a pull of ``repository`` (``library/busybox``) asks for."""
    return f"repository:{repository}:pull"
