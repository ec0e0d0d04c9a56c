"""Constants and small helpers shared by the test layers."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

OPERATOR_KEY = "hrk_test_operator_" + "k" * 32


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 20,
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until ``done`` holds for its result; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s; last result: {result!r}")
        await asyncio.sleep(interval)
