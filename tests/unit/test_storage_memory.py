"""The storage contract suite run against MemoryStorage."""

from __future__ import annotations

import pytest
from storage_contract import StorageContract

from pybernetes.storage.memory import MemoryStorage


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    async def make_storage(self):
        made: list[MemoryStorage] = []

        async def make(**options) -> MemoryStorage:
            store = MemoryStorage(**options)
            made.append(store)
            return store

        yield make
        for store in made:
            await store.close()
