"""Which log file answers a ``/containerLogs/{namespace}/{pod}/{container}`` request (the
kubelet server's resolver, logs.Resolver): the pod from the agent's pod informer, the container
instance from the runtime — the newest one, or with ``previous`` the one before it — its log
path and its rotated files, and whether it still runs (for ``follow``).

Errors carry upstream's messages: an unknown pod or container is a 404; a container that has
not started is a 400 'container "c" in pod "p" is waiting to start: <reason>'; ``previous``
without an earlier instance is a 400 'previous terminated container "c" in pod "p" not found'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pybernetes.kubelet.logs import ContainerLogManager, KubeletLookupError, LogTarget
from pybernetes.kubelet.pod_sync import PodSyncer
from pybernetes.kubelet.runtime.protocol import ContainerState, RuntimeError_

Obj = dict[str, Any]


class LogResolver:
    def __init__(self, find_pod: Callable[[str, str], Obj | None], syncer: PodSyncer,
                 rotation: ContainerLogManager, running: Callable[[str], bool]) -> None:
        self.find_pod = find_pod
        self.syncer = syncer
        self.rotation = rotation
        self.running = running  # container id -> still running (the relist's view)

    async def __call__(self, namespace: str, name: str, container: str, previous: bool) -> LogTarget:
        pod = self.find_pod(namespace, name)
        if pod is None:
            raise KubeletLookupError(404, f'pod "{name}" not found in namespace "{namespace}" on this node')
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                                          *(spec.get("ephemeralContainers") or [])]]
        if container not in names:
            raise KubeletLookupError(404, f'container "{container}" not found in pod "{name}"')
        uid = (pod.get("metadata") or {}).get("uid", "")
        try:
            _, history = await self.syncer.runtime_view(uid)
        except RuntimeError_ as exc:
            raise KubeletLookupError(500, exc.message) from exc
        found = history.get(container) or []
        if previous:
            if len(found) < 2:
                raise KubeletLookupError(400, f'previous terminated container "{container}" in pod "{name}" not found')
            instance = found[1]
        else:
            if not found:
                state = self.syncer.states.get(uid)
                reason = (state.waiting.get(container) if state else None) or ("ContainerCreating", "")
                raise KubeletLookupError(400, f'container "{container}" in pod "{name}" is waiting to start: '
                                              f"{reason[0]}")
            instance = found[0]
        if not instance.log_path:
            raise KubeletLookupError(404, f'container "{container}" in pod "{name}" has no log file')
        path = Path(instance.log_path)
        alive = instance.state is ContainerState.RUNNING
        return LogTarget(path=path, rotated=self.rotation.rotated_files(path),
                         running=(lambda: self.running(instance.id)) if alive else (lambda: False))
