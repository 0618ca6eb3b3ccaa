"""The PersistentVolume binder against a real API server: static binding to the smallest
fitting volume, selectors and access modes, WaitForFirstConsumer claims (waiting, then bound
once the scheduler's selected-node annotation or claimRef appears), release and reclaim when
a claim goes (Retain, Delete, Recycle, also while the controller was down), user-pre-bound
volumes, external provisioning annotations, the default class, and claims that lose their
volume."""

from __future__ import annotations

from typing import Any

from pybernetes.client.errors import NotFound

PVS = ("", "v1", "persistentvolumes")
PVCS = ("", "v1", "persistentvolumeclaims")
CLASSES = ("storage.k8s.io", "v1", "storageclasses")
EVENTS = ("", "v1", "events")
NS = "default"
FAST = {"pv_resync_period": 0.5}


def volume(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), labels: dict | None = None,
           storage_class: str = "", policy: str = "Retain", claim_ref: dict | None = None,
           annotations: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"capacity": {"storage": size}, "accessModes": list(modes),
                            "hostPath": {"path": f"/tmp/pv-{name}"},
                            "persistentVolumeReclaimPolicy": policy}
    if storage_class:
        spec["storageClassName"] = storage_class
    if claim_ref:
        spec["claimRef"] = claim_ref
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta, "spec": spec}


def claim(name: str, size: str, *, modes: tuple[str, ...] = ("ReadWriteOnce",), storage_class: str | None = "",
          selector: dict | None = None, annotations: dict | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def storage_class(name: str, provisioner: str, *, mode: str = "Immediate", default: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta,
            "provisioner": provisioner, "volumeBindingMode": mode}


async def get_pv(cluster: Any, name: str) -> dict[str, Any] | None:
    try:
        return await cluster.client.get(PVS, name)
    except NotFound:
        return None


async def get_pvc(cluster: Any, name: str) -> dict[str, Any]:
    return await cluster.client.get(PVCS, name, NS)


def phase(obj: dict[str, Any] | None) -> str:
    return ((obj or {}).get("status") or {}).get("phase") or ""


async def wait_pv_phase(cluster: Any, name: str, want: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        pv = await get_pv(cluster, name)
        return pv if phase(pv) == want else None
    return await cluster.wait_for(check, message=f"volume {name} {want}")


async def wait_claim_bound(cluster: Any, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        pvc = await get_pvc(cluster, name)
        return pvc if phase(pvc) == "Bound" else None
    return await cluster.wait_for(check, message=f"claim {name} Bound")


async def events_for(cluster: Any, name: str, reason: str) -> list[dict[str, Any]]:
    items = (await cluster.client.list(EVENTS, None))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and e.get("reason") == reason]


async def wait_event(cluster: Any, name: str, reason: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await events_for(cluster, name, reason)
        return found[0] if found else None
    return await cluster.wait_for(check, message=f"event {reason} about {name}")


async def resyncs(cluster: Any, ctl: Any, count: int = 3) -> None:
    """Let the controller go round ``count`` more resync periods with an empty queue."""
    target = ctl.syncs + count * 4
    await cluster.wait_for(lambda: ctl.syncs >= target and len(ctl.queue) == 0, message="resyncs")


async def test_static_binding_takes_the_smallest_fitting_volume(cluster: Any) -> None:
    for name, size in (("pv-small", "1Gi"), ("pv-medium", "5Gi"), ("pv-large", "10Gi")):
        await cluster.client.create(PVS, volume(name, size))
    await cluster.start("persistentvolume-binder", options=FAST)
    await wait_pv_phase(cluster, "pv-large", "Available")
    created = await cluster.client.create(PVCS, claim("data", "2Gi"), NS)
    pvc = await wait_claim_bound(cluster, "data")
    assert pvc["spec"]["volumeName"] == "pv-medium"
    assert pvc["status"]["capacity"] == {"storage": "5Gi"}
    assert pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    notes = pvc["metadata"]["annotations"]
    assert notes["pv.kubernetes.io/bind-completed"] == "yes"
    assert notes["pv.kubernetes.io/bound-by-controller"] == "yes"
    pv = await wait_pv_phase(cluster, "pv-medium", "Bound")
    ref = pv["spec"]["claimRef"]
    assert (ref["kind"], ref["apiVersion"], ref["namespace"], ref["name"], ref["uid"]) == \
        ("PersistentVolumeClaim", "v1", NS, "data", created["metadata"]["uid"])
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    for other in ("pv-small", "pv-large"):
        untouched = await get_pv(cluster, other)
        assert phase(untouched) == "Available" and "claimRef" not in untouched["spec"]


async def test_selector_and_access_modes_are_respected(cluster: Any) -> None:
    await cluster.client.create(PVS, volume("rwo-fast", "2Gi", labels={"tier": "fast"}))
    await cluster.client.create(PVS, volume("rwx-slow", "2Gi", modes=("ReadWriteMany",), labels={"tier": "slow"}))
    await cluster.client.create(PVS, volume("rwx-fast", "20Gi", modes=("ReadWriteMany", "ReadOnlyMany"),
                                            labels={"tier": "fast"}))
    await cluster.start("persistentvolume-binder", options=FAST)
    await cluster.client.create(PVCS, claim("shared-fast", "1Gi", modes=("ReadWriteMany",),
                                            selector={"matchLabels": {"tier": "fast"}}), NS)
    assert (await wait_claim_bound(cluster, "shared-fast"))["spec"]["volumeName"] == "rwx-fast"
    await cluster.client.create(PVCS, claim("shared-slow", "1Gi", modes=("ReadWriteMany",), selector={
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["slow"]}]}), NS)
    assert (await wait_claim_bound(cluster, "shared-slow"))["spec"]["volumeName"] == "rwx-slow"
    # nothing left offers ReadOnlyMany: the claim stays Pending and rwo-fast stays free
    await cluster.client.create(PVCS, claim("readers", "1Gi", modes=("ReadOnlyMany",)), NS)
    await wait_event(cluster, "readers", "FailedBinding")
    assert phase(await get_pvc(cluster, "readers")) == "Pending"
    assert phase(await get_pv(cluster, "rwo-fast")) == "Available"


async def test_wait_for_first_consumer_then_the_schedulers_claim_ref(cluster: Any) -> None:
    await cluster.client.create(CLASSES, storage_class("local", "kubernetes.io/no-provisioner",
                                                       mode="WaitForFirstConsumer"))
    await cluster.client.create(PVS, volume("local-1", "5Gi", storage_class="local"))
    ctl = (await cluster.start("persistentvolume-binder", options={"pv_resync_period": 0.1}))\
        .controllers["persistentvolume-binder"]
    created = await cluster.client.create(PVCS, claim("wait", "1Gi", storage_class="local"), NS)
    event = await wait_event(cluster, "wait", "WaitForFirstConsumer")
    assert event["type"] == "Normal"
    assert event["message"] == "waiting for first consumer to be created before binding"
    await resyncs(cluster, ctl)
    assert [e.get("count", 1) for e in await events_for(cluster, "wait", "WaitForFirstConsumer")] == [1]
    pvc = await get_pvc(cluster, "wait")
    assert phase(pvc) == "Pending" and not pvc["spec"].get("volumeName")
    pv = await get_pv(cluster, "local-1")
    assert phase(pv) == "Available" and "claimRef" not in pv["spec"]
    # the scheduler's VolumeBinding PreBind: the chosen volume points at the claim
    pv["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": NS,
                              "name": "wait", "uid": created["metadata"]["uid"]}
    pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"
    await cluster.client.update(PVS, pv)
    pvc = await wait_claim_bound(cluster, "wait")
    assert pvc["spec"]["volumeName"] == "local-1"
    assert pvc["status"]["capacity"] == {"storage": "5Gi"}
    await wait_pv_phase(cluster, "local-1", "Bound")


async def test_wait_for_first_consumer_claim_binds_once_a_node_is_selected(cluster: Any) -> None:
    await cluster.client.create(CLASSES, storage_class("local", "kubernetes.io/no-provisioner",
                                                       mode="WaitForFirstConsumer"))
    await cluster.client.create(PVS, volume("local-2", "5Gi", storage_class="local"))
    await cluster.start("persistentvolume-binder", options=FAST)
    await cluster.client.create(PVCS, claim("later", "1Gi", storage_class="local"), NS)
    await wait_event(cluster, "later", "WaitForFirstConsumer")
    assert phase(await get_pv(cluster, "local-2")) == "Available"
    pvc = await get_pvc(cluster, "later")
    pvc["metadata"].setdefault("annotations", {})["volume.kubernetes.io/selected-node"] = "node-1"
    await cluster.client.update(PVCS, pvc, NS)
    assert (await wait_claim_bound(cluster, "later"))["spec"]["volumeName"] == "local-2"
    await wait_pv_phase(cluster, "local-2", "Bound")


async def bound_pair(cluster: Any, pv_name: str, pvc_name: str, policy: str) -> dict[str, Any]:
    await cluster.client.create(PVS, volume(pv_name, "1Gi", policy=policy))
    await cluster.client.create(PVCS, claim(pvc_name, "1Gi"), NS)
    await wait_claim_bound(cluster, pvc_name)
    return await wait_pv_phase(cluster, pv_name, "Bound")


async def test_deleted_claim_releases_or_deletes_its_volume(cluster: Any) -> None:
    await cluster.start("persistentvolume-binder", "pvc-protection", "pv-protection", options=FAST)
    await bound_pair(cluster, "keep-me", "keeper", "Retain")
    await cluster.client.delete(PVCS, "keeper", NS)
    released = await wait_pv_phase(cluster, "keep-me", "Released")
    assert released["spec"]["claimRef"]["name"] == "keeper"  # the data stays tied to its claim
    # a new claim of the same name does not get the released volume back
    await cluster.client.create(PVCS, claim("keeper", "1Gi"), NS)
    await wait_event(cluster, "keeper", "FailedBinding")
    assert phase(await get_pv(cluster, "keep-me")) == "Released"
    await cluster.client.delete(PVCS, "keeper", NS)  # or it competes for the volumes below

    await bound_pair(cluster, "drop-me", "dropper", "Delete")
    await cluster.client.delete(PVCS, "dropper", NS)
    await cluster.wait_for(lambda: _gone(cluster, "drop-me"), message="drop-me deleted")

    await bound_pair(cluster, "recycle-me", "recycler", "Recycle")
    await cluster.client.delete(PVCS, "recycler", NS)
    failed = await wait_pv_phase(cluster, "recycle-me", "Failed")
    assert failed["status"]["message"]
    assert (await wait_event(cluster, "recycle-me", "VolumeFailedRecycle"))["type"] == "Warning"


async def test_provisioned_volume_with_delete_policy_is_left_to_its_provisioner(cluster: Any) -> None:
    await cluster.start("persistentvolume-binder", "pvc-protection", "pv-protection", options=FAST)
    await cluster.client.create(PVS, volume("made", "1Gi", policy="Delete",
                                            annotations={"pv.kubernetes.io/provisioned-by": "example.com/disk"}))
    await cluster.client.create(PVCS, claim("uses-made", "1Gi"), NS)
    await wait_claim_bound(cluster, "uses-made")
    await cluster.client.delete(PVCS, "uses-made", NS)
    await wait_pv_phase(cluster, "made", "Released")
    ctl = cluster.manager.controllers["persistentvolume-binder"]
    await resyncs(cluster, ctl, 2)
    assert phase(await get_pv(cluster, "made")) == "Released"


async def _gone(cluster: Any, name: str) -> bool:
    return await get_pv(cluster, name) is None


async def test_volume_released_while_the_controller_was_down(cluster: Any) -> None:
    cm = await cluster.start("persistentvolume-binder", "pvc-protection", "pv-protection", options=FAST)
    await bound_pair(cluster, "while-away", "leaves", "Retain")
    await cluster.stop(cm)
    await cluster.client.delete(PVCS, "leaves", NS)
    await cluster.start("persistentvolume-binder", "pvc-protection", "pv-protection", options={"pv_resync_period": 60})
    await wait_pv_phase(cluster, "while-away", "Released")


async def test_volume_pre_bound_by_a_user_binds_only_its_claim(cluster: Any) -> None:
    await cluster.client.create(PVS, volume("reserved", "10Gi", claim_ref={"namespace": NS, "name": "mine"}))
    await cluster.start("persistentvolume-binder", options=FAST)
    await wait_pv_phase(cluster, "reserved", "Available")
    await cluster.client.create(PVCS, claim("someone-else", "1Gi"), NS)
    await wait_event(cluster, "someone-else", "FailedBinding")
    assert phase(await get_pvc(cluster, "someone-else")) == "Pending"
    created = await cluster.client.create(PVCS, claim("mine", "1Gi"), NS)
    pvc = await wait_claim_bound(cluster, "mine")
    assert pvc["spec"]["volumeName"] == "reserved"
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    pv = await wait_pv_phase(cluster, "reserved", "Bound")
    assert pv["spec"]["claimRef"]["uid"] == created["metadata"]["uid"]
    assert "pv.kubernetes.io/bound-by-controller" not in (pv["metadata"].get("annotations") or {})
    assert phase(await get_pvc(cluster, "someone-else")) == "Pending"


async def test_claim_naming_its_volume(cluster: Any) -> None:
    await cluster.client.create(PVS, volume("named", "3Gi"))
    await cluster.client.create(PVS, volume("tiny", "1Mi"))
    await cluster.start("persistentvolume-binder", options=FAST)
    named = claim("by-name", "1Gi")
    named["spec"]["volumeName"] = "named"
    await cluster.client.create(PVCS, named, NS)
    pvc = await wait_claim_bound(cluster, "by-name")
    assert "pv.kubernetes.io/bound-by-controller" not in pvc["metadata"]["annotations"]
    pv = await wait_pv_phase(cluster, "named", "Bound")
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    too_small = claim("wants-tiny", "1Gi")
    too_small["spec"]["volumeName"] = "tiny"
    await cluster.client.create(PVCS, too_small, NS)
    event = await wait_event(cluster, "wants-tiny", "VolumeMismatch")
    assert "too small" in event["message"]
    assert phase(await get_pv(cluster, "tiny")) == "Available"


async def test_claim_of_a_provisioner_class_is_annotated_for_it(cluster: Any) -> None:
    await cluster.client.create(CLASSES, storage_class("fast", "example.com/fast-disk"))
    await cluster.start("persistentvolume-binder", options=FAST)
    await cluster.client.create(PVCS, claim("to-provision", "1Gi", storage_class="fast"), NS)

    async def annotated() -> dict[str, Any] | None:
        pvc = await get_pvc(cluster, "to-provision")
        notes = pvc["metadata"].get("annotations") or {}
        return pvc if notes.get("volume.kubernetes.io/storage-provisioner") else None
    pvc = await cluster.wait_for(annotated, message="storage-provisioner annotation")
    notes = pvc["metadata"]["annotations"]
    assert notes["volume.kubernetes.io/storage-provisioner"] == "example.com/fast-disk"
    assert notes["volume.beta.kubernetes.io/storage-provisioner"] == "example.com/fast-disk"
    assert phase(pvc) == "Pending"
    await wait_event(cluster, "to-provision", "ExternalProvisioning")
    # a class that does not exist: a warning, nothing else
    await cluster.client.create(PVCS, claim("no-class", "1Gi", storage_class="missing"), NS)
    event = await wait_event(cluster, "no-class", "ProvisioningFailed")
    assert event["type"] == "Warning"
    assert event["message"] == 'storageclass.storage.k8s.io "missing" not found'


async def test_claim_without_a_class_gets_the_default_class(cluster: Any) -> None:
    await cluster.client.create(CLASSES, storage_class("standard", "example.com/local", default=True))
    await cluster.start("persistentvolume-binder", options=FAST)
    await cluster.client.create(PVCS, claim("plain", "1Gi", storage_class=None), NS)

    async def provisioning() -> dict[str, Any] | None:
        pvc = await get_pvc(cluster, "plain")
        notes = pvc["metadata"].get("annotations") or {}
        return pvc if notes.get("volume.kubernetes.io/storage-provisioner") else None
    pvc = await cluster.wait_for(provisioning, message="default class assigned and provisioning asked")
    assert pvc["spec"]["storageClassName"] == "standard"


async def test_bound_claim_whose_volume_is_deleted_is_lost(cluster: Any) -> None:
    await cluster.start("persistentvolume-binder", options=FAST)
    await bound_pair(cluster, "vanishing", "left-behind", "Retain")
    await cluster.client.delete(PVS, "vanishing")
    # a bound volume is kept by its pv-protection finalizer: an admin forces it away
    await cluster.client.patch(PVS, "vanishing", {"metadata": {"finalizers": None}})

    async def lost() -> dict[str, Any] | None:
        pvc = await get_pvc(cluster, "left-behind")
        return pvc if phase(pvc) == "Lost" else None
    pvc = await cluster.wait_for(lost, message="claim Lost")
    assert "capacity" not in pvc["status"]
    assert (await wait_event(cluster, "left-behind", "ClaimLost"))["type"] == "Warning"


async def test_claims_competing_for_few_volumes_never_share_one(cluster: Any) -> None:
    for i in range(5):
        await cluster.client.create(PVS, volume(f"pool-{i}", f"{i + 1}Gi"))
    await cluster.start("persistentvolume-binder", options=FAST, workers={"persistentvolume-binder": 4})
    uids = {}
    for i in range(8):
        created = await cluster.client.create(PVCS, claim(f"want-{i}", "1Gi"), NS)
        uids[f"want-{i}"] = created["metadata"]["uid"]

    async def five_bound() -> list[dict[str, Any]] | None:
        items = (await cluster.client.list(PVCS, NS))["items"]
        bound = [c for c in items if phase(c) == "Bound"]
        return bound if len(bound) == 5 else None
    bound = await cluster.wait_for(five_bound, message="five claims bound")
    ctl = cluster.manager.controllers["persistentvolume-binder"]
    await resyncs(cluster, ctl, 2)
    claims = (await cluster.client.list(PVCS, NS))["items"]
    bound = [c for c in claims if phase(c) == "Bound"]
    assert len(bound) == 5
    assert sorted(c["spec"]["volumeName"] for c in bound) == [f"pool-{i}" for i in range(5)]
    for c in bound:
        pv = await get_pv(cluster, c["spec"]["volumeName"])
        assert pv["spec"]["claimRef"]["uid"] == uids[c["metadata"]["name"]]
        assert phase(pv) == "Bound"
    assert all(not c["spec"].get("volumeName") and phase(c) == "Pending" for c in claims if c not in bound)
