"""Helpers shared by the Faust-layer tests (import as `from faust_testutil import run`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sabot import kafka as sk

BOOTSTRAP = sk.DEFAULT_BOOTSTRAP


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    """Runs ``coro`` on a fresh event loop, bounded by ``timeout`` seconds."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_until(
    pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Polls ``pred`` on the loop until it is true; fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
