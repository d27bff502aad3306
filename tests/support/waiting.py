"""A barrier for in-process tests: let the other tasks run until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], bool], *, timeout_s: float = 5, what: str = "") -> None:
    """Yield to the event loop until `condition()` is true; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what or condition}"
        await asyncio.sleep(0.001)
