"""The admission chain: mutating plugins, then validating plugins, in configured order.

A plugin is any object with a ``name`` and ``async def admit(attrs)`` (mutating: may change
``attrs.obj`` in place) and/or ``async def validate(attrs)`` (validating: may not change it);
either raises a StatusError to reject the request (upstream wording: a 403 Forbidden or a
422 Invalid, chosen by the plugin).  ``handles(operation)`` filters by operation when a plugin
defines it.  An empty chain costs one attribute test per write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pybernetes.apiserver.pipeline import AdmissionAttributes


class AdmissionChain:
    def __init__(self, plugins: Sequence[Any]) -> None:
        self.plugins = list(plugins)
        self._mutating = [p for p in self.plugins if hasattr(p, "admit")]
        self._validating = [p for p in self.plugins if hasattr(p, "validate")]
        self.empty = not self._mutating and not self._validating

    @staticmethod
    def _applies(plugin: Any, attrs: AdmissionAttributes) -> bool:
        handles = getattr(plugin, "handles", None)
        return handles is None or handles(attrs.operation)

    async def admit(self, attrs: AdmissionAttributes) -> None:
        """Run the mutating plugins."""
        for plugin in self._mutating:
            if self._applies(plugin, attrs):
                await plugin.admit(attrs)

    async def validate(self, attrs: AdmissionAttributes) -> None:
        """Run the validating plugins."""
        for plugin in self._validating:
            if self._applies(plugin, attrs):
                await plugin.validate(attrs)
