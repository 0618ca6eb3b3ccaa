"""The simulated proxy backend passes the backend contract (proxy_backend_contract.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_backend_contract import BackendContract  # noqa: E402

from pybernetes.proxy.backend import SimulatedBackend  # noqa: E402


class TestSimulatedBackend(BackendContract):
    @pytest.fixture
    def make_backend(self):
        return lambda stale_grace=0.0: SimulatedBackend(stale_grace=stale_grace)

    @pytest.fixture
    def tamper(self):
        async def tamper(backend: SimulatedBackend, ops: list) -> None:
            backend.kernel.apply(ops, validate=True)
        return tamper
