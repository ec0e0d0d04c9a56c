"""What the API process owns for its lifetime: settings, database, Redis, crypto."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog import EventTypeCatalog
from app.db import SessionFactory, create_engine, create_session_factory
from app.queue import Waker
from app.settings import Settings
from app.signing_secrets import SecretBox

log = logging.getLogger("herald.api")


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    redis: ArqRedis
    secret_box: SecretBox
    operator_key: str
    catalog: EventTypeCatalog
    waker: Waker


@asynccontextmanager
async def open_resources(settings: Settings, *, operator_key: str) -> AsyncIterator[Resources]:
    engine = create_engine(settings)
    # No connection is made here: the API must start, and accept events, while Redis is down
    # (PostgreSQL is the record; workers find the work by polling). /readyz reports it.
    redis = ArqRedis(
        connection_pool=ConnectionPool.from_url(
            settings.effective_redis_url, socket_connect_timeout=1, socket_timeout=1
        ),
        default_queue_name=settings.queue_name,
    )
    await _warm(engine, settings.db_pool_size)
    waker = Waker(redis)
    waker.start()
    try:
        yield Resources(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            redis=redis,
            secret_box=SecretBox(settings.secret_key.get_secret_value()),
            operator_key=operator_key,
            catalog=EventTypeCatalog(),
            waker=waker,
        )
    finally:
        await waker.close()
        await redis.aclose()
        await engine.dispose()


async def _warm(engine: AsyncEngine, connections: int) -> None:
    """Open the pool before the first request: otherwise the first burst pays for connects."""

    async def one() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        await asyncio.gather(*(one() for _ in range(connections)))
    except (OSError, SQLAlchemyError) as error:
        # Not fatal: /readyz reports the database, and the pool connects on demand.
        log.warning("could not open database connections at start: %s", error)
