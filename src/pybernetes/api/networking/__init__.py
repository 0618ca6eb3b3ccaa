"""The networking.k8s.io/v1 API group: ingresses, ingressclasses, networkpolicies."""

from pybernetes.api.networking.ingresses import INGRESSCLASSES, INGRESSES
from pybernetes.api.networking.networkpolicies import NETWORKPOLICIES
from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = [INGRESSCLASSES, INGRESSES, NETWORKPOLICIES]
