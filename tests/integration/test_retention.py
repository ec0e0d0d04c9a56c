"""Retention with an injected clock: old data goes in small batches, recent data stays,
and ingest keeps answering while 100k rows are purged."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import asyncpg_dsn
from app.ids import new_id
from tests.integration.conftest import TenantFactory
from worker.retention import purge

OLD_ROWS = 100_000
NOW = datetime.now(UTC) + timedelta(days=10)  # the clock, moved ten days ahead


async def test_old_rows_go_recent_rows_stay_and_ingest_goes_on(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = (
        await operator.post("/v1/endpoints", json={"tenant_id": tenant, "url": "https://e.x/"})
    ).json()["id"]
    long_ago = datetime.now(UTC) - timedelta(days=40)
    old_ms = int(long_ago.timestamp() * 1000)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        old_event, recent_event = new_id("evt", at_ms=old_ms), new_id("evt")
        await connection.copy_records_to_table(
            "events",
            records=[
                (old_event, tenant, "a.b", json.dumps({})),
                (recent_event, tenant, "a.b", "{}"),
            ],
            columns=["id", "tenant_id", "type", "payload"],
        )

        def delivery(
            event: str, at_ms: int | None, status: str, dead_at: datetime | None
        ) -> tuple[object, ...]:
            return (new_id("dlv", at_ms=at_ms), tenant, event, endpoint, "a.b", status, dead_at)

        old = [delivery(old_event, old_ms, "succeeded", None) for _ in range(OLD_ROWS)]
        old_dead = delivery(old_event, old_ms, "dead", datetime.now(UTC) - timedelta(days=25))
        recent = [
            delivery(recent_event, None, "succeeded", None),
            delivery(recent_event, None, "dead", datetime.now(UTC) - timedelta(days=1)),
            delivery(old_event, old_ms, "pending", None),  # old, but not finished: kept
        ]
        await connection.copy_records_to_table(
            "deliveries",
            records=[*old, old_dead, *recent],
            columns=[
                "id",
                "tenant_id",
                "event_id",
                "endpoint_id",
                "event_type",
                "status",
                "dead_at",
            ],
        )
        await connection.execute(
            "INSERT INTO attempts (id, tenant_id, delivery_id, endpoint_id, number, trigger,"
            " url, request_headers, duration_ms) VALUES ($1, $2, $3, $4, 1, 'scheduled', 'u',"
            " '{}', 1)",
            new_id("att", at_ms=old_ms),
            tenant,
            old[0][0],
            endpoint,
        )

        engine = create_async_engine(database_url)
        purging = asyncio.create_task(
            purge(
                engine,
                now=NOW,
                dlq_retention=timedelta(days=30),
                retention=timedelta(days=30),
                batch=1000,
            )
        )
        accepted = 0
        while not purging.done():
            response = await operator.post(
                "/v1/events", json={"tenant_id": tenant, "type": "a.b", "payload": {}}
            )
            assert response.status_code == 202
            accepted += 1
        purged = await purging
        await engine.dispose()

        assert purged is not None
        assert purged.succeeded == OLD_ROWS
        assert purged.dead == 1
        assert accepted > 0
        remaining = {
            row["id"]: row["status"]
            for row in await connection.fetch(
                "SELECT id, status FROM deliveries WHERE endpoint_id = $1", endpoint
            )
        }
        assert {recent_id for recent_id, *_ in recent} <= set(remaining)
        assert old_dead[0] not in remaining
        assert not set(remaining) & {row[0] for row in old}
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM attempts WHERE delivery_id = $1", old[0][0]
            )
            == 0
        )
        # The old event still has its pending delivery, so its payload stays too.
        assert (
            await connection.fetchval("SELECT count(*) FROM events WHERE id = $1", old_event) == 1
        )
    finally:
        await connection.close()
