"""Models and migrations must describe the same schema."""

import asyncio
import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import alembic_config, create_database_if_missing, drop_database, upgrade_to_head
from app.models import Base


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    await engine.dispose()
    assert differences == [], "run `alembic revision --autogenerate` and review it"


async def test_every_migration_downgrades_and_upgrades_cleanly(database_url: str) -> None:
    scratch = (
        make_url(database_url)
        .set(database=f"herald_migrations_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    await create_database_if_missing(scratch)
    try:
        await asyncio.to_thread(upgrade_to_head, scratch)
        await asyncio.to_thread(command.downgrade, alembic_config(scratch), "base")
        await asyncio.to_thread(upgrade_to_head, scratch)
    finally:
        await drop_database(scratch)
