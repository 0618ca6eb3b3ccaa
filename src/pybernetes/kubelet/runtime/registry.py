"""Image pulls from OCI distribution registries into the node's image store (images.py).

``await pull(store, ref, auth=..., config=...)`` resolves ``ref`` (a tag or ``@sha256:``
digest, normalized as docker does) at the registry's endpoints (registry_config.py: its
mirrors in order, then the registry itself) and stores the image:

- **Manifests**: Docker v2 schema 2 and OCI manifests, Docker manifest lists and OCI image
  indexes (resolved for linux/amd64).  ``Accept`` names all four types (distribution 2.8
  hides OCI manifests from clients that do not).  Schema 1 is refused.
- **Verification**: every manifest, config and layer is checked against its sha256 digest
  (and size) while it streams to a temporary file, and every layer's uncompressed content
  (gzip, zstd or plain tar) against the config's diff id.  A corrupt blob is refused with an
  error naming its digest and never stored; the next pull fetches it again.
- **Sharing**: blobs already in the store are not fetched again.  Layers download
  concurrently (``LAYER_CONCURRENCY``) and never whole in memory.  In one process, parallel
  pulls of one reference share one pull, and a blob two pulls both need is fetched once.
- **Auth** (registry_auth.py): anonymous, bearer tokens (``WWW-Authenticate: Bearer
  realm,service,scope`` -> the token realm, with basic credentials or an identity token when
  given) and basic auth.  ``auth`` is a dockerconfigjson entry, used for the registry itself;
  mirrors use their registries.yaml ``configs`` entry.
- **Transport**: HTTPS; registries listed insecure and loopback ones try HTTPS unverified
  first, then plain HTTP.  Redirected blob downloads keep no credentials (aiohttp drops
  ``Authorization`` across origins).
- **Failures** raise ``ImageError(message, reason="ErrImagePull")`` with the registry's own
  words (``manifest unknown``, ``unauthorized: authentication required``, ``connection
  refused``), the last endpoint's when all fail; blobs the failed pull fetched are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from pybernetes.kubelet.runtime.image_format import (
    DIGEST,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageError,
    layer_diff_id,
    normalize_ref,
    parse_manifest,
    select_platform,
    split_reference,
)
from pybernetes.kubelet.runtime.images import ImageStore
from pybernetes.kubelet.runtime.protocol import Image
from pybernetes.kubelet.runtime.registry_auth import (
    Credentials,
    bearer_scope,
    credentials_for,
    parse_auth,
    parse_challenge,
    registry_host,
)
from pybernetes.kubelet.runtime.registry_config import Endpoint, RegistryConfig, TLSConfig

__all__ = ["LAYER_CONCURRENCY", "RegistryConfig", "credentials_for", "load_config", "parse_manifest", "pull",
           "registry_error_message", "registry_host", "split_reference"]

log = logging.getLogger("pybernetes.kubelet.registry")

ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20
MAX_ERROR_BODY = 64 << 10
LAYER_CONCURRENCY = 3
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)

_NET_ERRORS = (aiohttp.ClientError, OSError)  # OSError covers TimeoutError
_NO_CONFIG = RegistryConfig()
_PLAIN_HTTP: set[str] = set()  # endpoint hosts found to speak plain HTTP only
_PULLS: dict[tuple, asyncio.Task[Image]] = {}  # one pull per (store, ref, credentials, config)
_BLOBS: dict[tuple[str, str], asyncio.Task[str]] = {}  # one download per (store, digest)
_WAITERS: Counter[tuple[str, str]] = Counter()  # pulls waiting for each of those downloads


# -- pure helpers ----------------------------------------------------------------------------------


def registry_error_message(status: int, reason: str, body: bytes) -> str:
    """The registry's own words for a failed request: its ``errors`` list (``code: message``,
    just the message when it only repeats the code), else the HTTP status."""
    try:
        errors = json.loads(body)["errors"]
        parts = []
        for error in errors:
            code = str(error.get("code") or "").lower().replace("_", " ")
            message = str(error.get("message") or "").strip()
            parts.append(message if not code or code == message.lower() else
                         f"{code}: {message}" if message else code)
        if parts:
            return "; ".join(parts)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    text = body.decode(errors="replace").strip()
    message = f"{status} {reason}".strip()
    if text and len(text) <= 200 and "<" not in text:
        message += f": {text}"
    return message


def _connect_message(host: str, exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError) or \
            getattr(os_error, "errno", None) == errno.ECONNREFUSED:
        return f"cannot connect to {host}: connection refused"
    if isinstance(exc, TimeoutError):
        return f"cannot reach {host}: timed out"
    detail = getattr(os_error, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot reach {host}: {detail}"


def _ssl_for(tls: TLSConfig, skip_verify: bool) -> ssl.SSLContext | bool:
    """What aiohttp verifies HTTPS with: ``skip_verify`` (an insecure or loopback registry)
    unless a CA is configured for the host, or ``insecure_skip_verify``."""
    if tls.insecure_skip_verify or (skip_verify and not tls.ca_file):
        return False
    if not (tls.ca_file or tls.cert_file):
        return True
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ImageError(f"registry TLS configuration: {exc}") from exc
    return context


# -- one endpoint ----------------------------------------------------------------------------------


class _Client:
    """Requests to one endpoint for one repository, authenticating as challenged."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint, repository: str) -> None:
        self.session = session
        self.endpoint = endpoint
        self.repository = endpoint.repository(repository)
        self.ssl = _ssl_for(endpoint.tls, endpoint.http_fallback)
        self.plain = endpoint.http_fallback and endpoint.host in _PLAIN_HTTP
        creds = endpoint.auth
        self.authorization = f"Bearer {creds.registry_token}" if creds.registry_token else None
        self._auth_lock = asyncio.Lock()

    @property
    def base(self) -> str:
        return "http://" + self.endpoint.url.removeprefix("https://") if self.plain else self.endpoint.url

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.repository}/{path}"

    @contextlib.asynccontextmanager
    async def get(self, path: str, accept: str | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        authenticated = False
        while True:
            headers = {"Accept": accept} if accept else {}
            sent = self.authorization
            if sent:
                headers["Authorization"] = sent
            try:
                response = await self.session.get(self.url(path), headers=headers, ssl=self.ssl)
            except aiohttp.ClientConnectorCertificateError as exc:
                why = getattr(exc.certificate_error, "verify_message", "") or exc.certificate_error
                raise ImageError(f"cannot reach {self.endpoint.host}: certificate verify failed: {why}") from exc
            except _NET_ERRORS as exc:
                if self.endpoint.http_fallback and not self.plain:
                    log.debug("%s: HTTPS failed (%s), trying plain HTTP", self.endpoint.host, exc)
                    self.plain = True
                    continue
                raise ImageError(_connect_message(self.endpoint.host, exc)) from exc
            if self.plain:
                _PLAIN_HTTP.add(self.endpoint.host)
            try:
                if response.status == 401 and not authenticated:
                    body = await _read(response, MAX_ERROR_BODY, path)
                    await self._authenticate(response.headers.get("WWW-Authenticate", ""), sent,
                                             registry_error_message(401, response.reason or "", body))
                    authenticated = True
                    continue
                if response.status >= 400:
                    body = await _read(response, MAX_ERROR_BODY, path)
                    raise ImageError(registry_error_message(response.status, response.reason or "", body))
                yield response
                return
            finally:
                response.release()

    async def _authenticate(self, header: str, sent: str | None, message: str) -> None:
        async with self._auth_lock:
            if self.authorization != sent:  # another request authenticated meanwhile
                return
            challenges = parse_challenge(header)
            creds = self.endpoint.auth
            for scheme, params in challenges:
                if scheme == "bearer" and params.get("realm"):
                    self.authorization = "Bearer " + await self._token(params, creds)
                    return
            for scheme, _ in challenges:
                if scheme == "basic" and creds.username and not (sent or "").startswith("Basic "):
                    self.authorization = creds.basic()
                    return
            raise ImageError(message)

    async def _token(self, params: dict[str, str], creds: Credentials) -> str:
        realm = params["realm"]
        scope = params.get("scope") or bearer_scope(self.repository)
        query = {"scope": scope, **({"service": params["service"]} if params.get("service") else {})}
        try:
            if creds.identity_token:
                request = self.session.post(realm, data={
                    "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "pybernetes", **query})
            else:
                headers = {"Authorization": creds.basic()} if creds.username else {}
                if creds.username:
                    query["account"] = creds.username
                request = self.session.get(realm, params=query, headers=headers)
            async with request as response:
                body = await _read(response, MAX_JSON_BLOB, f"token server {realm}")
                if response.status >= 400:
                    message = registry_error_message(response.status, response.reason or "", body)
                    if response.status in (401, 403) and not message.startswith("unauthorized"):
                        message = f"unauthorized: {message}"
                    raise ImageError(f"token server {realm}: {message}")
        except _NET_ERRORS as exc:
            raise ImageError(f"token server {realm}: {_connect_message(realm, exc)}") from exc
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ImageError(f"token server {realm} answered without a token")
        return token

    async def manifest(self, reference: str, where: str) -> tuple[str, str, bytes, dict]:
        """(digest, media type, body, document) of a manifest, its digest checked."""
        async with self.get(f"manifests/{reference}", accept=ACCEPT) as response:
            body = await _read(response, MAX_MANIFEST + 1, f"manifest {reference}")
            content_type = response.headers.get("Content-Type", "")
            announced = response.headers.get("Docker-Content-Digest", "")
        if len(body) > MAX_MANIFEST:
            raise ImageError(f"{where}: manifest larger than {MAX_MANIFEST} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if DIGEST.fullmatch(reference) else announced if DIGEST.fullmatch(announced) else ""
        if expected and digest != expected:
            raise ImageError(f"manifest {expected} is corrupt: its content has digest {digest}")
        media_type, doc = parse_manifest(body, content_type, where)
        return digest, media_type, body, doc

    async def small_blob(self, digest: str, size: int | None) -> bytes:
        async with self.get(f"blobs/{digest}") as response:
            data = await _read(response, MAX_JSON_BLOB + 1, f"blob {digest}")
        if len(data) > MAX_JSON_BLOB:
            raise ImageError(f"blob {digest} is too large for an image config")
        _check(digest, hashlib.sha256(data), len(data), size)
        return data

    async def download(self, store: ImageStore, digest: str, size: int | None, diff_id: str,
                       limit: asyncio.Semaphore) -> str:
        """Fetch a layer into the store, checked; its diff id (stored only if it is ``diff_id``)."""
        async with limit:
            fd, tmp = store.new_blob_file()
            try:
                hasher, received = hashlib.sha256(), 0
                with os.fdopen(fd, "wb") as out:
                    async with self.get(f"blobs/{digest}") as response:
                        try:
                            async for chunk in response.content.iter_any():
                                received += len(chunk)
                                if size is not None and received > size:
                                    raise ImageError(f"blob {digest} is corrupt: longer than the "
                                                     f"{size} bytes its descriptor says")
                                hasher.update(chunk)
                                out.write(chunk)
                        except _NET_ERRORS as exc:
                            raise ImageError(f"blob {digest}: download failed: {exc or type(exc).__name__}") from exc
                _check(digest, hasher, received, size)
                actual = await _diff_id(tmp, digest)
                if actual == diff_id:
                    store.add_blob(tmp, digest)
                return actual
            finally:
                tmp.unlink(missing_ok=True)


async def _read(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The body, or its first ``limit`` bytes and a little more when it is longer."""
    chunks, total = [], 0
    try:
        async for chunk in response.content.iter_any():
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                break
    except _NET_ERRORS as exc:
        raise ImageError(f"{what}: download failed: {exc or type(exc).__name__}") from exc
    return b"".join(chunks)


async def _diff_id(path: Path, digest: str) -> str:
    try:
        return await asyncio.to_thread(layer_diff_id, path)
    except ImageError as exc:
        raise ImageError(f"layer {digest} {exc.message}") from exc


def _check(digest: str, hasher: Any, received: int, size: int | None) -> None:
    actual = "sha256:" + hasher.hexdigest()
    if actual != digest:
        raise ImageError(f"blob {digest} is corrupt: its content has digest {actual}")
    if size is not None and received != size:
        raise ImageError(f"blob {digest} is corrupt: {received} bytes, its descriptor says {size}")


# -- a pull ----------------------------------------------------------------------------------------


def _shared(registry: dict, key: tuple, factory: Any) -> tuple[asyncio.Task, bool]:
    """(the task running under ``key`` in this event loop, else a new one from ``factory()``;
    whether it is new)."""
    loop = asyncio.get_running_loop()
    task = registry.get(key)
    if task is not None and task.get_loop() is loop and not task.done():
        return task, False
    task = loop.create_task(factory())

    def forget(done: asyncio.Task, key: tuple = key) -> None:
        if registry.get(key) is done:
            del registry[key]
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning when nobody waits

    task.add_done_callback(forget)
    registry[key] = task
    return task, True


async def pull(store: ImageStore, ref: str, *, auth: dict | None = None,
               config: RegistryConfig | None = None) -> Image:
    """Pull ``ref`` into ``store`` (see the module docstring); the stored image."""
    name = normalize_ref(ref)
    creds = parse_auth(auth)
    key = (str(store.root.resolve()), name, creds, id(config))
    config = config or _NO_CONFIG
    task, _ = _shared(_PULLS, key, lambda: _pull(store, name, creds, config))
    return await asyncio.shield(task)


class _Pull:
    def __init__(self, store: ImageStore, name: str) -> None:
        self.store = store
        self.name = name
        self.root = str(store.root.resolve())
        self.fetched: set[str] = set()
        self.pins = contextlib.ExitStack()
        self.limit = asyncio.Semaphore(LAYER_CONCURRENCY)
        self.started: list[tuple[tuple[str, str], asyncio.Task]] = []  # downloads this pull began

    async def run(self, client: _Client, reference: str) -> Image:
        store, name = self.store, self.name
        top, media_type, body, doc = await client.manifest(reference, name)
        digest = top
        if media_type in INDEX_TYPES:
            child = select_platform(doc, name)
            digest, media_type, body, doc = await client.manifest(child["digest"], name)
            if media_type not in MANIFEST_TYPES:
                raise ImageError(f"{name}: the linux/amd64 entry {digest} is not an image manifest")
        layers = doc.get("layers") or []
        config_desc = doc["config"]
        self.pins.enter_context(store.pinned([digest, config_desc["digest"], *(d["digest"] for d in layers)]))
        if store.has_blob(config_desc["digest"]):
            config_bytes = store.blob_path(config_desc["digest"]).read_bytes()
        else:
            config_bytes = await client.small_blob(config_desc["digest"], config_desc.get("size"))
        try:
            diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ImageError(f"image config {config_desc['digest']} has no rootfs.diff_ids") from exc
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise ImageError(f"image config {config_desc['digest']} lists {len(diff_ids or [])} diff ids "
                             f"for {len(layers)} layers")
        known = await asyncio.to_thread(store.layer_diff_ids)
        try:
            async with asyncio.TaskGroup() as group:
                for layer, diff_id in zip(layers, diff_ids, strict=True):
                    group.create_task(self.layer(client, layer, str(diff_id), known))
        except BaseExceptionGroup as group:
            first = next((e for e in _leaves(group) if isinstance(e, ImageError)), None)
            if first is None:
                raise
            raise first from None
        self.fetched.add(store.put_blob(config_bytes))
        self.fetched.add(store.put_blob(body))
        host, repository, _ = split_reference(name)
        by_digest = f"{host}/{repository}@{top}"  # the repo digest: what was pulled, index or not
        names = [by_digest] if DIGEST.fullmatch(reference) else [name, by_digest]
        return await asyncio.to_thread(store.record_pull, names, digest)

    async def layer(self, client: _Client, descriptor: dict, diff_id: str, known: dict[str, str]) -> None:
        store, digest = self.store, descriptor["digest"]
        if store.has_blob(digest):
            actual = known.get(digest) or await _diff_id(store.blob_path(digest), digest)
        else:
            key = (self.root, digest)
            task, new = _shared(_BLOBS, key, lambda: client.download(
                store, digest, descriptor.get("size"), diff_id, self.limit))
            if new:
                self.started.append((key, task))
            _WAITERS[key] += 1
            try:
                actual = await asyncio.shield(task)
            finally:
                _WAITERS[key] -= 1
                if _WAITERS[key] <= 0:
                    del _WAITERS[key]
            self.fetched.add(digest)
        if actual != diff_id:
            raise ImageError(f"layer {digest}: uncompressed digest {actual} does not match diff id {diff_id}")

    async def settle(self) -> None:
        """Before the session closes: stop the downloads this pull began that no other pull
        waits for, and let the others finish."""
        tasks = [task for _, task in self.started]
        for key, task in self.started:
            if not task.done() and not _WAITERS.get(key):
                task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _pull(store: ImageStore, name: str, creds: Credentials, config: RegistryConfig) -> Image:
    host, repository, reference = split_reference(name)
    if DIGEST.fullmatch(reference):
        image = await asyncio.to_thread(store.get, name)
        if image is not None:  # content-addressed: nothing to ask the registry
            await asyncio.to_thread(store.touch, name)
            return image
    job = _Pull(store, name)
    failures: list[tuple[Endpoint, str]] = []
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, trust_env=True, auto_decompress=False) as session:
            try:
                for endpoint in config.endpoints(host, creds):
                    try:
                        client = _Client(session, endpoint, repository)
                        image = await job.run(client, reference)
                    except ImageError as exc:
                        log.info("pull %s from %s: %s", name, endpoint.url, exc.message)
                        failures.append((endpoint, exc.message))
                        continue
                    log.info("pulled %s from %s (%s)", name, client.base, image.id)
                    return image
            finally:
                await job.settle()
    finally:
        job.pins.close()
        if job.fetched:
            await asyncio.to_thread(store.discard, job.fetched)  # keeps what an image uses
    raise ImageError(f"{name}: {_summary(failures)}")


def _summary(failures: list[tuple[Endpoint, str]]) -> str:
    """The last endpoint's error (the registry's own), the mirrors' after it in brackets."""
    if not failures:
        return "no registry endpoint"
    *mirrors, (_, last) = failures
    others = "; ".join(f"mirror {e.url}: {m}" for e, m in mirrors if m != last)
    return f"{last} ({others})" if others else last


def load_config(data_dir: Path | str) -> RegistryConfig:
    """``<data dir>/registries.yaml`` (an empty configuration when there is none)."""
    return RegistryConfig.load(Path(data_dir) / "registries.yaml")
