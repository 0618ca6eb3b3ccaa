"""Client configuration: kubeconfig files and the in-cluster service account.

Owns ``Config`` (what a REST client needs: API server URLs, TLS material, credentials,
QPS/burst) and the ways to get one: ``load_kubeconfig`` (a kubeconfig file's clusters,
users and contexts; current-context or a named one), ``in_cluster_config`` (the pod's
service account token, CA and KUBERNETES_SERVICE_HOST/PORT) and ``load_config`` (KUBECONFIG
or ~/.kube/config, else in-cluster, as client-go's default loading rules).  Paths in a
kubeconfig are relative to the file.  ``Config.ssl_context()`` builds the TLS context;
``Config.bearer_token()`` re-reads a token file at most once a minute (client-go's
cachingTokenSource) so rotated service-account tokens are picked up.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD = 60.0  # seconds between re-reads of a token file


class ConfigError(Exception):
    """The configuration is missing or does not make sense."""


@dataclass
class Config:
    servers: list[str]  # API server URLs; the client fails over between them in order
    ca_data: bytes | None = None  # PEM
    cert_data: bytes | None = None  # PEM client certificate
    key_data: bytes | None = None  # PEM client key
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    namespace: str = "default"
    qps: float = DEFAULT_QPS
    burst: int = DEFAULT_BURST
    user_agent: str = "pybernetes-client/v0.1.0"
    timeout: float | None = None  # per-request timeout (not for watches); None: none
    _token_cache: tuple[float, str] | None = field(default=None, repr=False, compare=False)

    @property
    def server(self) -> str:
        return self.servers[0]

    def bearer_token(self) -> str | None:
        """The token to send: a token file (re-read every minute) wins over a literal token."""
        if self.token_file:
            now = time.monotonic()
            cached = self._token_cache
            if cached is None or now - cached[0] >= TOKEN_REREAD:
                try:
                    text = Path(self.token_file).read_text().strip()
                except OSError:
                    if cached is None:
                        return self.token
                    text = cached[1]
                self._token_cache = (now, text)
                return text
            return cached[1]
        return self.token

    def auth_header(self) -> str | None:
        token = self.bearer_token()
        if token:
            return f"Bearer {token}"
        if self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    @property
    def uses_tls(self) -> bool:
        return any(s.startswith("https://") for s in self.servers)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for https servers (None when every server is plain http)."""
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self.ca_data.decode())
        if self.cert_data and self.key_data:
            _load_cert_chain(ctx, self.cert_data, self.key_data)
        elif self.cert_data or self.key_data:
            raise ConfigError("a client certificate needs both the certificate and the key")
        return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl only loads a certificate chain from files: write them to a private directory."""
    with tempfile.TemporaryDirectory(prefix="pyb-client-") as tmp:
        cert_path = Path(tmp) / "client.crt"
        key_path = Path(tmp) / "client.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cert_path), str(key_path))


def _named(items: Any, what: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError(f"kubeconfig: a {what} entry without a name")
        out[str(item["name"])] = item.get(what) or {}
    return out


def _material(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    """``key-data`` (base64) or ``key`` (a path, relative to the kubeconfig's directory)."""
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data, validate=False)
        except ValueError as exc:
            raise ConfigError(f"kubeconfig: {key}-data is not base64: {exc}") from None
    path = section.get(key)
    if path:
        full = Path(os.path.expanduser(str(path)))
        if not full.is_absolute():
            full = base / full
        try:
            return full.read_bytes()
        except OSError as exc:
            raise ConfigError(f"kubeconfig: cannot read {key} {full}: {exc}") from None
    return None


def config_from_dict(doc: dict[str, Any], *, context: str | None = None,
                     base: Path | None = None) -> Config:
    """A Config from a parsed kubeconfig; ``context`` overrides current-context."""
    base = base or Path.cwd()
    clusters = _named(doc.get("clusters"), "cluster")
    users = _named(doc.get("users"), "user")
    contexts = _named(doc.get("contexts"), "context")
    name = context or doc.get("current-context")
    if not name:
        if len(contexts) == 1:
            name = next(iter(contexts))
        else:
            raise ConfigError("kubeconfig: no current-context and no context given")
    if name not in contexts:
        raise ConfigError(f"kubeconfig: context {name!r} not found")
    ctx = contexts[name]
    cluster_name = ctx.get("cluster")
    if cluster_name not in clusters:
        raise ConfigError(f"kubeconfig: cluster {cluster_name!r} of context {name!r} not found")
    cluster = clusters[cluster_name]
    user = users.get(ctx.get("user") or "", {}) if ctx.get("user") else {}
    if ctx.get("user") and ctx["user"] not in users:
        raise ConfigError(f"kubeconfig: user {ctx['user']!r} of context {name!r} not found")
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"kubeconfig: cluster {cluster_name!r} has no server")
    # One URL per cluster in kubeconfig; a comma-separated list names several API servers.
    servers = [s.strip().rstrip("/") for s in str(server).split(",") if s.strip()]
    token_file = user.get("tokenFile")
    if token_file and not Path(token_file).is_absolute():
        token_file = str(base / token_file)
    return Config(
        servers=servers,
        ca_data=_material(cluster, "certificate-authority", base),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cert_data=_material(user, "client-certificate", base),
        key_data=_material(user, "client-key", base),
        token=user.get("token"),
        token_file=token_file,
        username=user.get("username"),
        password=user.get("password"),
        namespace=ctx.get("namespace") or "default",
    )


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> Config:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path} is not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    return config_from_dict(doc, context=context, base=path.resolve().parent)


def in_cluster_config(sa_dir: Path = SERVICE_ACCOUNT_DIR,
                      environ: dict[str, str] | None = None) -> Config:
    """The pod's own credentials: KUBERNETES_SERVICE_HOST/PORT, the service account's token
    (re-read as it rotates), CA and namespace."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set")
    token_path = sa_dir / "token"
    if not token_path.exists():
        raise ConfigError(f"not in a cluster: {token_path} does not exist")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6
    ca_path = sa_dir / "ca.crt"
    ns_path = sa_dir / "namespace"
    return Config(
        servers=[f"https://{host}:{port}"],
        ca_data=ca_path.read_bytes() if ca_path.exists() else None,
        token_file=str(token_path),
        namespace=ns_path.read_text().strip() if ns_path.exists() else "default",
    )


def load_config(*, context: str | None = None) -> Config:
    """KUBECONFIG (the first existing file of the list) or ~/.kube/config, else in-cluster."""
    candidates: list[str] = []
    if os.environ.get("KUBECONFIG"):
        candidates = [p for p in os.environ["KUBECONFIG"].split(os.pathsep) if p]
    candidates.append(os.path.expanduser("~/.kube/config"))
    for candidate in candidates:
        if Path(candidate).is_file():
            return load_kubeconfig(candidate, context=context)
    return in_cluster_config()
