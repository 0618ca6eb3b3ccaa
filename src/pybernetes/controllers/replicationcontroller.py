"""The ReplicationController controller (``replicationcontroller``): the ReplicaSet shell
(``replicaset.ReplicaSetLikeController``) on core/v1 ReplicationControllers.

What differs from a ReplicaSet is only the shape: the selector is a plain label map
(``spec.selector``, read here as a LabelSelector's matchLabels), the owner reference is
``v1``/``ReplicationController``, and the events come from ``replication-controller``.
Everything else — expectations, slow-start batches, adoption and release, the deletion
order, the status with its ReplicaFailure condition — is the same, as upstream runs its RC
controller through the ReplicaSet controller's code.
"""

from __future__ import annotations

from typing import ClassVar

from pybernetes.controllers.base import Obj
from pybernetes.controllers.replicaset import ReplicaSetLikeController


class ReplicationControllerController(ReplicaSetLikeController):
    name: ClassVar[str] = "replicationcontroller"
    component: ClassVar[str] = "replication-controller"
    resource: ClassVar[str] = "/v1/replicationcontrollers"
    api_version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "ReplicationController"

    def selector_of(self, owner: Obj) -> Obj | None:
        selector = (owner.get("spec") or {}).get("selector")
        if not isinstance(selector, dict):
            return None
        return {"matchLabels": dict(selector)}
