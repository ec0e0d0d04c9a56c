"""The contract between the API and the workers: what crosses Redis.

Messages carry no data at all: a wake-up says "there is due work in PostgreSQL". The job id
is deterministic, so a burst of ingests coalesces into one queued wake-up, and losing one
only delays work until a worker's own poll finds it.
"""

from arq.connections import ArqRedis

WAKE_JOB = "wake"
WAKE_JOB_ID = "herald:wake"


async def wake_workers(redis: ArqRedis) -> None:
    await redis.enqueue_job(WAKE_JOB, _job_id=WAKE_JOB_ID)
