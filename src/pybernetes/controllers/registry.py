"""Which controllers exist: name -> "module:Class", imported only when asked for.

The names are the ``--controllers`` names of ``pybernetes controller-manager`` (upstream's
kube-controller-manager names, without the "-controller" suffix).  Every controller is on by
default; ``select("*,-podgc")`` reads upstream's flag syntax.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pybernetes.controllers.base import Controller

CONTROLLERS: dict[str, str] = {
    "replicaset": "pybernetes.controllers.replicaset:ReplicaSetController",
    "replicationcontroller": "pybernetes.controllers.replicationcontroller:ReplicationControllerController",
    "deployment": "pybernetes.controllers.deployment:DeploymentController",
    "daemonset": "pybernetes.controllers.daemonset:DaemonSetController",
    "statefulset": "pybernetes.controllers.statefulset:StatefulSetController",
    "job": "pybernetes.controllers.job:JobController",
    "cronjob": "pybernetes.controllers.cronjob:CronJobController",
    "ttlafterfinished": "pybernetes.controllers.ttlafterfinished:TTLAfterFinishedController",
    "podgc": "pybernetes.controllers.podgc:PodGCController",
    "garbagecollector": "pybernetes.controllers.garbagecollector:GarbageCollector",
    "namespace": "pybernetes.controllers.namespace:NamespaceController",
    "endpoints": "pybernetes.controllers.endpoints:EndpointsController",
    "endpointslice": "pybernetes.controllers.endpointslice:EndpointSliceController",
    "serviceaccount": "pybernetes.controllers.serviceaccount:ServiceAccountController",
    "nodeipam": "pybernetes.controllers.nodeipam:NodeIpamController",
    "disruption": "pybernetes.controllers.disruption:DisruptionController",
    "persistentvolume-binder": "pybernetes.controllers.persistentvolume:PersistentVolumeBinder",
    "pvc-protection": "pybernetes.controllers.pvcprotection:PVCProtectionController",
    "pv-protection": "pybernetes.controllers.pvprotection:PVProtectionController",
    "local-path-provisioner": "pybernetes.controllers.localpath_provisioner:LocalPathProvisioner",
    "service-lb": "pybernetes.controllers.servicelb:ServiceLBController",
}


def load(name: str) -> type[Controller]:
    try:
        target = CONTROLLERS[name]
    except KeyError:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(CONTROLLERS))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def select(spec: str | list[str] | None) -> list[str]:
    """Upstream's ``--controllers`` list: ``*`` for every controller, ``name`` to add one,
    ``-name`` to leave one out.  Unknown names raise ValueError naming them."""
    if spec is None:
        return list(CONTROLLERS)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [i.lstrip("-") for i in items if i != "*" and i.lstrip("-") not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)}; known: {', '.join(sorted(CONTROLLERS))}")
    chosen: list[str] = []
    if "*" in items:
        chosen = list(CONTROLLERS)
    for item in items:
        if item.startswith("-"):
            if item[1:] in chosen:
                chosen.remove(item[1:])
        elif item != "*" and item not in chosen:
            chosen.append(item)
    return chosen
