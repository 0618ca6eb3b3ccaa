"""Local storage eviction's pure core (kubelet/eviction.py): every rule and message of upstream's
localStorageEviction — emptyDir sizeLimit, the pod's ephemeral-storage limit (PodLimits), a
container's limit — and the du-style walk that measures directories."""

from __future__ import annotations

import os

import pytest

from pybernetes.kubelet.eviction import (
    StorageUsage,
    disk_usage,
    has_storage_limits,
    local_storage_violations,
    pod_storage_limit,
)
from pybernetes.machinery.quantity import format_quantity

MI = 1024 * 1024


def container(name: str, limit: str | None = None, **extra) -> dict:
    out = {"name": name, "image": "busybox", **extra}
    if limit is not None:
        out["resources"] = {"limits": {"ephemeral-storage": limit}}
    return out


def pod(containers: list[dict], volumes: list[dict] | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": containers, "volumes": volumes or [], **spec}}


def empty_dir(name: str, size_limit: str | None = None, medium: str | None = None) -> dict:
    source: dict = {}
    if size_limit is not None:
        source["sizeLimit"] = size_limit
    if medium is not None:
        source["medium"] = medium
    return {"name": name, "emptyDir": source}


def usage(empty_dirs: dict | None = None, containers: dict | None = None) -> StorageUsage:
    return StorageUsage(empty_dirs=empty_dirs or {}, containers=containers or {})


def limit_text(p: dict) -> str | None:
    found = pod_storage_limit(p)
    return None if found is None else format_quantity(*found)


# -- no limits --------------------------------------------------------------------------------


def test_a_pod_without_limits_is_never_evicted() -> None:
    p = pod([container("a")], [empty_dir("scratch")])
    assert not has_storage_limits(p)
    assert local_storage_violations(p, usage({"scratch": 100 * MI}, {"a": 100 * MI})) is None


def test_a_size_limit_of_zero_is_no_limit() -> None:
    p = pod([container("a")], [empty_dir("scratch", "0")])
    assert not has_storage_limits(p)
    assert local_storage_violations(p, usage({"scratch": 5 * MI})) is None


# -- emptyDir sizeLimit -----------------------------------------------------------------------


def test_an_empty_dir_over_its_size_limit_evicts_the_pod() -> None:
    p = pod([container("a")], [empty_dir("scratch", "1Mi")])
    assert has_storage_limits(p)
    reason, message = local_storage_violations(p, usage({"scratch": MI + 1}))
    assert reason == "Evicted"
    assert message == 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '


def test_an_empty_dir_exactly_at_its_limit_is_not_evicted() -> None:
    p = pod([container("a")], [empty_dir("scratch", "1Mi")])
    assert local_storage_violations(p, usage({"scratch": MI})) is None


def test_the_limit_is_printed_in_its_canonical_form() -> None:
    p = pod([container("a")], [empty_dir("scratch", "2048Ki")])
    _, message = local_storage_violations(p, usage({"scratch": 3 * MI}))
    assert message == 'Usage of EmptyDir volume "scratch" exceeds the limit "2Mi". '


def test_a_memory_empty_dir_is_ignored() -> None:
    p = pod([container("a", "10Mi")], [empty_dir("shm", "1Mi", medium="Memory")])
    assert not has_storage_limits(pod([container("a")], [empty_dir("shm", "1Mi", medium="Memory")]))
    # neither its sizeLimit nor its use in the pod's total count
    assert local_storage_violations(p, usage({"shm": 50 * MI}, {"a": MI})) is None


def test_the_first_empty_dir_over_its_limit_is_named() -> None:
    p = pod([container("a")], [empty_dir("one", "1Mi"), empty_dir("two", "1Mi")])
    _, message = local_storage_violations(p, usage({"one": MI, "two": 2 * MI}))
    assert '"two"' in message


def test_an_unmeasured_empty_dir_is_not_evicted() -> None:
    p = pod([container("a")], [empty_dir("scratch", "1Mi")])
    assert local_storage_violations(p, usage()) is None


# -- the pod's limit --------------------------------------------------------------------------


def test_the_pod_limit_is_the_sum_of_its_containers_limits() -> None:
    p = pod([container("a", "1Gi"), container("b", "512Mi")], [empty_dir("scratch")])
    assert limit_text(p) == "1536Mi"
    # emptyDirs and containers together over the sum (each container within its own limit)
    _, message = local_storage_violations(p, usage({"scratch": 1000 * MI}, {"a": 300 * MI, "b": 300 * MI}))
    assert message == "Pod ephemeral local storage usage exceeds the total limit of containers 1536Mi. "


def test_the_pod_exactly_at_its_limit_is_not_evicted() -> None:
    p = pod([container("a", "10Mi"), container("b", "10Mi")], [empty_dir("scratch")])
    assert local_storage_violations(p, usage({"scratch": 10 * MI}, {"a": 5 * MI, "b": 5 * MI})) is None


def test_the_pod_limit_counts_only_the_containers_that_declare_one() -> None:
    # upstream's PodLimits: the limit exists as soon as one container declares one, and the
    # pod's whole use (this container's too) is measured against it
    p = pod([container("a", "10Mi"), container("b")])
    assert limit_text(p) == "10Mi"
    _, message = local_storage_violations(p, usage(containers={"a": MI, "b": 10 * MI}))
    assert message == "Pod ephemeral local storage usage exceeds the total limit of containers 10Mi. "


def test_no_container_limit_means_no_pod_limit() -> None:
    p = pod([container("a"), container("b")], [empty_dir("scratch")])
    assert pod_storage_limit(p) is None


def test_init_containers_raise_the_pod_limit_to_the_largest() -> None:
    p = pod([container("a", "10Mi")], initContainers=[container("setup", "100Mi"), container("small", "1Mi")])
    assert limit_text(p) == "100Mi"


def test_sidecars_add_to_the_pod_limit_and_to_the_init_containers_after_them() -> None:
    sidecar = container("proxy", "5Mi", restartPolicy="Always")
    p = pod([container("a", "10Mi")], initContainers=[sidecar])
    assert limit_text(p) == "15Mi"
    p = pod([container("a", "10Mi")], initContainers=[sidecar, container("late", "20Mi")])
    assert limit_text(p) == "25Mi"  # the init container runs beside the sidecar started before it


def test_the_pod_overhead_is_added_to_a_limit() -> None:
    p = pod([container("a", "10Mi")], overhead={"ephemeral-storage": "1Mi"})
    assert limit_text(p) == "11Mi"


def test_the_empty_dir_rule_comes_before_the_pod_rule() -> None:
    p = pod([container("a", "1Mi")], [empty_dir("scratch", "1Mi")])
    _, message = local_storage_violations(p, usage({"scratch": 2 * MI}, {"a": 2 * MI}))
    assert message.startswith("Usage of EmptyDir volume")


# -- a container's limit ----------------------------------------------------------------------


def test_a_container_over_its_limit_evicts_the_pod() -> None:
    p = pod([container("a", "10Mi"), container("b", "10Mi")])
    _, message = local_storage_violations(p, usage(containers={"a": 10 * MI + 1, "b": 0}))
    assert message == 'Container a exceeded its local ephemeral storage limit "10Mi". '


def test_a_container_exactly_at_its_limit_is_not_evicted() -> None:
    p = pod([container("a", "10Mi"), container("b", "10Mi")])
    assert local_storage_violations(p, usage(containers={"a": 10 * MI, "b": 0})) is None


def test_a_container_limit_of_zero_is_not_a_container_limit() -> None:
    p = pod([container("a", "0"), container("b", "10Mi")])
    # within the pod's 10Mi; a's "0" is no limit of its own (upstream: Value() != 0)
    assert local_storage_violations(p, usage(containers={"a": 5 * MI, "b": 0})) is None


def test_the_pod_rule_comes_before_the_container_rule() -> None:
    p = pod([container("a", "10Mi")])
    _, message = local_storage_violations(p, usage(containers={"a": 11 * MI}))
    assert message == "Pod ephemeral local storage usage exceeds the total limit of containers 10Mi. "


# -- who is never evicted -----------------------------------------------------------------------


@pytest.mark.parametrize("extra", [{"spec": {"priority": 2_000_001_000}},
                                   {"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}}])
def test_critical_pods_are_not_evicted(extra) -> None:
    p = pod([container("a")], [empty_dir("scratch", "1Mi")])
    for key, value in extra.items():
        p[key] = {**p[key], **value}
    assert local_storage_violations(p, usage({"scratch": 2 * MI})) is None


# -- measuring ----------------------------------------------------------------------------------


def test_disk_usage_counts_blocks_and_hard_links_once(tmp_path) -> None:
    root = tmp_path / "vol"
    (root / "sub").mkdir(parents=True)
    empty = disk_usage(root)
    data = os.urandom(256 * 1024)
    (root / "sub" / "a").write_bytes(data)
    one = disk_usage(root)
    assert one - empty >= len(data)
    os.link(root / "sub" / "a", root / "b")
    os.link(root / "sub" / "a", root / "c")
    assert disk_usage(root) == one
    (root / "link").symlink_to(root / "sub" / "a")  # a symlink is its own (small) inode
    assert one <= disk_usage(root) < one + 64 * 1024
    sparse = root / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(50 * MI)  # no blocks written: no disk used
    assert disk_usage(root) < one + 64 * 1024


def test_disk_usage_of_what_does_not_exist_is_zero(tmp_path) -> None:
    assert disk_usage(tmp_path / "nothing") == 0
