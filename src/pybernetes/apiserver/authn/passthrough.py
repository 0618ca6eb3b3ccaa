"""Pass-through authentication: every request is the cluster admin.

Only safe because the server listens on 127.0.0.1 until the security issue adds TLS client
certificates and tokens; it mirrors what upstream's insecure port once granted.
"""

from __future__ import annotations

from aiohttp import web

from pybernetes.apiserver.pipeline import UserInfo

ADMIN = UserInfo(name="system:admin", groups=("system:masters", "system:authenticated"))


class PassThroughAuthenticator:
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        return ADMIN
