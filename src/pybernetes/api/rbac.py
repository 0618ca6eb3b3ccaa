"""The rbac API group (placeholder until its strategies land)."""

from pybernetes.api.resource import ResourceDef

RESOURCES: list[ResourceDef] = []
