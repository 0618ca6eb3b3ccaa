"""VolumeBinding: the PreFilter/Filter/Reserve/PreBind plugin that places pods with
PersistentVolumeClaims where their volumes can be, and binds the volumes of the claims that
wait for their first consumer (upstream's volumebinding plugin, v1.32).  PreScore/Score exist
as upstream's do but always skip: upstream scores only behind the alpha VolumeCapacityPriority
gate.  The pure parts live in volumebinding_core.py.

- PreFilter: a pod without claims is skipped at once (no listing).  Otherwise every claim must
  exist (``persistentvolumeclaim "NAME" not found``; for a generic ephemeral volume "waiting
  for ephemeral volume controller to create the persistentvolumeclaim ..."), not be Lost or
  being deleted, and an ephemeral volume's claim must be controlled by the pod — all
  UnschedulableAndUnresolvable.  An unbound claim whose class is not WaitForFirstConsumer
  rejects the pod ("pod has unbound immediate PersistentVolumeClaims").  Bound claims whose
  PVs pin ``kubernetes.io/hostname`` narrow the nodes (a PreFilterResult).  The claims, PVs
  by class and classes are kept in the cycle state.
- Filter (per node): bound claims' PVs must fit the node ("node(s) had volume node affinity
  conflict"; a missing PV: "node(s) unavailable due to one or more pvc(s) bound to
  non-existent pv(s)"); delayed claims need a free matching PV that fits, or a provisioner
  ("node(s) didn't find available persistent volumes to bind") — UnschedulableAndUnresolvable
  as upstream.  The node's answer is kept for Reserve.
- Reserve assumes the chosen PVs (claimRef set) and the claims to provision (selected-node
  annotation) in the plugin's assume caches, so later pods do not take them; Unreserve
  undoes that.
- PreBind writes them (PUT, so a concurrent change is a conflict, never a double binding),
  then polls the listers until every claim is bound (``spec.volumeName``, bind-completed or
  phase Bound, its PV's claimRef naming it) — the PV controller finishes the binding — or
  ``bindTimeoutSeconds`` pass, the selected-node annotation is dropped (provisioning
  failed), a claimRef is reset or the pod is deleted: then an Error status, and the framework
  unreserves and retries the pod.

Args (VolumeBindingArgs): ``bindTimeoutSeconds`` (default 600, a non-negative integer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pybernetes.client.errors import ApiError, NotFound
from pybernetes.machinery.volumematch import (
    claim_storage_class,
    is_volume_bound_to_claim,
    volume_storage_class,
)
from pybernetes.scheduler.framework import (
    SUCCESS,
    ClusterEvent,
    CycleState,
    NodeInfo,
    Plugin,
    PreFilterResult,
    Status,
)
from pybernetes.scheduler.plugins.volumebinding_core import (
    ANN_SELECTED_NODE,
    ERR_UNBOUND_IMMEDIATE,
    AssumeCache,
    PodVolumes,
    VolumeBindingError,
    VolumeState,
    annotations,
    bind_volume_to_claim,
    claim_key,
    controlled_by,
    find_pod_volumes,
    is_delay_binding,
    is_fully_bound,
    local_pv_node_names,
    pod_claim_volumes,
    pv_fits_node,
    resource_version,
    with_selected_node,
)

Obj = dict[str, Any]

STATE_KEY = "PreFilterVolumeBinding"
DEFAULT_BIND_TIMEOUT_SECONDS = 600
PVCS = "v1/persistentvolumeclaims"
PVS = "v1/persistentvolumes"
CLASSES = "storage.k8s.io/v1/storageclasses"
_PVC_RES = ("", "v1", "persistentvolumeclaims")
_PV_RES = ("", "v1", "persistentvolumes")
_POD_RES = ("", "v1", "pods")
_ARG_FIELDS = {"bindTimeoutSeconds", "shape", "apiVersion", "kind"}
_NO_VOLUMES = object()  # the cycle-state value of a pod without claims (PreFilter not run)


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


class VolumeBinding(Plugin):
    name = "VolumeBinding"
    node_pods_matter = False  # its Filter looks at the node, never at the pods on it

    poll_interval = 0.2  # seconds between checks of the listers while PreBind waits
    pod_check_interval = 1.0  # seconds between checks that the waiting pod still exists
    _SKIP = Status.skip()

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        self.bind_timeout = float(self.args.get("bindTimeoutSeconds", DEFAULT_BIND_TIMEOUT_SECONDS))
        self.pv_cache = AssumeCache()  # PV name -> PV with its claimRef set
        self.pvc_cache = AssumeCache()  # namespace/name -> claim with the selected-node annotation

    @classmethod
    def default_args(cls) -> Obj:
        return {"bindTimeoutSeconds": DEFAULT_BIND_TIMEOUT_SECONDS}

    @classmethod
    def validate_args(cls, args: Obj) -> list[str]:
        problems = [f'{key}: unknown field "{key}"' for key in args if key not in _ARG_FIELDS]
        timeout = args.get("bindTimeoutSeconds", DEFAULT_BIND_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            problems.append(f"bindTimeoutSeconds: Invalid value: {timeout!r}: must be an integer (seconds)")
        elif timeout < 0:
            problems.append(f"bindTimeoutSeconds: Invalid value: {timeout}: invalid BindTimeoutSeconds, "
                            "should not be a negative value")
        if args.get("shape") is not None:
            problems.append("shape: Invalid value: unsupported when the VolumeCapacityPriority feature is disabled")
        return problems

    def events_to_register(self) -> Iterable[ClusterEvent]:
        # v1.32 with queueing hints (CSINode/CSIDriver/CSIStorageCapacity are not served here).
        return tuple(ClusterEvent(resource, action)
                     for resource in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass")
                     for action in ("Add", "Update")) + (ClusterEvent("Node", "Add"),
                                                         ClusterEvent("Node", "UpdateNodeLabel"))

    # -- the scheduling cycle --------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]
                   ) -> tuple[PreFilterResult | None, Status]:
        spec = pod.get("spec")
        if not spec or not spec.get("volumes"):
            return None, self._SKIP
        claims = pod_claim_volumes(pod)
        if not claims:
            return None, self._SKIP
        handle = self.handle
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        listed = {_name(c): c for c in handle.list(PVCS, namespace)}
        pvcs: list[Obj] = []
        for claim_name, ephemeral in claims:
            pvc = self.pvc_cache.get(f"{namespace}/{claim_name}", listed.get(claim_name))
            if pvc is None:
                if ephemeral:
                    return None, self._reject("waiting for ephemeral volume controller to create the "
                                              f'persistentvolumeclaim "{claim_name}"')
                return None, self._reject(f'persistentvolumeclaim "{claim_name}" not found')
            if (pvc.get("status") or {}).get("phase") == "Lost":
                return None, self._reject(f'persistentvolumeclaim "{claim_name}" bound to non-existent '
                                          f'persistentvolume "{(pvc.get("spec") or {}).get("volumeName") or ""}"')
            if (pvc.get("metadata") or {}).get("deletionTimestamp"):
                return None, self._reject(f'persistentvolumeclaim "{claim_name}" is being deleted')
            if ephemeral and not controlled_by(pvc, pod):
                return None, self._reject(f"PVC {namespace}/{claim_name} was not created for pod "
                                          f"{namespace}/{meta.get('name') or ''} (pod is not owner)")
            pvcs.append(pvc)
        classes = {_name(c): c for c in handle.list(CLASSES)}
        bound: list[Obj] = []
        delayed: list[Obj] = []
        for pvc in pvcs:
            if is_fully_bound(pvc):
                bound.append(pvc)
                continue
            try:
                delay = is_delay_binding(pvc, classes)
            except VolumeBindingError as exc:
                return None, Status.error(str(exc), plugin=self.name)
            if not delay or (pvc.get("spec") or {}).get("volumeName"):
                return None, self._reject(ERR_UNBOUND_IMMEDIATE)
            delayed.append(pvc)
        pvs = self._volumes()
        bound_pairs = [(pvc, pvs.get((pvc.get("spec") or {}).get("volumeName") or "")) for pvc in bound]
        by_class: dict[str, list[Obj]] = {}
        for pvc in delayed:
            cls = claim_storage_class(pvc)
            if cls not in by_class:
                by_class[cls] = [pv for pv in pvs.values() if volume_storage_class(pv) == cls]
        state.write(STATE_KEY, VolumeState(pvcs, bound_pairs, delayed, by_class, classes))
        eligible: set[str] | None = None
        for _pvc, pv in bound_pairs:
            names = local_pv_node_names(pv) if pv is not None else None
            if names is not None:
                eligible = names if eligible is None else eligible & names
        return (PreFilterResult(frozenset(eligible)) if eligible is not None else None), SUCCESS

    def filter(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> Status:
        st = state.get(STATE_KEY)
        if st is None:  # PreFilter not enabled in this profile: run it once for the cycle
            _, status = self.pre_filter(state, pod, [])
            if not status.is_success():
                state.write(STATE_KEY, _NO_VOLUMES)
                return SUCCESS if status.is_skip() else status
            st = state.get(STATE_KEY)
        if st is _NO_VOLUMES:
            return SUCCESS
        try:
            volumes, reasons = find_pod_volumes(st, node_info.name, node_info.labels)
        except VolumeBindingError as exc:
            return Status.error(str(exc), plugin=self.name)
        if reasons:
            return Status.unresolvable(*reasons, plugin=self.name)
        st.by_node[node_info.name] = volumes
        return SUCCESS

    # -- scoring: upstream's is behind the alpha VolumeCapacityPriority gate ----------------------

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        return self._SKIP  # the gate is off: Score never runs (as upstream without a scorer)

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        return 0, SUCCESS

    # -- reserve ---------------------------------------------------------------------------------

    async def reserve(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        st = state.get(STATE_KEY)
        if not isinstance(st, VolumeState):
            return SUCCESS
        volumes = st.by_node.get(node_name)
        if volumes is None or self._all_bound(st):
            st.all_bound = True
            return SUCCESS
        static: list[tuple[Obj, Obj]] = []
        for pv, claim in volumes.static_bindings:
            new_pv, dirty = bind_volume_to_claim(pv, claim)
            if dirty:
                self.pv_cache.assume(_name(pv), new_pv, pv)
            static.append((new_pv, claim))
        dynamic: list[Obj] = []
        for claim in volumes.dynamic_provisions:
            new_claim = with_selected_node(claim, node_name)
            self.pvc_cache.assume(claim_key(claim), new_claim, claim)
            dynamic.append(new_claim)
        st.by_node[node_name] = PodVolumes(static, dynamic)
        st.all_bound = False
        return SUCCESS

    async def unreserve(self, state: CycleState, pod: Obj, node_name: str) -> None:
        st = state.get(STATE_KEY)
        if not isinstance(st, VolumeState):
            return
        volumes = st.by_node.get(node_name)
        if volumes is None:
            return
        for pv, _claim in volumes.static_bindings:
            self.pv_cache.restore(_name(pv))
        for claim in volumes.dynamic_provisions:
            self.pvc_cache.restore(claim_key(claim))

    def _all_bound(self, st: VolumeState) -> bool:
        """Whether every claim of the pod is fully bound now (nothing for PreBind to do)."""
        if st.delayed:
            namespace = (st.claims[0].get("metadata") or {}).get("namespace") or ""
            listed = {_name(c): c for c in self.handle.list(PVCS, namespace)}
            for claim in st.delayed:
                current = self.pvc_cache.get(claim_key(claim), listed.get(_name(claim)))
                if current is None or not is_fully_bound(current):
                    return False
        return True

    # -- binding ---------------------------------------------------------------------------------

    async def pre_bind(self, state: CycleState, pod: Obj, node_name: str) -> Status:
        st = state.get(STATE_KEY)
        if not isinstance(st, VolumeState) or st.all_bound:
            return SUCCESS
        volumes = st.by_node.get(node_name)
        if volumes is None:
            return Status.error(f'no pod volumes found for node "{node_name}"', plugin=self.name)
        client = getattr(self.handle, "client", None)
        if client is None:
            return Status.error("VolumeBinding has no API client to bind volumes with", plugin=self.name)
        bindings: list[tuple[Obj, Obj]] = []
        provisions: list[Obj] = []
        try:
            for pv, claim in volumes.static_bindings:
                bindings.append((await client.update(_PV_RES, pv), claim))
            for claim in volumes.dynamic_provisions:
                provisions.append(await client.update(_PVC_RES, claim, (claim.get("metadata") or {}).get("namespace")))
        except ApiError as exc:
            return Status.error(exc.message or str(exc), plugin=self.name)
        except (TimeoutError, OSError) as exc:
            return Status.error(f"{type(exc).__name__}: {exc}", plugin=self.name)
        return await self._wait_for_bindings(pod, node_name, bindings, provisions)

    async def _wait_for_bindings(self, pod: Obj, node_name: str, bindings: list[tuple[Obj, Obj]],
                                 provisions: list[Obj]) -> Status:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bind_timeout
        next_pod_check = loop.time() + self.pod_check_interval
        while True:
            try:
                if self.check_bindings(node_name, bindings, provisions):
                    return SUCCESS
            except VolumeBindingError as exc:
                return Status.error(f"binding volumes: {exc}", plugin=self.name)
            now = loop.time()
            if now >= deadline:
                return Status.error("binding volumes: context deadline exceeded", plugin=self.name)
            if now >= next_pod_check:
                next_pod_check = now + self.pod_check_interval
                gone = await self._pod_gone(pod)
                if gone:
                    return Status.error(f"binding volumes: pod does not exist any more: {gone}", plugin=self.name)
            await asyncio.sleep(max(0.0, min(self.poll_interval, deadline - now)))

    async def _pod_gone(self, pod: Obj) -> str:
        meta = pod.get("metadata") or {}
        try:
            current = await self.handle.client.get(_POD_RES, meta.get("name") or "", meta.get("namespace"))
        except NotFound as exc:
            return exc.message or str(exc)
        except Exception:  # noqa: BLE001 - an unreachable server is not a verdict; keep waiting
            return ""
        uid = meta.get("uid")
        if uid and (current.get("metadata") or {}).get("uid") != uid:
            return f'pods "{meta.get("name")}" not found'
        return ""

    def check_bindings(self, node_name: str, bindings: list[tuple[Obj, Obj]], provisions: list[Obj]) -> bool:
        """Whether every written binding is complete (upstream checkBindings): False to keep
        waiting, VolumeBindingError when it can no longer complete."""
        node = self.handle.snapshot.get(node_name)
        if node is None:
            raise VolumeBindingError(f'failed to get node "{node_name}"')
        labels = node.labels
        pvs = {_name(pv): pv for pv in self.handle.list(PVS)}
        claims: dict[str, Obj] = {}
        listed_namespaces: set[str] = set()

        def claim_of(written: Obj) -> Obj | None:
            namespace = (written.get("metadata") or {}).get("namespace") or ""
            if namespace not in listed_namespaces:
                listed_namespaces.add(namespace)
                claims.update({f"{namespace}/{_name(c)}": c for c in self.handle.list(PVCS, namespace)})
            return claims.get(claim_key(written))

        for written_pv, claim in bindings:
            name = _name(written_pv)
            pv = pvs.get(name)
            if pv is None:
                raise VolumeBindingError(f'failed to check binding: persistentvolume "{name}" not found')
            pvc = claim_of(claim)
            if pvc is None:
                raise VolumeBindingError(f'failed to check binding: persistentvolumeclaim "{claim_key(claim)}" '
                                         "not found")
            if resource_version(written_pv) > resource_version(pv):
                return False  # our write has not reached the lister yet
            if not pv_fits_node(pv, labels):
                raise VolumeBindingError(f"pv \"{name}\" node affinity doesn't match node \"{node_name}\": "
                                         "no matching NodeSelectorTerms")
            ref = (pv.get("spec") or {}).get("claimRef")
            if not ref or not is_volume_bound_to_claim(pv, pvc) or \
                    ((pvc.get("metadata") or {}).get("uid") and not ref.get("uid")):
                raise VolumeBindingError(f'ClaimRef got reset for pv "{name}"')
            if not self._claim_bound(pvc, pvs):
                return False
        for written in provisions:
            pvc = claim_of(written)
            if pvc is None:
                raise VolumeBindingError(f'failed to check provisioning pvc: persistentvolumeclaim '
                                         f'"{claim_key(written)}" not found')
            if resource_version(written) > resource_version(pvc):
                return False
            notes = annotations(pvc)
            if not notes:
                raise VolumeBindingError(f'selectedNode annotation reset for PVC "{_name(pvc)}"')
            if notes.get(ANN_SELECTED_NODE) != node_name:  # the provisioner gives up by removing it
                raise VolumeBindingError(f'provisioning failed for PVC "{_name(pvc)}"')
            volume_name = (pvc.get("spec") or {}).get("volumeName")
            if volume_name:
                pv = pvs.get(volume_name)
                if pv is None:
                    return False  # not seen yet
                if not pv_fits_node(pv, labels):
                    raise VolumeBindingError(f"pv \"{volume_name}\" node affinity doesn't match node "
                                             f'"{node_name}": no matching NodeSelectorTerms')
            if not self._claim_bound(pvc, pvs):
                return False
        return True

    @staticmethod
    def _claim_bound(pvc: Obj, pvs: dict[str, Obj]) -> bool:
        if not is_fully_bound(pvc):
            return False
        pv = pvs.get((pvc.get("spec") or {}).get("volumeName") or "")
        return pv is not None and is_volume_bound_to_claim(pv, pvc)

    # -- helpers ---------------------------------------------------------------------------------

    def _volumes(self) -> dict[str, Obj]:
        """Every PV by name, with the assumptions that still hold in place."""
        cache = self.pv_cache
        listed = self.handle.list(PVS)
        if not len(cache):
            return {_name(pv): pv for pv in listed}
        out = {_name(pv): cache.get(_name(pv), pv) for pv in listed}
        cache.retain(out)  # forget assumptions about deleted PVs
        return out  # type: ignore[return-value]

    def _reject(self, message: str) -> Status:
        return Status.unresolvable(message, plugin=self.name)
