"""Small pieces shared by the storage backends: key ranges and the guaranteed-update loop.

``guaranteed_update`` is written once here over the public ``get``/``create``/``update`` of
any backend, so that every backend retries compare-and-swap conflicts the same way.
"""

from __future__ import annotations

import inspect

from pybernetes.storage.interface import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Mutation,
    RevisionConflictError,
    Storage,
)

# A mutate function that keeps conflicting this many times in a row is a bug, not contention.
MAX_ATTEMPTS = 10_000


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with prefix (None: no bound)."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            return prefix[:-1] + chr(last + 1)
        prefix = prefix[:-1]
    return None


async def guaranteed_update(
    storage: Storage, key: str, mutate: Mutation, *, create_if_missing: bool = False
) -> KeyValue | None:
    """Read, mutate, compare-and-swap; on a conflict read again and call mutate again."""
    for _ in range(MAX_ATTEMPTS):
        current = await storage.get(key)
        if current is None and not create_if_missing:
            raise KeyNotFoundError(key)
        new_value = mutate(current)
        if inspect.isawaitable(new_value):
            new_value = await new_value
        if new_value is None:
            return current
        try:
            if current is None:
                return await storage.create(key, new_value)
            return await storage.update(key, new_value, expected_revision=current.mod_revision)
        except (RevisionConflictError, KeyExistsError):
            continue
        except KeyNotFoundError:
            if not create_if_missing:
                raise
            continue
    raise RuntimeError(f"guaranteed_update of {key} did not converge after {MAX_ATTEMPTS} attempts")
