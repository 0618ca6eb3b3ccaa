"""The scheduler's view of pod requests (init containers, sidecars, overhead, non-zero
defaults), node allocatable, host ports and resource-name classification — upstream's
PodRequests semantics."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.resources import (
    host_ports,
    is_extended_resource,
    is_scalar_resource,
    node_allocatable,
    non_zero_requests,
    pod_requests,
    quantity,
)

MI = 1024 * 1024


def _c(name: str = "c", restart: str | None = None, ports: list | None = None, **requests: str) -> dict:
    container: dict = {"name": name, "image": "x"}
    if requests:
        container["resources"] = {"requests": {k.replace("_", "-"): v for k, v in requests.items()}}
    if restart:
        container["restartPolicy"] = restart
    if ports:
        container["ports"] = ports
    return container


def _pod(containers: list, init: list | None = None, overhead: dict | None = None) -> dict:
    spec: dict = {"containers": containers}
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        # containers sum
        (
            _pod([_c(cpu="1", memory="1Gi"), _c(cpu="500m", memory="512Mi")]),
            {"cpu": 1500, "memory": 1536 * MI},
        ),
        # upstream's documented example: IC1 2/1G, IC2 2/3G, C1 2/1G, C2 1/1G -> cpu 3, memory 3G
        (
            _pod(
                [_c(cpu="2", memory="1G"), _c(cpu="1", memory="1G")],
                init=[_c(cpu="2", memory="1G"), _c(cpu="2", memory="3G")],
            ),
            {"cpu": 3000, "memory": 3 * 10**9},
        ),
        # init container larger than the containers
        (_pod([_c(cpu="1")], init=[_c(cpu="3")]), {"cpu": 3000}),
        # sidecar adds to containers and to later init containers: 1 + 0.5 = 1.5; init after it 2 + 0.5
        (_pod([_c(cpu="1")], init=[_c("side", "Always", cpu="500m"), _c("late", cpu="2")]), {"cpu": 2500}),
        # an init container before the sidecar does not see it
        (_pod([_c(cpu="1")], init=[_c("early", cpu="2"), _c("side", "Always", cpu="500m")]), {"cpu": 2000}),
        # sidecars accumulate: containers 1 + 1 + 1 = 3 > init peak (1 + 1 + 0.5)
        (
            _pod(
                [_c(cpu="1")],
                init=[_c("s1", "Always", cpu="1"), _c("s2", "Always", cpu="1"), _c("i", cpu="500m")],
            ),
            {"cpu": 3000},
        ),
        # overhead added after the max
        (
            _pod(
                [_c(cpu="1", memory="100Mi")], init=[_c(cpu="2")], overhead={"cpu": "250m", "memory": "10Mi"}
            ),
            {"cpu": 2250, "memory": 110 * MI},
        ),
        # extended resources and hugepages counted like the rest
        (
            _pod(
                [_c(**{"example.com/gpu": "2", "hugepages-2Mi": "4Mi"})],
                init=[_c(**{"example.com/gpu": "3"})],
            ),
            {"example.com/gpu": 3, "hugepages-2Mi": 4 * MI},
        ),
        # limits alone are not requests for the scheduler (the API server defaults them)
        (_pod([{"name": "c", "resources": {"limits": {"cpu": "1"}}}]), {}),
        # exact sums: 0.4m + 0.4m rounds up once to 1m
        (_pod([_c(cpu="400u"), _c(cpu="400u")]), {"cpu": 1}),
        (_pod([_c(cpu="0", memory="0")]), {}),
    ],
)
def test_pod_requests(pod: dict, want: dict) -> None:
    assert pod_requests(pod) == want


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        (_pod([_c()]), (100, 200 * MI)),
        (_pod([_c(), _c()]), (200, 400 * MI)),
        (_pod([_c(cpu="1")]), (1000, 200 * MI)),
        # an explicit zero stays zero (only missing requests get the defaults)
        (_pod([_c(cpu="0", memory="0")]), (0, 0)),
        # init containers get the defaults too; the peak wins
        (_pod([_c(cpu="1", memory="1Gi")], init=[_c("i", cpu="2")]), (2000, 1024 * MI)),
        (_pod([_c(cpu="10m", memory="1Mi")], init=[_c("i")]), (100, 200 * MI)),
        # sidecar with defaults adds to the containers
        (_pod([_c(cpu="1", memory="1Gi")], init=[_c("s", "Always")]), (1100, 1024 * MI + 200 * MI)),
        (_pod([_c()], overhead={"cpu": "50m", "memory": "1Mi"}), (150, 201 * MI)),
    ],
)
def test_non_zero_requests(pod: dict, want: tuple[int, int]) -> None:
    assert non_zero_requests(pod) == want


def test_quantities_and_allocatable() -> None:
    assert quantity("cpu", "1.5") == 1500 and quantity("cpu", "1n") == 1 and quantity("cpu", 2) == 2000
    assert quantity("memory", "1Ki") == 1024 and quantity("memory", "bogus") == 0
    node = {
        "status": {
            "allocatable": {"cpu": "3900m", "memory": "7Gi", "pods": "110", "example.com/gpu": "4"},
            "capacity": {"cpu": "4"},
        }
    }
    assert node_allocatable(node) == {"cpu": 3900, "memory": 7 * 1024 * MI, "pods": 110, "example.com/gpu": 4}
    assert node_allocatable({"status": {"capacity": {"cpu": "2"}}}) == {"cpu": 2000}
    assert node_allocatable({}) == {}


def test_host_ports_of_containers_and_sidecars() -> None:
    pod = _pod(
        [_c(ports=[{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}])],
        init=[
            _c("side", "Always", ports=[{"hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"}]),
            _c("init", ports=[{"hostPort": 9000}]),
        ],
    )
    assert sorted(host_ports(pod)) == [("0.0.0.0", "TCP", 8080), ("10.0.0.1", "UDP", 53)]


@pytest.mark.parametrize(
    ("name", "extended", "scalar"),
    [
        ("cpu", False, False),
        ("memory", False, False),
        ("pods", False, False),
        ("foo", False, False),
        ("example.com/gpu", True, True),
        ("nvidia.com/gpu", True, True),
        ("kubernetes.io/something", False, True),
        ("hugepages-2Mi", False, True),
        ("attachable-volumes-aws-ebs", False, True),
        ("requests.example.com/x", False, False),
        ("bad_domain/x", False, False),
    ],
)
def test_resource_name_classes(name: str, extended: bool, scalar: bool) -> None:
    assert is_extended_resource(name) is extended
    assert is_scalar_resource(name) is scalar
