"""A real registry for the image-pull tests and benchmarks, and a small fake in front of it.

- ``DockerRegistry(workdir, tls=False)``: Debian's ``docker-registry`` (distribution 2.8) on
  ``127.0.0.1:<free port>``, storage in ``workdir``; ``start()`` waits for ``/v2/``,
  ``stop()`` ends it.  With ``tls=True`` it serves HTTPS with a certificate for 127.0.0.1
  signed by ``workdir/ca.crt`` (made with the openssl command; ``other-ca.crt`` signs nothing).  ``running_registry(workdir)`` is the same as a context manager that
  always stops it.  ``push(layout, tag, name)`` copies an OCI layout (busybox_image.py) in
  with ``skopeo copy`` (``v2s2=True`` converts to Docker schema 2, ``all_platforms=True``
  pushes a whole index) and returns the pushed manifest's digest.
- ``build_layout_compressed(dir, ref, compressions, ...)``: a busybox layout whose layers are
  compressed as asked (``"gzip"``, ``"zstd"`` or ``"none"``, one per layer).
- ``rewrite_layout(dir, mutate)``: apply ``mutate(manifest, blobs_dir)`` to a one-image layout's
  manifest (e.g. to point it at a doctored config) and re-point index.json.
- ``build_index_layout(dir, ref, platforms)``: an OCI layout whose ``ref`` is an image index
  of one image per ``(os, architecture)``; each image holds ``/platform`` naming its own.
- ``RegistryProxy(upstream)``: an aiohttp server (same event loop as the test) forwarding
  ``/v2/`` reads to a registry.  It records requests (``requests``), can corrupt chosen blobs
  (``corrupt``: digests whose bytes it flips), can fail chosen paths, and can demand auth:
  ``auth="bearer"`` (a token server at ``/token`` taking basic credentials from ``users``,
  or, POSTed, an OAuth2 refresh token from ``refresh_tokens``) or ``auth="basic"``.

Nothing here needs root; everything started is stopped by its owner.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import zstandard
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

import busybox_image  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
LAYER_TYPES = {"gzip": OCI_LAYER + "+gzip", "zstd": OCI_LAYER + "+zstd", "none": OCI_LAYER}


def missing() -> str | None:
    """Why the registry tests cannot run here (None: they can)."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        return "docker-registry is not installed (Debian package docker-registry)"
    if shutil.which("skopeo") is None:
        return "skopeo is not installed (Debian package skopeo)"
    if not busybox_image.available():
        return "busybox-static is not installed"
    if shutil.which("openssl") is None:
        return "the openssl command is missing"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """ca.crt/key, other-ca.crt/key, and server.crt/key for IP 127.0.0.1 signed by ca."""
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1", "-subj", f"/CN={ca}", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=registry", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "1", "-extfile", "server.ext", cwd=directory)


class DockerRegistry:
    def __init__(self, workdir: Path | str, *, tls: bool = False) -> None:
        self.workdir = Path(workdir)
        self.port = free_port()
        self.tls = tls
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def start(self, timeout: float = 20) -> DockerRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        http: dict = {"addr": self.host}
        if self.tls:
            make_certificates(self.workdir)
            http["tls"] = {"certificate": str(self.workdir / "server.crt"), "key": str(self.workdir / "server.key")}
        config = self.workdir / "config.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")},
                        "delete": {"enabled": True}},
            "http": http,
        }))
        context = ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None
        log = open(self.workdir / "registry.log", "wb")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.workdir / 'registry.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=1, context=context) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("docker-registry did not answer /v2/")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def push(self, layout: Path | str, tag: str, name: str, *, v2s2: bool = False,
             all_platforms: bool = False, preserve_digests: bool = True) -> str:
        """Copy ``oci:LAYOUT:TAG`` to ``HOST/NAME`` (``repo:tag``); the manifest digest pushed."""
        digest_file = self.workdir / f"digest-{secrets.token_hex(4)}"
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile", str(digest_file)]
        if v2s2:
            argv += ["--format", "v2s2"]
        elif preserve_digests:
            argv.append("--preserve-digests")
        if all_platforms:
            argv.append("--all")
        argv += [f"oci:{layout}:{tag}", f"docker://{self.host}/{name}"]
        subprocess.run(argv, check=True, capture_output=True, timeout=120,
                       env={**os.environ, "HOME": str(self.workdir)})  # no shared skopeo caches
        try:
            return digest_file.read_text().strip()
        finally:
            digest_file.unlink(missing_ok=True)


@contextlib.contextmanager
def running_registry(workdir: Path | str, *, tls: bool = False) -> Iterator[DockerRegistry]:
    registry = DockerRegistry(workdir, tls=tls)
    try:
        yield registry.start()
    finally:
        registry.stop()


# -- layouts -------------------------------------------------------------------------------------


def rewrite_layout(target: Path, mutate_manifest) -> dict:
    """Apply ``mutate_manifest(manifest, blobs_dir)`` to the layout's (only) manifest and point
    index.json at the result; returns the layout's new facts like build_layout."""
    blobs = target / "blobs" / "sha256"
    index = json.loads((target / "index.json").read_text())
    entry = index["manifests"][0]
    manifest = json.loads((blobs / entry["digest"][7:]).read_bytes())
    mutate_manifest(manifest, blobs)
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = _digest(body)
    (blobs / digest[7:]).write_bytes(body)
    entry.update(digest=digest, size=len(body))
    (target / "index.json").write_text(json.dumps(index))
    return {"manifest": digest, "config": manifest["config"]["digest"],
            "layers": [layer["digest"] for layer in manifest["layers"]]}


def build_layout_compressed(target: Path | str, ref: str, compressions: list[str], **kw) -> dict:
    """build_layout with layer i compressed as ``compressions[i]`` (gzip | zstd | none)."""
    target = Path(target)
    info = busybox_image.build_layout(target, ref, compress=False, **kw)
    if len(compressions) != len(info["layers"]):
        raise ValueError(f"{len(info['layers'])} layers, {len(compressions)} compressions")

    def mutate(manifest: dict, blobs: Path) -> None:
        for layer, how in zip(manifest["layers"], compressions, strict=True):
            raw = (blobs / layer["digest"][7:]).read_bytes()
            data = (gzip.compress(raw, mtime=0) if how == "gzip" else
                    zstandard.ZstdCompressor().compress(raw) if how == "zstd" else raw)
            digest = _digest(data)
            (blobs / digest[7:]).write_bytes(data)
            layer.update(mediaType=LAYER_TYPES[how], digest=digest, size=len(data))

    return {**info, **rewrite_layout(target, mutate)}


def build_index_layout(target: Path | str, ref: str, platforms: list[tuple[str, str]]) -> dict:
    """A layout whose ``ref`` is an OCI image index of one image per (os, architecture);
    returns ``{"index": digest, "images": {"os/arch": {"manifest", "config", "layers"}}}``."""
    target = Path(target)
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    tag = ref.rsplit(":", 1)[1]
    entries, images = [], {}
    for os_name, arch in platforms:
        part = target.parent / f".{target.name}-{os_name}-{arch}"
        info = busybox_image.build_layout(part, ref, extra_layers=[{"platform": f"{os_name}/{arch}\n"}])

        def mutate(manifest: dict, part_blobs: Path, os_name: str = os_name, arch: str = arch) -> None:
            config = json.loads((part_blobs / manifest["config"]["digest"][7:]).read_bytes())
            config.update(os=os_name, architecture=arch)
            body = json.dumps(config, separators=(",", ":")).encode()
            (part_blobs / _digest(body)[7:]).write_bytes(body)
            manifest["config"].update(digest=_digest(body), size=len(body))

        info = {**info, **rewrite_layout(part, mutate)}
        for blob in (part / "blobs" / "sha256").iterdir():
            shutil.copyfile(blob, blobs / blob.name)
        shutil.rmtree(part)
        body = (blobs / info["manifest"][7:]).read_bytes()
        entries.append({"mediaType": busybox_image.OCI_MANIFEST, "digest": info["manifest"], "size": len(body),
                        "platform": {"os": os_name, "architecture": arch}})
        images[f"{os_name}/{arch}"] = info
    index_body = json.dumps({"schemaVersion": 2, "mediaType": busybox_image.OCI_INDEX,
                             "manifests": entries}, separators=(",", ":")).encode()
    index_digest = _digest(index_body)
    (blobs / index_digest[7:]).write_bytes(index_body)
    (target / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": busybox_image.OCI_INDEX,
        "manifests": [{"mediaType": busybox_image.OCI_INDEX, "digest": index_digest, "size": len(index_body),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    (target / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return {"index": index_digest, "images": images}


# -- the fake in front -------------------------------------------------------------------------------

UNAUTHORIZED = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]}


class RegistryProxy:
    """See the module docstring.  ``async with RegistryProxy(url, ...) as proxy:``."""

    def __init__(self, upstream: str, *, auth: str | None = None, users: dict[str, str] | None = None,
                 corrupt: set[str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.auth = auth
        self.users = dict(users or {})
        self.corrupt = set(corrupt or ())
        self.fail: dict[str, int] = {}  # path substring -> HTTP status to answer instead
        self.requests: list[tuple[str, str]] = []  # (method, path) of /v2/ requests
        self.token_requests: list[dict] = []  # {"user", "scope", "service"} per token request
        self.tokens: dict[str, str] = {}  # token -> user ("" for anonymous)
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def blob_gets(self, digest: str) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and path.endswith("/blobs/" + digest))

    async def __aenter__(self) -> RegistryProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_post("/token", self._oauth_token)
        app.router.add_route("*", "/v2/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _basic_user(self, request: web.Request) -> str | None:
        """The user whose basic credentials the request carries (None: none or wrong)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password and user else None

    async def _token(self, request: web.Request) -> web.Response:
        has_creds = request.headers.get("Authorization", "").startswith("Basic ")
        user = self._basic_user(request)
        self.token_requests.append({"user": user, "scope": request.query.get("scope"),
                                    "service": request.query.get("service")})
        if has_creds and user is None:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED",
                                                  "message": "incorrect username or password"}]}, status=401)
        token = secrets.token_hex(16)
        self.tokens[token] = user or ""
        return web.json_response({"token": token, "expires_in": 300})

    async def _oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        user = self.refresh_tokens.get(str(form.get("refresh_token")))
        self.token_requests.append({"user": user, "scope": form.get("scope"), "service": form.get("service"),
                                    "grant_type": form.get("grant_type")})
        if form.get("grant_type") != "refresh_token" or user is None:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]},
                                     status=401)
        token = secrets.token_hex(16)
        self.tokens[token] = user
        return web.json_response({"access_token": token, "expires_in": 300})

    def _challenge(self, repository: str) -> web.Response:
        if self.auth == "bearer":
            header = (f'Bearer realm="{self.url}/token",service="pybernetes-test",'
                      f'scope="repository:{repository}:pull"')
        else:
            header = 'Basic realm="pybernetes-test"'
        return web.json_response(UNAUTHORIZED, status=401, headers={"WWW-Authenticate": header})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "bearer":
            return header.startswith("Bearer ") and bool(self.tokens.get(header[7:]))
        if self.auth == "basic":
            return self._basic_user(request) is not None
        return True

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        repository = path[len("/v2/"):].rsplit("/", 2)[0]
        if path != "/v2/" and not self._authorized(request):
            return self._challenge(repository)
        for fragment, status in self.fail.items():
            if fragment in path:
                return web.json_response({"errors": [{"code": "UNKNOWN", "message": "injected failure"}]},
                                         status=status)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept",)}
        async with self._session.request(request.method, self.upstream + path, headers=headers,
                                         params=request.query) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name in ("Content-Type", "Docker-Content-Digest", "Content-Length", "Docker-Distribution-Api-Version"):
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            await response.prepare(request)
            flip = any(path.endswith("/blobs/" + digest) for digest in self.corrupt)
            async for chunk in upstream.content.iter_any():
                if flip and chunk:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    flip = False
                await response.write(chunk)
            await response.write_eof()
            return response
