"""Resend, replay and discard at the API level (no worker: the rows tell what happened)."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.conftest import TenantFactory


async def delivery_of_new_event(operator: httpx.AsyncClient, tenant: str) -> str:
    await operator.post("/v1/endpoints", json={"tenant_id": tenant, "url": "https://e.x/"})
    event = await operator.post(
        "/v1/events", json={"tenant_id": tenant, "type": "a.b", "payload": {}}
    )
    detail = (await operator.get(f"/v1/events/{event.json()['id']}")).json()
    return str(detail["deliveries"][0]["id"])


async def set_row(database_url: str, delivery_id: str, assignments: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            text(f"UPDATE deliveries SET {assignments} WHERE id = :id"),  # noqa: S608
            {"id": delivery_id},
        )
    await engine.dispose()


async def test_discard_removes_only_dead_deliveries(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant = str((await make_tenant())["id"])
    delivery = await delivery_of_new_event(operator, tenant)
    assert (await operator.delete(f"/v1/dlq/{delivery}")).status_code == 404

    await set_row(database_url, delivery, "status = 'dead', dead_reason = 'gone', dead_at = now()")
    listed = (await operator.get("/v1/dlq", params={"tenant_id": tenant})).json()["data"]
    assert [d["id"] for d in listed] == [delivery]
    assert (await operator.delete(f"/v1/dlq/{delivery}")).status_code == 204
    assert (await operator.get(f"/v1/deliveries/{delivery}")).status_code == 404
    assert (await operator.get("/v1/dlq", params={"tenant_id": tenant})).json()["data"] == []


async def test_resend_refuses_a_delivery_in_flight_and_restarts_the_chain(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant = str((await make_tenant())["id"])
    delivery = await delivery_of_new_event(operator, tenant)
    await set_row(
        database_url,
        delivery,
        "leased_by = 'elsewhere', lease_expires_at = now() + interval '1 minute'",
    )
    shown = (await operator.get(f"/v1/deliveries/{delivery}")).json()
    assert shown["status"] == "delivering"
    assert (await operator.post(f"/v1/deliveries/{delivery}/resend")).status_code == 409

    await set_row(
        database_url,
        delivery,
        "leased_by = NULL, lease_expires_at = NULL, status = 'dead', dead_reason = 'exhausted',"
        " dead_at = now(), attempts = 5, chain_attempts = 5, next_attempt_at = NULL",
    )
    resent = await operator.post(f"/v1/deliveries/{delivery}/resend")
    assert resent.status_code == 202
    body = resent.json()
    assert (body["status"], body["dead_reason"], body["dead_at"]) == ("pending", None, None)
    assert body["attempts"] == 5  # the log keeps counting; the schedule starts over
    due = datetime.fromisoformat(body["next_attempt_at"])
    assert abs(due - datetime.now(UTC)) < timedelta(seconds=30)


async def test_lists_filter_by_status_and_time(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = str((await make_tenant())["id"])
    delivery = await delivery_of_new_event(operator, tenant)
    pending = await operator.get(
        "/v1/deliveries", params={"tenant_id": tenant, "status": "pending"}
    )
    assert [d["id"] for d in pending.json()["data"]] == [delivery]
    dead = await operator.get("/v1/deliveries", params={"tenant_id": tenant, "status": "dead"})
    assert dead.json()["data"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = await operator.get("/v1/deliveries", params={"tenant_id": tenant, "since": future})
    assert later.json()["data"] == []
    until = await operator.get("/v1/events", params={"tenant_id": tenant, "until": future})
    assert len(until.json()["data"]) == 1
