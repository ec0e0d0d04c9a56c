"""What the worker's background loops (jobs, circuit keeper) share: wake early, stop cleanly."""

import asyncio
import contextlib


class WakeableLoop:
    """A loop that pauses between passes until its time is up, it is woken, or it stops."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self._stopping = True
        self._woken.set()

    def next_pass(self) -> bool:
        """Start a pass (wake-ups so far are used up); False once stopped."""
        self._woken.clear()
        return not self._stopping

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout=seconds)
