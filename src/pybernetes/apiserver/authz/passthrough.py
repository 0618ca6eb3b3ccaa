"""Pass-through authorization (upstream's AlwaysAllow mode): every request is allowed."""

from __future__ import annotations

from pybernetes.apiserver.pipeline import Attributes, Decision

_ALLOW = Decision(True, "")


class AlwaysAllowAuthorizer:
    async def authorize(self, attrs: Attributes) -> Decision:
        return _ALLOW
