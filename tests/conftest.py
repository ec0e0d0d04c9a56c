"""Shared test infrastructure: real PostgreSQL and Redis, one fresh database per test process.

Servers come from HERALD_TEST_DATABASE_URL / HERALD_TEST_REDIS_URL when set, else the ones on
the default ports, else project-local servers started under .herald/test (app.embedded).
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.db import drop_database, migrate
from app.embedded import ResolvedServices, resolve_services
from app.settings import Settings
from tests.support import OPERATOR_KEY

RUN_ID = uuid.uuid4().hex[:10]
STATE_DIR = Path(__file__).resolve().parent.parent / ".herald" / "test"


@pytest.fixture(scope="session")
def services() -> Iterator[ResolvedServices]:
    with resolve_services(
        database_url=os.environ.get("HERALD_TEST_DATABASE_URL"),
        redis_url=os.environ.get("HERALD_TEST_REDIS_URL"),
        state_dir=STATE_DIR,
    ) as resolved:
        yield resolved


@pytest.fixture(scope="session")
async def database_url(services: ResolvedServices) -> AsyncIterator[str]:
    name = f"herald_test_{RUN_ID}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    url = make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    await migrate(url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str, services: ResolvedServices) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=services.redis_url,
        operator_key=OPERATOR_KEY,
        queue_name=f"herald:test:{RUN_ID}:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}",
        allow_cidrs=("127.0.0.1/32",),
        retry_schedule="1s,2s,3s",
        db_pool_size=5,
    )
