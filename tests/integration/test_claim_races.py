"""A claim that holds a delivery while a probe closes the circuit: nothing may stay held."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.db import asyncpg_dsn, drop_database, migrate
from app.ids import new_id
from app.settings import Settings
from tests.support import eventually
from worker.circuits import Result, settle_probes
from worker.claim import Claimer
from worker.limits import Admission, Limits, Wanted


class PausingLimits(Limits):
    """Real limits that let the test run something between a claim's lock and its writes."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(
            redis, max_in_flight=20, lease=timedelta(seconds=4), burst=timedelta(seconds=0.1)
        )
        self.reached = asyncio.Event()
        self.resume = asyncio.Event()

    async def admit(self, wanted: Sequence[Wanted]) -> dict[str, Admission]:
        self.reached.set()
        await self.resume.wait()
        return await super().admit(wanted)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A database of its own: a claim takes whatever is due, other tests' deliveries too."""
    shared = make_url(database_url)
    url = shared.set(database=f"{shared.database}_race").render_as_string(hide_password=False)
    await migrate(url)
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=2, max_size=3)
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(url)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.effective_redis_url)
    yield client
    await client.aclose()


async def half_open_endpoint_with_a_due_delivery(pool: asyncpg.Pool) -> tuple[str, str]:
    tenant, endpoint, event, delivery = new_id("ten"), new_id("ep"), new_id("evt"), new_id("dlv")
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("INSERT INTO tenants (id, name) VALUES ($1, 'race')", tenant)
        await connection.execute(
            "INSERT INTO endpoints (id, tenant_id, url, subscriptions, circuit_state,"
            " circuit_opened_at, circuit_next_probe_at)"
            " VALUES ($1, $2, 'http://127.0.0.1:9/hook', ARRAY['*'], 'half_open', now(), now())",
            endpoint,
            tenant,
        )
        await connection.execute(
            "INSERT INTO events (id, tenant_id, type, payload) VALUES ($1, $2, 'a.b', '{}')",
            event,
            tenant,
        )
        await connection.execute(
            "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type)"
            " VALUES ($1, $2, $3, $4, 'a.b')",
            delivery,
            tenant,
            event,
            endpoint,
        )
    return endpoint, delivery


async def test_a_delivery_held_while_the_probe_closes_the_circuit_is_released(
    pool: asyncpg.Pool, redis: Redis, settings: Settings
) -> None:
    endpoint, delivery = await half_open_endpoint_with_a_due_delivery(pool)
    limits = PausingLimits(redis)
    claimer = Claimer(pool=pool, limits=limits, lease=timedelta(seconds=4), per_endpoint=20)

    # The claim sees a half-open circuit and a delivery that is not the probe: it will hold
    # it, and has taken the endpoint's share lock when it pauses.
    claiming = asyncio.create_task(claimer.claim(10, lease="race:1"))
    await asyncio.wait_for(limits.reached.wait(), timeout=5)

    # Meanwhile the probe succeeds: the flusher closes the circuit (it must wait for the
    # claim's lock) and releases what is held.
    async def close_by_probe() -> None:
        async with pool.acquire() as connection, connection.transaction():
            probe = {
                "id": new_id("dlv"),
                "endpoint_id": endpoint,
                "trigger": "probe",
                "circuit_state": "half_open",
                "circuit_breaker": None,
                "circuit_reopens": 0,
            }
            closed, _ = await settle_probes(connection, [Result(probe, True)], settings)
            assert closed == [endpoint]

    closing = asyncio.create_task(close_by_probe())

    async def waiting_on_locks() -> int:
        async with pool.acquire() as connection:
            waiting: int = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return waiting

    # The close has reached the endpoint's lock and waits there for the claim.
    await eventually(waiting_on_locks, lambda waiting: waiting == 1, timeout=5)
    assert not closing.done()
    limits.resume.set()
    claim = await asyncio.wait_for(claiming, timeout=5)
    await asyncio.wait_for(closing, timeout=5)

    assert claim.rows == []
    async with pool.acquire() as connection:
        state = await connection.fetchval(
            "SELECT circuit_state FROM endpoints WHERE id = $1", endpoint
        )
        status = await connection.fetchval("SELECT status FROM deliveries WHERE id = $1", delivery)
    assert state == "closed"
    assert status == "pending"
