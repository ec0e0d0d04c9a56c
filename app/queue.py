"""The contract between the API and the workers: what crosses Redis.

Messages carry no data at all: a wake-up says "there is due work in PostgreSQL". The job id
is deterministic, so a burst of ingests coalesces into one queued wake-up, and losing one
only delays work until a worker's own poll finds it.
"""

import asyncio
import logging

from arq.connections import ArqRedis

WAKE_JOB = "wake"
WAKE_JOB_ID = "herald:wake"
WAKE_TIMEOUT_S = 1.0

log = logging.getLogger("herald.queue")


async def wake_workers(redis: ArqRedis) -> None:
    await redis.enqueue_job(WAKE_JOB, _job_id=WAKE_JOB_ID)


async def wake_quietly(redis: ArqRedis) -> None:
    """After a commit: a failed or slow wake-up must never turn success into an error."""
    try:
        async with asyncio.timeout(WAKE_TIMEOUT_S):
            await wake_workers(redis)
    except Exception as error:
        log.warning("could not wake workers (they will find the work by polling): %s", error)
