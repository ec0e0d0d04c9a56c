"""The worker's liveness: a heartbeat file written while PostgreSQL and Redis answer.

A probe in the same container (``herald worker-health``) reads the file's age and verdict,
so it sees this very process, not just some worker sharing the queue.
"""

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

import asyncpg
from arq.connections import ArqRedis

from app.settings import Settings

log = logging.getLogger("herald.worker")

HEARTBEAT_INTERVAL_S = 5.0


class Heartbeat:
    def __init__(self, *, path: Path, pool: asyncpg.Pool, redis: ArqRedis) -> None:
        self._path = path
        self._pool = pool
        self._redis = redis
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            checks = {"database": await self._check_database(), "redis": await self._check_redis()}
            try:
                self._path.write_text(json.dumps({"time": time.time(), **checks}))
            except OSError as error:
                log.warning("cannot write heartbeat %s: %s", self._path, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=HEARTBEAT_INTERVAL_S)

    async def _check_database(self) -> str:
        try:
            async with asyncio.timeout(3), self._pool.acquire() as connection:
                await connection.fetchval("SELECT 1")
        except Exception as error:
            return f"unreachable: {type(error).__name__}"
        return "ok"

    async def _check_redis(self) -> str:
        try:
            async with asyncio.timeout(3):
                await self._redis.ping()
        except Exception as error:
            return f"unreachable: {type(error).__name__}"
        return "ok"


def heartbeat_problem(settings: Settings, *, max_age: float) -> str | None:
    """Why the worker on this host is not healthy, or None when it is."""
    try:
        beat = json.loads(settings.worker_heartbeat_file.read_text())
    except (OSError, ValueError):
        return "no heartbeat: is a worker running here?"
    age = time.time() - float(beat.get("time", 0))
    if age > max_age:
        return f"last heartbeat {age:.0f}s ago"
    # Deliveries need PostgreSQL only: without Redis a worker still finds work by polling,
    # so a Redis outage must not make an orchestrator restart healthy workers.
    if (database := beat.get("database")) != "ok":
        return f"database {database}"
    return None
