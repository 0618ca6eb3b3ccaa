"""Polling with a deadline for async tests: ``await poll(predicate, within, what)`` calls the
async ``predicate`` until it returns something truthy (that value) and fails the test naming
``what`` once ``within`` seconds have passed.  Tests never sleep a fixed time for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def poll(predicate: Callable[[], Awaitable[Any]], within: float = 10.0, what: str = "condition",
               interval: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(interval)
