from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.ids import new_id
from tests.integration.conftest import TenantFactory


async def test_endpoint_stats_count_rate_and_latency(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = (
        await operator.post(
            "/v1/endpoints", json={"tenant_id": tenant, "url": "https://example.com/"}
        )
    ).json()["id"]
    event = (
        await operator.post("/v1/events", json={"tenant_id": tenant, "type": "a.b", "payload": {}})
    ).json()["id"]
    old_ms = int((datetime.now(UTC) - timedelta(days=3)).timestamp() * 1000)
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        rows = [("succeeded", None)] * 6 + [("dead", None)] * 2 + [("succeeded", old_ms)] * 5
        for status, at_ms in rows:
            await connection.execute(
                text(
                    "INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type,"
                    " status) VALUES (:id, :tenant, :event, :endpoint, 'a.b', :status)"
                ),
                {
                    "id": new_id("dlv", at_ms=at_ms),
                    "tenant": tenant,
                    "event": event,
                    "endpoint": endpoint,
                    "status": status,
                },
            )
        for duration, status_code in [(10, 200)] * 8 + [(100, 500), (1000, 503)]:
            await connection.execute(
                text(
                    "INSERT INTO attempts (id, tenant_id, delivery_id, endpoint_id, number,"
                    " trigger, url, request_headers, response_status, duration_ms)"
                    " SELECT :id, :tenant, id, CAST(:endpoint AS text), 1, 'scheduled', 'u',"
                    " '{}', :code, :ms"
                    " FROM deliveries WHERE endpoint_id = CAST(:endpoint AS text) LIMIT 1"
                ),
                {
                    "id": new_id("att"),
                    "tenant": tenant,
                    "endpoint": endpoint,
                    "code": status_code,
                    "ms": duration,
                },
            )
    await engine.dispose()

    stats = (await operator.get(f"/v1/endpoints/{endpoint}/stats")).json()
    # The event's own delivery (pending) plus the 8 rows of the last day; the old 5 are outside.
    assert stats["deliveries"] | {"total": 0} == {
        "pending": 1,
        "delivering": 0,
        "succeeded": 6,
        "dead": 2,
        "held": 0,
        "total": 0,
    }
    assert stats["deliveries"]["total"] == 9
    assert stats["attempts"] == 10
    assert stats["success_rate"] == 0.8
    assert stats["latency_ms"]["p50"] == 10
    assert 100 < stats["latency_ms"]["p95"] <= 1000

    week = await operator.get(
        f"/v1/endpoints/{endpoint}/stats",
        params={"since": (datetime.now(UTC) - timedelta(days=7)).isoformat()},
    )
    assert week.json()["deliveries"]["succeeded"] == 11
    empty = await operator.get(
        f"/v1/endpoints/{endpoint}/stats", params={"until": "2020-01-01T00:00:00Z"}
    )
    assert empty.json()["attempts"] == 0
    assert empty.json()["success_rate"] is None
    backwards = await operator.get(
        f"/v1/endpoints/{endpoint}/stats",
        params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 422
