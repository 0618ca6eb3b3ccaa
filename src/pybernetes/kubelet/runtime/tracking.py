"""The bookkeeping runtime backends without a runtime daemon of their own share (``simulated``
and ``process``): their sandboxes and containers by id, the contract's lookups and listings,
the checks before a container is created, and images known by reference — references listed
in ``images`` can be "pulled" (recorded under a made-up id), others fail with ErrImagePull, as
a registry's 404 would.  (Real images come from the image store, images.py.)

A backend keeps records with a ``status`` (PodSandboxStatus / ContainerStatus) — sandboxes
also a ``containers`` set of ids — and implements running sandboxes and the containers'
lifecycle; stopping and removing a sandbox (its containers first) are done here, with
``_sandbox_removed`` for what the backend must release.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pybernetes.kubelet.runtime.image_format import repo_digest_for
from pybernetes.kubelet.runtime.protocol import (
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    Image,
    NotFound,
    PodSandboxStats,
    PodSandboxStatus,
    RuntimeError_,
    SandboxState,
)


def now_ns() -> int:
    return time.time_ns()


def image_id(ref: str) -> str:
    """A stable made-up image id for a reference."""
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


class TrackedRuntime:
    """See the module docstring; ``image_size`` is the size recorded for pulled images."""

    image_size = 0

    def __init__(self, images: set[str] | None = None) -> None:
        self._known = images
        self._images: dict[str, Image] = {}  # id -> image
        self._sandboxes: dict[str, Any] = {}  # id -> record with .status, .containers
        self._containers: dict[str, Any] = {}  # id -> record with .status
        self._by_uid: dict[str, list[str]] = {}  # pod uid -> its sandbox ids
        self._ids = itertools.count(1)

    def _new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{kind}-{id(self)}-{next(self._ids)}-{time.time_ns()}".encode()).hexdigest()

    # -- sandboxes --------------------------------------------------------------------------------

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await asyncio.gather(*(self.stop_container(c, 0) for c in list(sandbox.containers)))  # type: ignore[attr-defined]
        sandbox.status.state = SandboxState.NOTREADY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for container_id in list(sandbox.containers):
            await self.remove_container(container_id)  # type: ignore[attr-defined]
        del self._sandboxes[sandbox_id]
        siblings = self._by_uid.get(sandbox.status.config.uid, [])
        if sandbox_id in siblings:
            siblings.remove(sandbox_id)
        if not siblings:
            self._by_uid.pop(sandbox.status.config.uid, None)
        self._sandbox_removed(sandbox)

    def _add_sandbox(self, sandbox: Any) -> None:
        self._sandboxes[sandbox.status.id] = sandbox
        self._by_uid.setdefault(sandbox.status.config.uid, []).append(sandbox.status.id)

    def _sandbox_removed(self, sandbox: Any) -> None:
        """What the backend releases when a sandbox is gone (nothing by default)."""

    # -- lookups -----------------------------------------------------------------------------------

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound("pod sandbox", sandbox_id)
        return replace(sandbox.status)

    async def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        if pod_uid is None:
            return [replace(s.status) for s in self._sandboxes.values()]
        return [replace(self._sandboxes[i].status) for i in self._by_uid.get(pod_uid, ())]

    def _get(self, container_id: str) -> Any:
        container = self._containers.get(container_id)
        if container is None:
            raise NotFound("container", container_id)
        return container

    async def container_status(self, container_id: str) -> ContainerStatus:
        return replace(self._get(container_id).status)

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        if sandbox_id is None:
            return [replace(c.status) for c in self._containers.values()]
        sandbox = self._sandboxes.get(sandbox_id)
        return [replace(self._containers[i].status) for i in sandbox.containers] if sandbox is not None else []

    async def reopen_container_log(self, container_id: str) -> None:
        """Nothing to reopen unless the backend writes logs (``process`` overrides this)."""
        self._get(container_id)

    async def container_stats(self, container_id: str) -> ContainerStats:
        """No cgroup here: zero usage unless the backend can measure (``process`` overrides)."""
        self._get(container_id)
        return ContainerStats(container_id, now_ns())

    async def pod_sandbox_stats(self, sandbox_id: str) -> PodSandboxStats:
        """These backends have no network namespace of their own: no per-pod traffic to count."""
        if sandbox_id not in self._sandboxes:
            raise NotFound("pod sandbox", sandbox_id)
        return PodSandboxStats(sandbox_id, now_ns())

    async def _creatable(self, sandbox_id: str, config: ContainerConfig) -> tuple[Any, Image]:
        """The sandbox a container may be created in, and its image (else the contract's error)."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise NotFound("pod sandbox", sandbox_id)
        if sandbox.status.state is not SandboxState.READY:
            raise RuntimeError_("CreateContainerError", f"pod sandbox {sandbox_id!r} is not ready")
        image = await self.image_status(config.image)
        if image is None:
            raise RuntimeError_("CreateContainerError", f"image {config.image!r} is not present")
        return sandbox, image

    def _record_container(self, sandbox: Any, config: ContainerConfig, image: Image, log_path: str,
                          record: Callable[[ContainerStatus], Any]) -> str:
        """Keep a new container (``record`` wraps its status in the backend's record)."""
        container_id = self._new_id("container")
        self._containers[container_id] = record(ContainerStatus(
            container_id, sandbox.status.id, config, ContainerState.CREATED, now_ns(), image_ref=image.id,
            image_digest=repo_digest_for(config.image, image.repo_digests), log_path=log_path))
        sandbox.containers.add(container_id)
        return container_id

    def _startable(self, container_id: str) -> Any:
        """The record of a container that may be started (RunContainerError otherwise)."""
        container = self._get(container_id)
        state = container.status.state
        if state is not ContainerState.CREATED:
            raise RuntimeError_("RunContainerError", f"container {container_id!r} is {state.value}, not created")
        return container

    def _forget_container(self, container_id: str) -> None:
        container = self._containers.pop(container_id)
        sandbox = self._sandboxes.get(container.status.sandbox_id)
        if sandbox is not None:
            sandbox.containers.discard(container_id)

    # -- images ------------------------------------------------------------------------------------

    async def pull_image(self, ref: str, auth: dict[str, str] | None = None) -> str:
        if self._known is not None and ref not in self._known:
            raise RuntimeError_("ErrImagePull", f"failed to pull image {ref!r}: not found")
        ident = image_id(ref)
        image = self._images.setdefault(ident, Image(ident, size=self.image_size))
        if ref not in image.repo_tags:
            image.repo_tags.append(ref)
        return ident

    async def image_status(self, ref: str) -> Image | None:
        image = self._images.get(ref) or self._images.get(image_id(ref))
        return replace(image, repo_tags=list(image.repo_tags)) if image is not None else None

    async def list_images(self) -> list[Image]:
        return [replace(i, repo_tags=list(i.repo_tags)) for i in self._images.values()]

    async def remove_image(self, ref: str) -> None:
        image = await self.image_status(ref)
        if image is None:
            return
        if any(c.status.image_ref == image.id for c in self._containers.values()):
            raise RuntimeError_("ImageInUse", f"image {ref!r} is used by a container")
        self._images.pop(image.id, None)
