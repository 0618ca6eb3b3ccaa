"""The nftables proxy backend passes the backend contract (proxy_backend_contract.py), each
backend in a fresh network namespace of its own (root and nft needed; skipped otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_backend_contract import CONFIG, BackendContract  # noqa: E402

from pybernetes.proxy.nft import Nft  # noqa: E402
from pybernetes.proxy.nftables import NftablesBackend, sctp_supported  # noqa: E402
from pybernetes.proxy.table import to_script  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Nft.available() or not sctp_supported(),
                                reason="needs root, nft and a kernel with SCTP conntrack")


class TestNftablesBackend(BackendContract):
    @pytest.fixture
    def make_backend(self):
        namespaces: list[str] = []

        def make(stale_grace: float = 0.0) -> NftablesBackend:
            name = f"pybct-{uuid.uuid4().hex[:8]}"
            subprocess.run(["ip", "netns", "add", name], check=True)
            namespaces.append(name)
            return NftablesBackend(Nft(netns=name), table=CONFIG.table, stale_grace=stale_grace)

        yield make
        for name in namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False)

    @pytest.fixture
    def tamper(self):
        async def tamper(backend: NftablesBackend, ops: list) -> None:
            await backend.nft.apply(to_script(ops, backend.table))
        return tamper
