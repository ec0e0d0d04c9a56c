"""Retention: dead deliveries leave the DLQ after ``HERALD_DLQ_RETENTION``; succeeded ones,
with their attempts, and then the events nobody refers to any more, after
``HERALD_RETENTION``.

Purges run in small batches, each its own short transaction over an index, so they never
hold locks that ingest or delivery would wait on. One worker at a time purges (an advisory
lock), whatever the number of workers.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.ids import lower_bound_id

log = logging.getLogger("herald.retention")

ADVISORY_LOCK = 0x4E52414C44  # any constant shared by all workers

# Attempts go with their delivery (ON DELETE CASCADE on attempts.delivery_id).
PURGE_DEAD = text(
    """
    DELETE FROM deliveries WHERE id IN (
        SELECT id FROM deliveries
        WHERE status = 'dead' AND dead_at < :cutoff
        ORDER BY dead_at LIMIT :batch
    )
    """
)

# Ids are creation-time ordered and a schedule ends within hours of creation, so "created
# before the cutoff" stands for "finished before it" and walks the primary key.
PURGE_SUCCEEDED = text(
    """
    DELETE FROM deliveries WHERE id IN (
        SELECT id FROM deliveries
        WHERE id < :bound AND status = 'succeeded'
        ORDER BY id LIMIT :batch
    )
    """
)

PURGE_EVENTS = text(
    """
    DELETE FROM events WHERE id IN (
        SELECT e.id FROM events AS e
        WHERE e.id < :bound
          AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id)
        ORDER BY e.id LIMIT :batch
    )
    """
)

PURGE_JOBS = text(
    """
    DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs
        WHERE id < :bound AND status IN ('succeeded', 'failed')
        ORDER BY id LIMIT :batch
    )
    """
)


@dataclass(frozen=True)
class Purged:
    dead: int = 0
    succeeded: int = 0
    events: int = 0
    jobs: int = 0


async def _drain(
    engine: AsyncEngine, statement: TextClause, params: dict[str, object], batch: int
) -> int:
    total = 0
    while True:
        async with engine.begin() as connection:
            result = await connection.execute(statement, params | {"batch": batch})
        deleted = int(getattr(result, "rowcount", 0))
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let requests in between batches


async def purge(
    engine: AsyncEngine,
    *,
    now: datetime,
    dlq_retention: timedelta,
    retention: timedelta,
    batch: int,
) -> Purged | None:
    """One full pass; None when another worker holds the purge lock."""
    async with engine.connect() as locker:
        if not await locker.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK}
        ):
            return None
        try:
            old_ms = int((now - retention).timestamp() * 1000)
            return Purged(
                dead=await _drain(engine, PURGE_DEAD, {"cutoff": now - dlq_retention}, batch),
                succeeded=await _drain(
                    engine, PURGE_SUCCEEDED, {"bound": lower_bound_id("dlv", old_ms)}, batch
                ),
                events=await _drain(
                    engine, PURGE_EVENTS, {"bound": lower_bound_id("evt", old_ms)}, batch
                ),
                jobs=await _drain(
                    engine, PURGE_JOBS, {"bound": lower_bound_id("job", old_ms)}, batch
                ),
            )
        finally:
            await locker.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK})
            await locker.commit()


class RetentionLoop:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        interval: timedelta,
        dlq_retention: timedelta,
        retention: timedelta,
        batch: int,
    ) -> None:
        self._engine = engine
        self._interval = interval.total_seconds()
        self._dlq_retention = dlq_retention
        self._retention = retention
        self._batch = batch
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            try:
                purged = await purge(
                    self._engine,
                    now=datetime.now().astimezone(),
                    dlq_retention=self._dlq_retention,
                    retention=self._retention,
                    batch=self._batch,
                )
                if purged is not None and purged != Purged():
                    log.info("retention purged %s", purged)
            except Exception:
                log.exception("retention pass failed; next pass in %.0fs", self._interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=self._interval)
