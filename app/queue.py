"""The contract between the API and the workers: what crosses Redis.

Messages carry ids only; PostgreSQL holds the record. A job is a wake-up call: losing one
delays work until the sweeper finds it, never loses it.
"""

from arq.connections import ArqRedis

WAKE_JOB = "wake"


def wake_job_id(shard: str) -> str:
    """Deterministic, so a burst of ingests coalesces into one pending wake-up per shard."""
    return f"herald:wake:{shard}"


async def wake_workers(redis: ArqRedis, *, shard: str = "due") -> None:
    await redis.enqueue_job(WAKE_JOB, _job_id=wake_job_id(shard))
