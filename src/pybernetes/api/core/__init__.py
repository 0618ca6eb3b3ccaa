"""The core (v1) API group."""

from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = []
