"""Engine, sessions and database bootstrap."""

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # No ping per checkout (a round trip on every request): a connection broken by a
        # PostgreSQL restart fails one request and is replaced, and recycling bounds its age.
        pool_recycle=1800,
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(database_url: str, *, database: str | None = None) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def create_database_if_missing(database_url: str) -> bool:
    """Create the database the URL names; True when it had to be created."""
    name = make_url(database_url).database
    if not name:
        raise ValueError("the database URL names no database")
    admin = await asyncpg.connect(asyncpg_dsn(database_url, database="postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await admin.close()


async def drop_database(database_url: str) -> None:
    name = make_url(database_url).database
    admin = await asyncpg.connect(asyncpg_dsn(database_url, database="postgres"))
    try:
        quoted = '"' + (name or "").replace('"', '""') + '"'
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ALEMBIC_INI.parent / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    """Run migrations; alembic drives its own event loop, so call this outside of one."""
    command.upgrade(alembic_config(database_url), "head")


async def migrate(database_url: str) -> None:
    await create_database_if_missing(database_url)
    await asyncio.to_thread(upgrade_to_head, database_url)
