"""The contract between the API and the workers: what crosses Redis.

Messages carry no data at all: a wake-up says "there is due work in PostgreSQL". The job id
is deterministic per queue, so a burst of ingests coalesces into one queued wake-up, and
losing one only delays work until a worker's own poll finds it.
"""

import asyncio
import contextlib
import logging

from arq.connections import ArqRedis

WAKE_JOB = "wake"
WAKE_TIMEOUT_S = 1.0

log = logging.getLogger("herald.queue")


def wake_job_id(queue_name: str) -> str:
    return f"{queue_name}:wake"


async def wake_workers(redis: ArqRedis) -> None:
    await redis.enqueue_job(WAKE_JOB, _job_id=wake_job_id(redis.default_queue_name))


class Waker:
    """Wakes workers from one background task per process, never from the request path.

    A request only raises a flag; the task sends one wake-up for every burst of flags, so
    Redis sees at most one enqueue in flight per API process however high the ingest rate,
    and a slow or absent Redis never delays an answer.
    """

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis
        self._requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="herald-waker")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._requested.set()

    async def _run(self) -> None:
        while True:
            await self._requested.wait()
            self._requested.clear()
            try:
                async with asyncio.timeout(WAKE_TIMEOUT_S):
                    await wake_workers(self._redis)
            except Exception as error:
                log.warning("could not wake workers (they will poll): %s", error)
