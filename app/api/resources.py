"""What the API process owns for its lifetime: settings, database, Redis, crypto."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from app.catalog import EventTypeCatalog
from app.db import SessionFactory, create_engine, create_session_factory
from app.settings import Settings
from app.signing_secrets import SecretBox


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    redis: ArqRedis
    secret_box: SecretBox
    operator_key: str
    catalog: EventTypeCatalog


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
    try:
        yield Resources(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            redis=redis,
            secret_box=SecretBox(settings.secret_key.get_secret_value()),
            operator_key=operator_key,
            catalog=EventTypeCatalog(),
        )
    finally:
        await redis.aclose()
        await engine.dispose()
