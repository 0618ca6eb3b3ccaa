"""Child process for the SIGKILL durability test (run as a script, not collected).

Usage: python storage_crash_child.py DB_PATH.  Opens the SQLite store and writes forever:
creates key /crash/<i> and then updates it once; after each write returns, prints one line
"<key> <revision> <value>" and flushes, so every printed line is an acknowledged write.
"""

from __future__ import annotations

import asyncio
import sys

from pybernetes.storage.sqlite import SQLiteStorage


async def main(path: str) -> None:
    store = await SQLiteStorage.open(path)
    out = sys.stdout
    i = 0
    while True:
        key = f"/crash/{i:08d}"
        kv = await store.create(key, b"created-%d" % i)
        out.write(f"{key} {kv.mod_revision} created-{i}\n")
        out.flush()
        kv = await store.update(key, b"updated-%d" % i, expected_revision=kv.mod_revision)
        out.write(f"{key} {kv.mod_revision} updated-{i}\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
