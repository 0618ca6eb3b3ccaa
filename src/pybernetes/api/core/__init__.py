"""The core (v1) API group: one module per resource or small family of resources."""

from pybernetes.api.core.configmaps import CONFIGMAPS, SECRETS
from pybernetes.api.core.endpoints import ENDPOINTS
from pybernetes.api.core.events import EVENTS
from pybernetes.api.core.namespaces import NAMESPACES
from pybernetes.api.core.nodes import NODES
from pybernetes.api.core.pods import PODS
from pybernetes.api.core.policy import LIMITRANGES, RESOURCEQUOTAS
from pybernetes.api.core.replicationcontrollers import PODTEMPLATES, REPLICATIONCONTROLLERS
from pybernetes.api.core.serviceaccounts import SERVICEACCOUNTS
from pybernetes.api.core.services import SERVICES
from pybernetes.api.core.volumes import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = [
    NAMESPACES,
    PODS,
    SERVICES,
    CONFIGMAPS,
    SECRETS,
    NODES,
    ENDPOINTS,
    EVENTS,
    SERVICEACCOUNTS,
    PERSISTENTVOLUMES,
    PERSISTENTVOLUMECLAIMS,
    LIMITRANGES,
    RESOURCEQUOTAS,
    REPLICATIONCONTROLLERS,
    PODTEMPLATES,
]
