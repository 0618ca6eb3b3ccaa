"""node_status: capacity, allocatable, addresses, nodeInfo and truthful conditions from host
figures, with lastTransitionTime kept while a condition holds."""

from __future__ import annotations

import pytest

from pybernetes.kubelet.node_status import HostFigures, conditions, node_status

GI = 1024**3


def host(**kw) -> HostFigures:
    figures = {"cpus": 4, "memory_total": 16 * GI, "memory_available": 8 * GI, "disk_total": 100 * GI,
               "disk_available": 50 * GI, "pids_max": 32768, "pids_used": 300, "kernel": "6.1.0",
               "os_image": "Debian GNU/Linux 13", "machine_id": "m1", "boot_id": "b1", "address": "10.0.0.5"}
    figures.update(kw)
    return HostFigures(**figures)


def by_type(conds: list[dict]) -> dict[str, dict]:
    return {c["type"]: c for c in conds}


def test_a_healthy_node() -> None:
    status = node_status(host(), "n1", "process", "0.1.0", "2026-01-01T00:00:00Z")
    assert status["capacity"] == {"cpu": "4", "memory": "16777216Ki", "ephemeral-storage": "104857600Ki",
                                  "pods": "110"}
    assert status["allocatable"]["memory"] == f"{(16 * GI - 100 * 1024 * 1024) // 1024}Ki"
    assert status["allocatable"]["ephemeral-storage"] == f"{int(100 * GI * 0.9) // 1024}Ki"
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.0.0.5"},
                                   {"type": "Hostname", "address": "n1"}]
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"] == "process://0.1.0" and info["kubeletVersion"].startswith("v1.32")
    assert (info["operatingSystem"], info["osImage"], info["kernelVersion"]) == ("linux", "Debian GNU/Linux 13",
                                                                                 "6.1.0")
    conds = by_type(status["conditions"])
    assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert all(conds[k]["status"] == "False" for k in ("MemoryPressure", "DiskPressure", "PIDPressure"))


@pytest.mark.parametrize(("figures", "pressure"), [
    ({"memory_available": 50 * 1024 * 1024}, "MemoryPressure"),
    ({"disk_available": 5 * GI}, "DiskPressure"),
    ({"pids_used": 32000}, "PIDPressure"),
])
def test_pressure_is_reported_truthfully(figures: dict, pressure: str) -> None:
    conds = by_type(conditions(host(**figures), "t"))
    assert conds[pressure]["status"] == "True"
    assert [k for k, c in conds.items() if c["status"] == "True"] == [pressure, "Ready"]


def test_transition_times_are_kept_while_a_condition_holds() -> None:
    first = conditions(host(), "t1")
    second = by_type(conditions(host(), "t2", first))
    assert second["Ready"]["lastTransitionTime"] == "t1" and second["Ready"]["lastHeartbeatTime"] == "t2"
    third = by_type(conditions(host(), "t3", list(second.values()), runtime_ready=False))
    assert third["Ready"]["status"] == "False" and third["Ready"]["lastTransitionTime"] == "t3"


def test_the_real_host_can_be_read(tmp_path) -> None:
    figures = HostFigures.read(tmp_path)
    assert figures.cpus >= 1 and figures.memory_total > 0 and figures.disk_total > 0 and figures.pids_used > 0
