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


def _redis_index() -> str:
    """Each xdist worker gets its own Redis database, so flushing one disturbs no other."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return str(int(worker.removeprefix("gw")) + 2) if worker.startswith("gw") else "1"


@pytest.fixture(scope="session")
def settings(database_url: str, services: ResolvedServices) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=services.redis_url.rsplit("/", 1)[0] + "/" + _redis_index(),
        operator_key=OPERATOR_KEY,
        queue_name=f"herald:test:{RUN_ID}",
        allow_cidrs=("127.0.0.1/32",),
        retry_schedule="0.5s,1s,1.5s,2s",
        request_timeout="2s",
        worker_lease="4s",
        worker_idle_poll="0.2s",
        worker_shutdown_grace="2s",
        circuit_cooldown="0.5s",
        circuit_max_cooldown="2s",
        db_pool_size=5,
    )
