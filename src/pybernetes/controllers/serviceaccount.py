"""The ServiceAccount controller (upstream pkg/controller/serviceaccount): every active
namespace has a ``default`` ServiceAccount.

Keys are namespace names.  A namespace added or updated, or a ServiceAccount the controller
ensures being deleted, enqueues the namespace; ``sync`` creates the missing accounts unless
the namespace is not Active (a Terminating namespace gets none).  The accounts to ensure are
the option ``service_accounts`` (default ``["default"]``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pybernetes.client.cache import object_of
from pybernetes.client.errors import AlreadyExists, ApiError
from pybernetes.controllers.base import Controller, Obj, key_of
from pybernetes.controllers.endpoints import namespace_terminating

NAMESPACES = "/v1/namespaces"
SERVICE_ACCOUNTS = "/v1/serviceaccounts"
DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(Controller):
    name: ClassVar[str] = "serviceaccount"
    component: ClassVar[str] = "serviceaccount-controller"

    def setup(self) -> None:
        self.accounts = tuple(self.options.get("service_accounts") or DEFAULT_ACCOUNTS)
        self.namespaces = self.informer(NAMESPACES)
        self.service_accounts = self.informer(SERVICE_ACCOUNTS)
        self.namespaces.add_event_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.service_accounts.add_event_handler(None, None, self._account_deleted)

    def _account_deleted(self, item: Any) -> None:
        account = object_of(item)
        meta = account.get("metadata") or {}
        if meta.get("name") in self.accounts and meta.get("namespace"):
            self.enqueue(meta["namespace"])

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.indexer.get(key)
        if namespace is None:
            return
        if (namespace.get("status") or {}).get("phase", "Active") != "Active" or \
                (namespace.get("metadata") or {}).get("deletionTimestamp"):
            return
        failures: list[str] = []
        for name in self.accounts:
            if self.service_accounts.indexer.get(f"{key}/{name}") is not None:
                continue
            account: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": name, "namespace": key}}
            try:
                await self.client.create(SERVICE_ACCOUNTS, account, key)
            except AlreadyExists:
                continue
            except ApiError as exc:
                if not namespace_terminating(exc):
                    failures.append(f"{key_of(account)}: {exc}")
        if failures:
            raise RuntimeError("could not create service accounts: " + "; ".join(failures))
