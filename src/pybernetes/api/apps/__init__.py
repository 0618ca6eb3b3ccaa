"""The apps/v1 API group: deployments, replicasets, statefulsets, daemonsets,
controllerrevisions (one module each; shared workload policy in ``common``)."""

from pybernetes.api.apps.controllerrevisions import CONTROLLERREVISIONS
from pybernetes.api.apps.daemonsets import DAEMONSETS
from pybernetes.api.apps.deployments import DEPLOYMENTS
from pybernetes.api.apps.replicasets import REPLICASETS
from pybernetes.api.apps.statefulsets import STATEFULSETS
from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = [
    CONTROLLERREVISIONS,
    DAEMONSETS,
    DEPLOYMENTS,
    REPLICASETS,
    STATEFULSETS,
]
