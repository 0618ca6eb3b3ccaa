"""ImageLocality: the PreScore/Score plugin that favours nodes which already hold the pod's
container images (upstream's imagelocality plugin).

For each container and init container whose image the node lists in status.images, the
image's size scaled by its spread (the share of all the cluster's nodes that hold it, so an
image everywhere does not pull every pod to one node) is added up; the sum, clamped between
23 MiB and 1000 MiB per container, maps linearly onto 0..100:
``100 * (sum - 23Mi) / (1000Mi * containers - 23Mi)``, integer arithmetic as upstream.

Image names are matched as the runtime reports them: a name without tag means ``:latest``
(upstream's normalisation), and the implicit Docker Hub forms are equivalent — ``nginx``,
``library/nginx``, ``docker.io/library/nginx`` and ``index.docker.io/library/nginx`` name
one image, whichever of them the node lists.  PreScore works out each image's candidate
names once; how many nodes hold an image is counted only when a scored node has it (once
per image per cycle), so pods whose images are nowhere cost one dict lookup per container
per node.  ``score_table`` scores all nodes at once: nodes listing no images score
``calculate_priority(0, ...)``, the few that list some are scored one by one.  When no node
lists any image, PreScore skips the plugin: every node would score the same, which changes no
choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pybernetes.scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from pybernetes.scheduler.nodetable import NodeTable

Obj = dict[str, Any]

NAME = "ImageLocality"
PRE_SCORE_KEY = "PreScore" + NAME
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB
DOCKER_DOMAIN = "docker.io"
LEGACY_DOCKER_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"


def normalized_image_name(name: str) -> str:
    """Upstream's normalisation: ``:latest`` added when the name has no tag (or digest)."""
    if name.rfind(":") <= name.rfind("/"):
        name += ":latest"
    return name


def image_names(image: str) -> tuple[str, ...]:
    """The names under which a node may list ``image``: upstream's normalised name first,
    then the fully qualified Docker Hub form and its short forms when the image is there."""
    name = normalized_image_name(image)
    out = [name]
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, remainder = first, rest
    else:
        domain, remainder = DOCKER_DOMAIN, name
    if domain in (DOCKER_DOMAIN, LEGACY_DOCKER_DOMAIN):
        if "/" not in remainder:
            remainder = OFFICIAL_REPO_PREFIX + remainder
        forms = [f"{DOCKER_DOMAIN}/{remainder}", remainder, f"{LEGACY_DOCKER_DOMAIN}/{remainder}"]
        if remainder.startswith(OFFICIAL_REPO_PREFIX):
            forms.append(remainder[len(OFFICIAL_REPO_PREFIX):])
        out.extend(f for f in forms if f not in out)
    return tuple(out)


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    """Upstream's calculatePriority: the clamped sum mapped onto 0..MAX_NODE_SCORE."""
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    if sum_scores < MIN_THRESHOLD:
        sum_scores = MIN_THRESHOLD
    elif sum_scores > max_threshold:
        sum_scores = max_threshold
    if max_threshold == MIN_THRESHOLD:
        return 0
    return MAX_NODE_SCORE * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class _ImageState:
    """The pod's images (candidate names per container), the cluster's nodes, and the memo of
    how many of them hold each image."""

    __slots__ = ("images", "num_containers", "infos", "total", "counts")

    def __init__(self, images: tuple[tuple[str, ...], ...], num_containers: int,
                 infos: list[NodeInfo]) -> None:
        self.images = images
        self.num_containers = num_containers
        self.infos = infos
        self.total = len(infos)
        self.counts: dict[tuple[str, ...], int] = {}

    def clone(self) -> _ImageState:
        return self  # read-only but for the memo, which stays valid for the same snapshot

    def num_nodes(self, names: tuple[str, ...]) -> int:
        count = self.counts.get(names)
        if count is None:
            count = 0
            for info in self.infos:
                held = info.images
                if held:
                    for name in names:
                        if name in held:
                            count += 1
                            break
            self.counts[names] = count
        return count


class ImageLocality(Plugin):
    name = NAME

    def __init__(self, args: Obj | None = None, handle: Any = None) -> None:
        super().__init__(args, handle)
        self._names: dict[str, tuple[str, ...]] = {}
        self._last: tuple[Any, Any] = (None, None)  # (state, _ImageState) of the last PreScore

    def _names_of(self, image: str) -> tuple[str, ...]:
        names = self._names.get(image)
        if names is None:
            if len(self._names) > 4096:
                self._names.clear()
            names = self._names[image] = image_names(image)
        return names

    def _state(self, pod: Obj, nodes: list[NodeInfo]) -> _ImageState:
        spec = pod.get("spec") or {}
        containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
        images = tuple(self._names_of(c["image"]) for c in containers if c.get("image"))
        snapshot = getattr(self.handle, "snapshot", None)
        infos = snapshot.node_infos if snapshot is not None and snapshot.node_infos else nodes
        return _ImageState(images, len(containers), infos)

    def pre_score(self, state: CycleState, pod: Obj, nodes: list[NodeInfo]) -> Status:
        snapshot = getattr(self.handle, "snapshot", None)
        if snapshot is not None and len(snapshot) and not len(snapshot.table.image_rows):
            return Status.skip()  # no node lists an image: every node would score the same
        image_state = self._state(pod, nodes)
        state.write(PRE_SCORE_KEY, image_state)
        self._last = (state, image_state)
        return SUCCESS

    def score(self, state: CycleState, pod: Obj, node_info: NodeInfo) -> tuple[int, Status]:
        last = self._last
        s = last[1] if last[0] is state else state.get(PRE_SCORE_KEY)
        if s is None:
            s = self._state(pod, [node_info])
            state.write(PRE_SCORE_KEY, s)
            self._last = (state, s)
        held = node_info.images
        total = 0
        if held:
            for names in s.images:
                for name in names:
                    size = held.get(name)
                    if size is not None:
                        total += int(size * (s.num_nodes(names) / (s.total or 1)))
                        break
        return calculate_priority(total, s.num_containers), SUCCESS

    def score_table(self, state: CycleState, pod: Obj, table: NodeTable, rows: np.ndarray) -> np.ndarray | None:
        last = self._last
        s = last[1] if last[0] is state else state.get(PRE_SCORE_KEY)
        if s is None:
            return None
        scores = np.full(len(rows), calculate_priority(0, s.num_containers), np.int64)
        with_images = table.image_rows
        if len(with_images) and s.images:
            infos = table.infos
            for i in np.flatnonzero(np.isin(rows, with_images)).tolist():
                scores[i] = self.score(state, pod, infos[int(rows[i])])[0]
        return scores
