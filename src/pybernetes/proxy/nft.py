"""Running ``nft``: the one door through which the proxy and the network-policy enforcer touch
nftables.

Scripts go to ``nft -f -`` on stdin, so a whole script is one kernel transaction: it applies
completely or not at all (nft reports the first failing line and changes nothing).  ``Nft`` can
run inside a named network namespace (``ip netns exec NS nft``), which is how tests program
tables without touching the host's.  Reading back uses ``nft -j`` (JSON), parsed with orjson.

Why not a library: the Python bindings of libnftables (``nftables`` in Debian's python3-nftables)
wrap the same command language through ctypes and are not installable into a virtualenv from
PyPI; a subprocess per transaction costs about 3 ms here, which the proxy pays once per sync.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from typing import Any

import orjson


class NftError(Exception):
    """``nft`` refused a script or a command; ``message`` is its stderr."""

    def __init__(self, message: str, script: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.script = script


@dataclass
class Nft:
    binary: str = "nft"
    netns: str | None = None  # run inside this named network namespace
    calls: int = field(default=0, compare=False)  # transactions run (for metrics and tests)

    @staticmethod
    def available(binary: str = "nft") -> bool:
        return shutil.which(binary) is not None

    def _argv(self, *args: str) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, self.binary, *args]

    async def _exec(self, args: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            *self._argv(*args), stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await process.communicate(stdin)
        except BaseException:  # cancelled: a transaction must not commit after its caller gave up
            if process.returncode is None:
                process.kill()
                await asyncio.shield(process.wait())
            raise
        return process.returncode or 0, out, err

    async def apply(self, script: str) -> None:
        """Run ``script`` as one transaction; raise NftError (nothing changed) if nft refuses it."""
        self.calls += 1
        code, out, err = await self._exec(["-f", "-"], script.encode())
        if code != 0:
            raise NftError((err or out).decode(errors="replace").strip(), script)

    async def check(self, script: str) -> None:
        """Parse and evaluate ``script`` without committing it (``nft -c``)."""
        code, out, err = await self._exec(["-c", "-f", "-"], script.encode())
        if code != 0:
            raise NftError((err or out).decode(errors="replace").strip(), script)

    async def list_table(self, family: str, table: str) -> list[dict[str, Any]] | None:
        """The table's objects as nft's JSON ``nftables`` array items, or None if it does not exist."""
        code, out, err = await self._exec(["-j", "list", "table", family, table], None)
        if code != 0:
            text = (err or out).decode(errors="replace")
            if "No such file or directory" in text:
                return None
            raise NftError(text.strip())
        return orjson.loads(out).get("nftables", [])

    async def table_exists(self, family: str, table: str) -> bool:
        code, _, _ = await self._exec(["list", "table", family, table], None)
        return code == 0

    async def delete_table(self, family: str, table: str) -> bool:
        """Delete the table if it exists; True if one was deleted."""
        code, _, _ = await self._exec(["delete", "table", family, table], None)
        return code == 0


def write_sysctl(name: str, value: str) -> bool:
    """Set ``net.ipv4.ip_forward``-style ``name`` to ``value`` if the kernel has it; False if it
    does not exist or cannot be written (not root)."""
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path) as current:
            if current.read().strip() == value:
                return True
        with open(path, "w") as out:
            out.write(value)
        return True
    except OSError:
        return False
