"""ImageLocality: image sizes on nodes scaled by spread, clamped and mapped to 0..100
(upstream's figures), with Docker Hub name forms matched."""

from __future__ import annotations

import pytest

from pybernetes.scheduler.framework import CycleState
from pybernetes.scheduler.handle import Handle, Snapshot
from pybernetes.scheduler.nodeinfo import node_info_of
from pybernetes.scheduler.plugins.imagelocality import ImageLocality, calculate_priority, image_names

MB = 1024 * 1024


def _node(name: str, images: dict[str, int]) -> dict:
    return {
        "metadata": {"name": name},
        "status": {
            "allocatable": {"pods": "10"},
            "images": [{"names": [n], "sizeBytes": size} for n, size in images.items()],
        },
    }


def _pod(*images: str, init: tuple[str, ...] = ()) -> dict:
    spec: dict = {"containers": [{"name": f"c{i}", "image": img} for i, img in enumerate(images)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": img} for i, img in enumerate(init)]
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


def _scores(pod: dict, nodes: list[dict]) -> list[int]:
    infos = [node_info_of(n) for n in nodes]
    plugin = ImageLocality({}, Handle(Snapshot(infos)))
    state = CycleState()
    assert plugin.pre_score(state, pod, infos).is_success()
    return [plugin.score(state, pod, info)[0] for info in infos]


N1 = _node(
    "n1", {"gcr.io/40:latest": 40 * MB, "gcr.io/300:latest": 300 * MB, "gcr.io/2000:latest": 2000 * MB}
)
N2 = _node("n2", {"gcr.io/250:latest": 250 * MB, "gcr.io/10:latest": 10 * MB})
N3 = _node("n3", {})


@pytest.mark.parametrize(
    ("pod", "nodes", "want"),
    [
        # upstream: two images spread on two nodes, prefer the larger image:
        # n1: 40M * 1/2 = 20M < 23M -> 0; n2: 100 * (250M/2 - 23M) / (2000M - 23M) = 5
        (_pod("gcr.io/40", "gcr.io/250"), [N1, N2], [0, 5]),
        # upstream: two images on one node: 100 * ((40M+300M)/2 - 23M) / (2000M - 23M) = 7
        (_pod("gcr.io/40", "gcr.io/300"), [N1, N2], [7, 0]),
        # upstream: over the limit the limit is used: 2000M/2 clamped at 1000M -> 100; n2 has none -> 0
        (_pod("gcr.io/2000"), [N1, N2], [int(100 * (1000 - 23) / (1000 - 23)), 0]),
        # init containers count, and count as containers for the threshold
        (
            _pod("busybox", init=("gcr.io/300",)),
            [N1, N2, N3],
            [100 * (100 * MB - 23 * MB) // (2000 * MB - 23 * MB), 0, 0],
        ),
        # no image anywhere
        (_pod("nope"), [N1, N2], [0, 0]),
    ],
)
def test_scores(pod: dict, nodes: list[dict], want: list[int]) -> None:
    assert _scores(pod, nodes) == want


def test_spread_lowers_the_score_of_an_image_everywhere() -> None:
    everywhere = [_node(f"n{i}", {"docker.io/library/big:1": 900 * MB}) for i in range(3)]
    once = [_node("n0", {"docker.io/library/big:1": 900 * MB}), _node("n1", {}), _node("n2", {})]
    # 900M * 3/3 -> 100 * 877 / 977 = 89 on each; 900M * 1/3 = 300M -> 100 * 277 / 977 = 28
    assert _scores(_pod("big:1"), everywhere) == [89, 89, 89]
    assert _scores(_pod("big:1"), once) == [28, 0, 0]


@pytest.mark.parametrize(
    ("pod_image", "node_name"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx", "nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("docker.io/library/nginx:1.27", "nginx:1.27"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "nginx:latest"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
        ("user/app", "docker.io/user/app:latest"),
        ("registry.example.com:5000/app", "registry.example.com:5000/app:latest"),
        ("nginx@sha256:abcd", "docker.io/library/nginx@sha256:abcd"),
    ],
)
def test_name_forms_match(pod_image: str, node_name: str) -> None:
    node = _node("n1", {node_name: 500 * MB})
    assert _scores(_pod(pod_image), [node]) == [100 * (500 - 23) // (1000 - 23)]


@pytest.mark.parametrize(
    ("pod_image", "node_name"),
    [
        ("nginx:1.27", "nginx:1.26"),
        ("user/app", "app:latest"),
        ("registry.example.com/app", "app:latest"),
        ("localhost/app", "docker.io/library/app:latest"),
    ],
)
def test_different_images_do_not_match(pod_image: str, node_name: str) -> None:
    assert _scores(_pod(pod_image), [_node("n1", {node_name: 500 * MB})]) == [0]


def test_helpers() -> None:
    assert image_names("nginx")[0] == "nginx:latest"  # upstream's own normalisation first
    assert "docker.io/library/nginx:latest" in image_names("nginx")
    assert image_names("quay.io/x/y:2") == ("quay.io/x/y:2",)
    assert calculate_priority(0, 1) == 0 and calculate_priority(10**12, 2) == 100
    # score without PreScore uses the snapshot too
    infos = [node_info_of(N1), node_info_of(N2)]
    plugin = ImageLocality({}, Handle(Snapshot(infos)))
    assert plugin.score(CycleState(), _pod("gcr.io/40", "gcr.io/300"), infos[0])[0] == 7
