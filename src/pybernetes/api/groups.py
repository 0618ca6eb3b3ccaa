"""The API groups this server serves, each a module exporting RESOURCES."""

from __future__ import annotations

from pybernetes.api.resource import ResourceDef


def all_resources() -> list[ResourceDef]:
    from pybernetes.api import (
        apps,
        autoscaling,
        batch,
        coordination,
        core,
        discovery,
        events,
        networking,
        policy,
        rbac,
        scheduling,
        storageclasses,
    )

    modules = (
        core,
        apps,
        batch,
        autoscaling,
        coordination,
        discovery,
        events,
        networking,
        policy,
        rbac,
        scheduling,
        storageclasses,
    )
    resources: list[ResourceDef] = []
    for module in modules:
        resources.extend(module.RESOURCES)
    return resources
