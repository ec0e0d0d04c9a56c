"""The circuit breaker at the API: state on the endpoint, manual reset, enabling and disabling.

No worker runs here: the rows tell what happened. Tests put endpoints and deliveries into a
given state with SQL, call the API, and read the rows back.
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from app import operational
from app.api.main import create_app
from app.circuit import counters_key
from app.db import asyncpg_dsn
from app.settings import Settings
from app.signing_secrets import SecretBox
from tests.integration.conftest import KeyFactory, TenantFactory
from tests.support import OPERATOR_KEY, serving

OPERATIONAL_URL = "https://ops.example.com/herald"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        yield connection
    finally:
        await connection.close()


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def new_endpoint(client: httpx.AsyncClient, tenant_id: str | None) -> str:
    body: dict[str, Any] = {"url": "https://example.com/hook"}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    response = await client.post("/v1/endpoints", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def send_events(client: httpx.AsyncClient, tenant_id: str, count: int) -> None:
    for number in range(count):
        response = await client.post(
            "/v1/events",
            json={"tenant_id": tenant_id, "type": "order.created", "payload": {"n": number}},
        )
        assert response.status_code == 202, response.text


async def deliveries_of(db: asyncpg.Connection, endpoint_id: str) -> list[str]:
    """The endpoint's deliveries, in the order they were created."""
    rows = await db.fetch(
        "SELECT id FROM deliveries WHERE endpoint_id = $1 ORDER BY created_at, id", endpoint_id
    )
    return [row["id"] for row in rows]


async def open_circuit(
    db: asyncpg.Connection,
    endpoint_id: str,
    *,
    failures: int,
    opened_at: datetime,
    next_probe_at: datetime,
    state: str = "open",
) -> None:
    await db.execute(
        "UPDATE endpoints SET circuit_state = $2, circuit_failures = $3, circuit_opened_at = $4,"
        " circuit_next_probe_at = $5, circuit_reopens = 2 WHERE id = $1",
        endpoint_id,
        state,
        failures,
        opened_at,
        next_probe_at,
    )


async def set_delivery(
    db: asyncpg.Connection,
    delivery_id: str,
    *,
    status: str,
    due: datetime | None,
    attempts: int = 0,
    leased_until: datetime | None = None,
) -> None:
    await db.execute(
        "UPDATE deliveries SET status = $2, next_attempt_at = $3, attempts = $4,"
        " chain_attempts = $4, leased_by = CASE WHEN $5::timestamptz IS NULL THEN NULL"
        " ELSE 'worker-elsewhere' END, lease_expires_at = $5 WHERE id = $1",
        delivery_id,
        status,
        due,
        attempts,
        leased_until,
    )


async def delivery_rows(db: asyncpg.Connection, ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await db.fetch(
        "SELECT id, status, next_attempt_at, attempts, chain_attempts FROM deliveries"
        " WHERE id = ANY($1::text[])",
        ids,
    )
    return {row["id"]: row for row in rows}


def circuit_of(body: dict[str, Any]) -> dict[str, Any]:
    circuit: dict[str, Any] = body["circuit"]
    return circuit


def parsed(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def test_reset_closes_an_open_circuit_and_releases_held_deliveries_in_due_order(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    db: asyncpg.Connection,
    settings: Settings,
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant)
    await send_events(operator, tenant, 4)
    first, second, third, fourth = await deliveries_of(db, endpoint)
    now = now_s()
    opened_at, next_probe_at = now - timedelta(minutes=10), now + timedelta(minutes=5)
    await open_circuit(db, endpoint, failures=7, opened_at=opened_at, next_probe_at=next_probe_at)
    # Due times deliberately not in creation order; attempts as earlier failures left them.
    due = {
        first: now + timedelta(minutes=2),
        second: now - timedelta(minutes=30),
        third: now - timedelta(minutes=1),
    }
    for number, (delivery, at) in enumerate(due.items(), start=1):
        await set_delivery(db, delivery, status="held", due=at, attempts=number)
    # Not held (it succeeded before the circuit opened): a reset leaves it alone.
    await set_delivery(db, fourth, status="succeeded", due=None, attempts=1)
    redis = Redis.from_url(str(settings.redis_url))
    try:
        await redis.hset(counters_key(endpoint), "c", 7)

        shown = await operator.get(f"/v1/endpoints/{endpoint}")
        assert shown.status_code == 200
        circuit = circuit_of(shown.json())
        assert circuit["state"] == "open"
        assert circuit["failures"] == 7
        assert parsed(circuit["opened_at"]) == opened_at
        assert parsed(circuit["next_probe_at"]) == next_probe_at
        held = (await operator.get(f"/v1/deliveries/{second}")).json()
        assert held["status"] == "held"
        assert parsed(held["next_attempt_at"]) == due[second]

        reset = await operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
        assert reset.status_code == 200, reset.text
        body = reset.json()
        assert body["id"] == endpoint
        assert body["enabled"] is True
        closed = {"state": "closed", "failures": 0, "opened_at": None, "next_probe_at": None}
        assert circuit_of(body) == closed
        assert circuit_of((await operator.get(f"/v1/endpoints/{endpoint}")).json()) == closed
        assert await redis.exists(counters_key(endpoint)) == 0
    finally:
        await redis.aclose()

    assert await db.fetchval("SELECT circuit_reopens FROM endpoints WHERE id = $1", endpoint) == 0
    rows = await delivery_rows(db, [first, second, third, fourth])
    for number, (delivery, at) in enumerate(due.items(), start=1):
        row = rows[delivery]
        assert row["status"] == "pending"
        assert row["next_attempt_at"] == at
        assert (row["attempts"], row["chain_attempts"]) == (number, number)
    assert (rows[fourth]["status"], rows[fourth]["attempts"]) == ("succeeded", 1)
    drain_order = await db.fetch(
        "SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'"
        " ORDER BY next_attempt_at",
        endpoint,
    )
    assert [row["id"] for row in drain_order] == [second, third, first]
    spent = await db.fetchval("SELECT count(*) FROM attempts WHERE endpoint_id = $1", endpoint)
    assert spent == 0
    released = (await operator.get(f"/v1/deliveries/{second}")).json()
    assert released["status"] == "pending"
    assert parsed(released["next_attempt_at"]) == due[second]


async def test_reset_touches_only_its_endpoint(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    reset_one, other = await new_endpoint(operator, tenant), await new_endpoint(operator, tenant)
    await send_events(operator, tenant, 1)
    now = now_s()
    for endpoint in (reset_one, other):
        await open_circuit(
            db, endpoint, failures=5, opened_at=now, next_probe_at=now + timedelta(minutes=1)
        )
        (delivery,) = await deliveries_of(db, endpoint)
        await set_delivery(db, delivery, status="held", due=now)

    assert (await operator.post(f"/v1/endpoints/{reset_one}/circuit/reset")).status_code == 200
    still_open = circuit_of((await operator.get(f"/v1/endpoints/{other}")).json())
    assert (still_open["state"], still_open["failures"]) == ("open", 5)
    (other_delivery,) = await deliveries_of(db, other)
    status = await db.fetchval("SELECT status FROM deliveries WHERE id = $1", other_delivery)
    assert status == "held"


async def test_reset_on_a_disabled_endpoint_closes_the_circuit_but_keeps_deliveries_held(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant)
    await send_events(operator, tenant, 2)
    deliveries = await deliveries_of(db, endpoint)
    disabled = await operator.patch(f"/v1/endpoints/{endpoint}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    now = now_s()
    await open_circuit(
        db, endpoint, failures=9, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )
    due = {deliveries[0]: now - timedelta(minutes=3), deliveries[1]: now + timedelta(minutes=3)}
    for delivery, at in due.items():
        await set_delivery(db, delivery, status="held", due=at)

    reset = await operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    body = reset.json()
    assert circuit_of(body) == {
        "state": "closed",
        "failures": 0,
        "opened_at": None,
        "next_probe_at": None,
    }
    assert (body["enabled"], body["disabled_reason"]) == (False, "manual")
    rows = await delivery_rows(db, deliveries)
    for delivery, at in due.items():
        assert (rows[delivery]["status"], rows[delivery]["next_attempt_at"]) == ("held", at)


async def test_reset_by_a_tenant_key_on_its_own_endpoint_only(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    tenant_client: KeyFactory,
    db: asyncpg.Connection,
) -> None:
    tenant = str((await make_tenant())["id"])
    stranger = str((await make_tenant("Stranger"))["id"])
    client = await tenant_client(tenant)
    outsider = await tenant_client(stranger)
    endpoint = await new_endpoint(client, None)
    now = now_s()
    await open_circuit(
        db, endpoint, failures=3, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )

    hidden = await outsider.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    still = circuit_of((await operator.get(f"/v1/endpoints/{endpoint}")).json())
    assert still["state"] == "open"

    reset = await client.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    assert circuit_of(reset.json())["state"] == "closed"


async def test_reset_of_an_unknown_endpoint_is_404(operator: httpx.AsyncClient) -> None:
    response = await operator.post("/v1/endpoints/ep_" + "z" * 26 + "/circuit/reset")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["type"].endswith("/not-found")


async def test_disabling_holds_pending_deliveries_and_enabling_releases_them(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant)
    await send_events(operator, tenant, 5)
    waiting, later, in_flight, lapsed, dead = await deliveries_of(db, endpoint)
    now = now_s()
    due = {
        waiting: now - timedelta(minutes=2),
        later: now + timedelta(minutes=10),
        in_flight: now - timedelta(minutes=5),
        lapsed: now - timedelta(minutes=1),
    }
    await set_delivery(db, waiting, status="pending", due=due[waiting], attempts=1)
    await set_delivery(db, later, status="pending", due=due[later], attempts=2)
    # A live lease: a worker is sending it right now, its attempt decides its fate.
    await set_delivery(
        db,
        in_flight,
        status="pending",
        due=due[in_flight],
        attempts=3,
        leased_until=now + timedelta(minutes=1),
    )
    # A lapsed lease: its worker is gone, so the delivery is merely waiting.
    await set_delivery(
        db,
        lapsed,
        status="pending",
        due=due[lapsed],
        attempts=1,
        leased_until=now - timedelta(minutes=1),
    )
    await db.execute(
        "UPDATE deliveries SET status = 'dead', dead_reason = 'exhausted', dead_at = now(),"
        " next_attempt_at = NULL WHERE id = $1",
        dead,
    )

    disabled = await operator.patch(f"/v1/endpoints/{endpoint}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    assert (disabled.json()["enabled"], disabled.json()["disabled_reason"]) == (False, "manual")
    rows = await delivery_rows(db, [waiting, later, in_flight, lapsed, dead])
    assert {d: rows[d]["status"] for d in rows} == {
        waiting: "held",
        later: "held",
        in_flight: "pending",
        lapsed: "held",
        dead: "dead",
    }
    for delivery, at in due.items():
        assert rows[delivery]["next_attempt_at"] == at
    shown = (await operator.get(f"/v1/deliveries/{in_flight}")).json()
    assert shown["status"] == "delivering"

    # Meanwhile the circuit opened (as the workers would have recorded it).
    await open_circuit(
        db, endpoint, failures=6, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )
    assert circuit_of((await operator.get(f"/v1/endpoints/{endpoint}")).json())["state"] == "open"

    enabled = await operator.patch(f"/v1/endpoints/{endpoint}", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    body = enabled.json()
    assert (body["enabled"], body["disabled_reason"]) == (True, None)
    assert circuit_of(body) == {
        "state": "closed",
        "failures": 0,
        "opened_at": None,
        "next_probe_at": None,
    }
    assert await db.fetchval("SELECT circuit_reopens FROM endpoints WHERE id = $1", endpoint) == 0
    rows = await delivery_rows(db, [waiting, later, in_flight, lapsed, dead])
    assert {d: rows[d]["status"] for d in rows} == {
        waiting: "pending",
        later: "pending",
        in_flight: "pending",
        lapsed: "pending",
        dead: "dead",
    }
    for number, delivery in enumerate((waiting, later, in_flight, lapsed)):
        assert rows[delivery]["next_attempt_at"] == due[delivery]
        assert rows[delivery]["attempts"] == [1, 2, 3, 1][number]
    lease = await db.fetchrow(
        "SELECT leased_by, lease_expires_at FROM deliveries WHERE id = $1", in_flight
    )
    assert lease is not None
    assert (lease["leased_by"], lease["lease_expires_at"]) == (
        "worker-elsewhere",
        now + timedelta(minutes=1),
    )


async def test_patch_with_unchanged_enabled_moves_nothing(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant)
    await send_events(operator, tenant, 1)
    (delivery,) = await deliveries_of(db, endpoint)
    now = now_s()
    await open_circuit(
        db, endpoint, failures=5, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )
    await set_delivery(db, delivery, status="held", due=now)

    # Already enabled: re-sending enabled=true is no re-enable, the open circuit stays open.
    patched = await operator.patch(
        f"/v1/endpoints/{endpoint}", json={"enabled": True, "description": "x"}
    )
    assert patched.status_code == 200, patched.text
    assert circuit_of(patched.json())["state"] == "open"
    assert await db.fetchval("SELECT status FROM deliveries WHERE id = $1", delivery) == "held"


# Operational notifications on a manual reset.


async def drop_operations(db: asyncpg.Connection) -> None:
    await db.execute("DELETE FROM tenants WHERE id = $1", operational.OPERATIONS_TENANT_ID)


@pytest.fixture(scope="module")
async def ops_api_url(settings: Settings) -> AsyncIterator[str]:
    ops_settings = settings.model_copy(update={"operational_webhook_url": OPERATIONAL_URL})
    async with serving(create_app(ops_settings)) as url:
        yield url


@pytest.fixture
async def ops_operator(ops_api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with httpx.AsyncClient(base_url=ops_api_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def provisioned(db: asyncpg.Connection, settings: Settings) -> AsyncIterator[None]:
    """The operations tenant and endpoint exist for this test, and are gone after it."""
    await drop_operations(db)
    ops_settings = settings.model_copy(update={"operational_webhook_url": OPERATIONAL_URL})
    await operational.provision(
        db,
        settings=ops_settings,
        secret_box=SecretBox(settings.secret_key.get_secret_value()),
    )
    try:
        yield
    finally:
        await drop_operations(db)


async def notifications_about(db: asyncpg.Connection, endpoint_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT id, tenant_id, type, payload, delivery_count FROM events"
        " WHERE tenant_id = $1 AND payload->>'endpoint_id' = $2 ORDER BY id",
        operational.OPERATIONS_TENANT_ID,
        endpoint_id,
    )
    return rows


@pytest.mark.usefixtures("provisioned")
async def test_manual_reset_of_an_open_circuit_notifies_the_operator(
    ops_operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(ops_operator, tenant)
    now = now_s()
    await open_circuit(
        db, endpoint, failures=5, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )

    reset = await ops_operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    (event,) = await notifications_about(db, endpoint)
    assert event["type"] == "endpoint.circuit_closed"
    assert event["delivery_count"] == 1
    assert json.loads(event["payload"]) == {
        "endpoint_id": endpoint,
        "tenant_id": tenant,
        "url": "https://example.com/hook",
        "reason": "manual_reset",
    }
    deliveries = await db.fetch(
        "SELECT tenant_id, endpoint_id, event_type, status, attempts FROM deliveries"
        " WHERE event_id = $1",
        event["id"],
    )
    assert [tuple(row) for row in deliveries] == [
        (
            operational.OPERATIONS_TENANT_ID,
            operational.OPERATIONS_ENDPOINT_ID,
            "endpoint.circuit_closed",
            "pending",
            0,
        )
    ]

    # Closed already: a second reset has nothing to report.
    again = await ops_operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert again.status_code == 200, again.text
    assert len(await notifications_about(db, endpoint)) == 1


@pytest.mark.usefixtures("provisioned")
async def test_manual_reset_of_a_half_open_circuit_notifies_the_operator(
    ops_operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(ops_operator, tenant)
    now = now_s()
    await open_circuit(
        db, endpoint, failures=5, opened_at=now, next_probe_at=now, state="half_open"
    )

    reset = await ops_operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    assert circuit_of(reset.json())["state"] == "closed"
    (event,) = await notifications_about(db, endpoint)
    assert event["type"] == "endpoint.circuit_closed"


@pytest.mark.usefixtures("provisioned")
async def test_manual_reset_of_a_closed_circuit_notifies_nobody(
    ops_operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(ops_operator, tenant)
    reset = await ops_operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    assert await notifications_about(db, endpoint) == []


@pytest.mark.usefixtures("provisioned")
async def test_manual_reset_without_an_operational_url_notifies_nobody(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, db: asyncpg.Connection
) -> None:
    # The operations endpoint exists, but this API process has no URL configured.
    tenant = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant)
    now = now_s()
    await open_circuit(
        db, endpoint, failures=5, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )
    reset = await operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    assert circuit_of(reset.json())["state"] == "closed"
    assert await notifications_about(db, endpoint) == []


@pytest.mark.usefixtures("provisioned")
async def test_resetting_the_operations_endpoint_itself_notifies_nobody(
    ops_operator: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    endpoint = operational.OPERATIONS_ENDPOINT_ID
    now = now_s()
    await open_circuit(
        db, endpoint, failures=5, opened_at=now, next_probe_at=now + timedelta(minutes=1)
    )
    reset = await ops_operator.post(f"/v1/endpoints/{endpoint}/circuit/reset")
    assert reset.status_code == 200, reset.text
    assert circuit_of(reset.json())["state"] == "closed"
    count = await db.fetchval(
        "SELECT count(*) FROM events WHERE tenant_id = $1", operational.OPERATIONS_TENANT_ID
    )
    assert count == 0
