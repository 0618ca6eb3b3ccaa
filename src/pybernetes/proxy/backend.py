"""The proxy's backend interface, the logic every table backend shares, and a simulated backend.

``ProxyBackend`` is what the Proxier drives: ``sync(state, config, changed)`` programs the
service ports of ``state`` (``changed``: the ports changed since the last sync, or None for a
full sync; a new config always means a full one), ``programmed()`` reads back what is
programmed, ``check_drift()`` tells whether someone else changed or removed it,
``collect_garbage()`` deletes objects left unused (``garbage_due_in()`` says when), and
``cleanup()`` removes it all.  A failed sync raises ``SyncError`` and changes nothing.

``TableBackend`` holds the shared part: a ``Planner`` (plan.py), a mirror of what it programmed
(``TableState``) and whether the mirror can be trusted (not after a failure: the next full sync
reads the real table first).  Subclasses provide ``_read()`` and ``_apply(transaction)``.
``SimulatedBackend`` keeps its "kernel" in memory as a ``TableState`` that applies transactions
as nftables would (atomically, with the kernel's checks), for tests and for nodes without nft.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pybernetes.proxy.model import PortName
from pybernetes.proxy.plan import Planner
from pybernetes.proxy.rules import RenderConfig
from pybernetes.proxy.table import TableError, TableState, Target, Transaction, frontends
from pybernetes.proxy.tracker import ProxyState

log = logging.getLogger(__name__)


class SyncError(Exception):
    """The backend refused a transaction; nothing was changed."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    full: bool
    operations: int  # commands in the transaction
    seconds: float  # planning + applying


@dataclass(slots=True)
class Programmed:
    """What a backend has programmed: the table as read back, and its frontends in Service terms."""

    table: TableState

    @property
    def exists(self) -> bool:
        return self.table.exists

    @property
    def frontends(self) -> dict[tuple[str, str, int], Target]:
        return frontends(self.table)

    def counts(self) -> dict[str, int]:
        return self.table.counts()


@runtime_checkable
class ProxyBackend(Protocol):
    name: str

    async def sync(self, state: ProxyState, config: RenderConfig,
                   changed: set[PortName] | None) -> SyncResult: ...

    async def programmed(self) -> Programmed: ...

    async def check_drift(self) -> bool: ...

    def garbage_due_in(self) -> float | None: ...

    async def collect_garbage(self) -> None: ...

    def counts(self) -> dict[str, int]: ...

    async def cleanup(self) -> None: ...


class TableBackend:
    """The shared logic of backends that program one table (see the module doc)."""

    name = "table"

    def __init__(self, stale_grace: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.planner = Planner(RenderConfig(), stale_grace, clock)
        self.mirror = TableState()
        self.trusted = False  # the mirror is what the kernel has
        self.config: RenderConfig | None = None
        self.last_transaction: Transaction | None = None

    async def _read(self) -> TableState:
        raise NotImplementedError

    async def _apply(self, transaction: Transaction) -> None:
        """Apply one transaction atomically; raise SyncError if refused."""
        raise NotImplementedError

    async def _run(self, transaction: Transaction) -> None:
        self.last_transaction = transaction
        try:
            await self._apply(transaction)
        except SyncError:
            self.planner.abort()
            self.trusted = False
            raise
        self.planner.commit()
        self.mirror.apply(transaction.ops, validate=False)

    async def sync(self, state: ProxyState, config: RenderConfig,
                   changed: set[PortName] | None) -> SyncResult:
        start = time.perf_counter()
        if config != self.config:
            self.planner.reset(config)
            self.config = config
            changed = None
        if changed is not None and self.trusted:
            transaction = self.planner.incremental(state, changed, self.mirror)
            if transaction:
                await self._run(transaction)
            return SyncResult(False, len(transaction.ops), time.perf_counter() - start)
        existing = self.mirror if self.trusted else await self._read()
        self.mirror = existing
        transaction = self.planner.full(state, existing)
        try:
            await self._run(transaction)
        except SyncError as exc:
            if not existing.exists:
                raise
            log.warning("full sync over the existing table failed (%s); re-creating it", exc)
            self.mirror = existing = await self._read()
            transaction = self.planner.full(state, existing, recreate=True)
            await self._run(transaction)
        self.trusted = True
        return SyncResult(True, len(transaction.ops), time.perf_counter() - start)

    async def programmed(self) -> Programmed:
        return Programmed(await self._read())

    async def check_drift(self) -> bool:
        """Whether the table differs from what was programmed (missing, or changed by someone
        else); the next sync is then a full one."""
        if self.config is None or not self.trusted:
            return False  # nothing programmed yet, or the next sync is a full one anyway
        actual = await self._read()
        if actual == self.mirror:
            return False
        log.warning("the proxy's table %s was changed by someone else: %s", self.config.table,
                    "; ".join(self.mirror.differences(actual, 5)) or "?")
        self.trusted = False
        return True

    def garbage_due_in(self) -> float | None:
        return self.planner.garbage_due_in() if self.trusted else None

    async def collect_garbage(self) -> None:
        if not self.trusted:
            return
        transaction = self.planner.garbage(self.mirror)
        if transaction:
            await self._run(transaction)
        else:
            self.planner.commit()

    def counts(self) -> dict[str, int]:
        return self.mirror.counts()

    def forget(self) -> None:
        self.planner.reset()
        self.mirror = TableState()
        self.trusted = False
        self.config = None


class SimulatedBackend(TableBackend):
    """A backend whose kernel is a ``TableState`` in memory (see the module doc)."""

    name = "simulated"

    def __init__(self, stale_grace: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stale_grace, clock)
        self.kernel = TableState()
        self.transactions = 0

    async def _read(self) -> TableState:
        return self.kernel.copy()

    async def _apply(self, transaction: Transaction) -> None:
        self.transactions += 1
        try:
            self.kernel.apply(transaction.ops, validate=True)
        except TableError as exc:
            raise SyncError(str(exc)) from exc

    async def cleanup(self) -> None:
        self.kernel = TableState()
        self.forget()
