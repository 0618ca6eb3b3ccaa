"""The nftables backend of the service proxy: transactions go to ``nft -f -`` (proxy/nft.py), one
``ip`` table per proxy; the table is read back with ``nft -j list table`` (nftjson.py).

Everything else (planning full and incremental syncs, the mirror of what is programmed, drift
checks, deleting stale chains later) is ``TableBackend``'s.  ``sctp_supported()`` tells whether
the kernel can track and NAT SCTP (its conntrack sysctls exist); the Proxier skips SCTP ports
with a logged reason when it cannot.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from pybernetes.proxy.backend import SyncError, TableBackend
from pybernetes.proxy.nft import Nft, NftError
from pybernetes.proxy.nftjson import table_from_json
from pybernetes.proxy.table import TableState, Transaction

log = logging.getLogger(__name__)

FAMILY = "ip"


def sctp_supported() -> bool:
    """Whether SCTP connections can be tracked (and so NATed) here.  The sysctls are per
    network namespace but the module is the kernel's: the host's /proc tells for all."""
    return os.path.exists("/proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established")


class NftablesBackend(TableBackend):
    name = "nftables"

    def __init__(self, nft: Nft | None = None, table: str | None = None, stale_grace: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(stale_grace, clock)
        self.nft = nft or Nft()
        self._table = table  # the table to clean up even before the first sync
        self.apply_seconds = 0.0  # time spent in nft by the last transaction

    @property
    def table(self) -> str:
        if self.config is not None:
            return self.config.table
        return self._table or "pybernetes-proxy"

    async def _read(self) -> TableState:
        try:
            items = await self.nft.list_table(FAMILY, self.table)
        except NftError as exc:
            raise SyncError(f"cannot read table {self.table}: {exc.message}") from exc
        return table_from_json(items)

    async def _apply(self, transaction: Transaction) -> None:
        script = transaction.script(self.table, FAMILY)
        start = time.perf_counter()
        try:
            await self.nft.apply(script)
        except NftError as exc:
            raise SyncError(_first_lines(exc.message)) from exc
        finally:
            self.apply_seconds = time.perf_counter() - start

    async def cleanup(self) -> None:
        """Delete the table (if there is one) and forget it."""
        await self.nft.delete_table(FAMILY, self.table)
        self.forget()


def _first_lines(text: str, count: int = 6) -> str:
    lines = text.splitlines()
    return "\n".join(lines[:count]) + (f"\n... ({len(lines) - count} more lines)" if len(lines) > count else "")
