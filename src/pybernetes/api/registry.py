"""The resource registry: every built-in resource, looked up by URL parts or by kind."""

from __future__ import annotations

from collections.abc import Iterable

from pybernetes.api.resource import ResourceDef


class Registry:
    def __init__(self, resources: Iterable[ResourceDef] = ()) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceDef] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceDef] = {}
        self._order: list[ResourceDef] = []
        for res in resources:
            self.add(res)

    def add(self, res: ResourceDef) -> None:
        path = (res.group, res.version, res.resource)
        if path in self._by_path:
            raise ValueError(f"resource registered twice: {res.group_resource}/{res.version}")
        self._by_path[path] = res
        self._by_kind.setdefault((res.group, res.version, res.kind), res)
        self._order.append(res)

    def get(self, group: str, version: str, resource: str) -> ResourceDef | None:
        return self._by_path.get((group, version, resource))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceDef | None:
        return self._by_kind.get((group, version, kind))

    def all(self) -> list[ResourceDef]:
        return list(self._order)

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in registration order, core ("", "v1") first."""
        seen: dict[tuple[str, str], None] = {}
        for res in self._order:
            seen.setdefault((res.group, res.version), None)
        return list(seen)


def builtin_registry() -> Registry:
    """All built-in resources of the API groups this server serves."""
    from pybernetes.api import groups

    return Registry(groups.all_resources())
