"""Every support list is served by an index: EXPLAIN over 100k rows shows no sequential scan."""

import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.auth import Principal
from app.db import asyncpg_dsn, drop_database, migrate
from app.ids import new_id
from app.services import logs, redelivery
from app.services.logs import TimeRange
from app.services.redelivery import DlqFilter

BIG_TABLES = {"events", "deliveries", "attempts"}
TENANTS, ENDPOINTS_PER_TENANT, EVENTS, DELIVERIES_PER_EVENT = 50, 4, 20_000, 5


@pytest.fixture(scope="module")
async def loaded_database(database_url: str) -> AsyncIterator[dict[str, str]]:
    url = (
        make_url(database_url)
        .set(database=f"herald_plans_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    await migrate(url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield await _load(connection) | {"url": url}
    finally:
        await connection.close()
        await drop_database(url)


async def _load(connection: asyncpg.Connection) -> dict[str, str]:
    rng = random.Random(7)
    tenants = [new_id("ten") for _ in range(TENANTS)]
    endpoints = {t: [new_id("ep") for _ in range(ENDPOINTS_PER_TENANT)] for t in tenants}
    await connection.copy_records_to_table(
        "tenants", records=[(t, "t") for t in tenants], columns=["id", "name"]
    )
    await connection.copy_records_to_table(
        "endpoints",
        records=[(e, t, "https://example.com/", ["*"]) for t in tenants for e in endpoints[t]],
        columns=["id", "tenant_id", "url", "subscriptions"],
    )
    start = datetime.now(UTC) - timedelta(days=10)
    events, deliveries, attempts = [], [], []
    for n in range(EVENTS):
        at = start + timedelta(seconds=n * 40)
        at_ms = int(at.timestamp() * 1000)
        tenant = rng.choice(tenants)
        event_id = new_id("evt", at_ms=at_ms)
        event_type = rng.choice(["invoice.paid", "order.created", "user.deleted"])
        events.append((event_id, tenant, event_type, json.dumps({"n": n}), at))
        for _ in range(DELIVERIES_PER_EVENT):
            endpoint = rng.choice(endpoints[tenant])
            delivery_id = new_id("dlv", at_ms=at_ms)
            status = rng.choices(["succeeded", "dead", "pending"], [8, 1, 1])[0]
            dead_at = at + timedelta(hours=2) if status == "dead" else None
            deliveries.append(
                (delivery_id, tenant, event_id, endpoint, event_type, status, dead_at, at)
            )
            attempts.append(
                (
                    new_id("att", at_ms=at_ms),
                    tenant,
                    delivery_id,
                    endpoint,
                    1,
                    "scheduled",
                    "https://example.com/",
                    "{}",
                    500,
                    12,
                    "http_status",
                    at,
                )
            )
    await connection.copy_records_to_table(
        "events", records=events, columns=["id", "tenant_id", "type", "payload", "created_at"]
    )
    await connection.copy_records_to_table(
        "deliveries",
        records=deliveries,
        columns=[
            "id",
            "tenant_id",
            "event_id",
            "endpoint_id",
            "event_type",
            "status",
            "dead_at",
            "created_at",
        ],
    )
    await connection.copy_records_to_table(
        "attempts",
        records=attempts,
        columns=[
            "id",
            "tenant_id",
            "delivery_id",
            "endpoint_id",
            "number",
            "trigger",
            "url",
            "request_headers",
            "response_status",
            "duration_ms",
            "error_class",
            "created_at",
        ],
    )
    await connection.execute("ANALYZE")
    tenant = tenants[0]
    return {
        "tenant": tenant,
        "endpoint": endpoints[tenant][0],
        "event": next(e[0] for e in events if e[1] == tenant),
        "delivery": next(d[0] for d in deliveries if d[1] == tenant),
    }


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


ListCall = Callable[[AsyncSession, dict[str, str]], Awaitable[object]]
OPERATOR = Principal("operator", None, None)
WEEK_AGO = datetime.now(UTC) - timedelta(days=7)


def tenant_of(ids: dict[str, str]) -> Principal:
    return Principal("tenant", ids["tenant"], None)


PAGE: dict[str, Any] = {"limit": 50, "cursor": None}
NO_TIME = TimeRange()
CALLS: dict[str, ListCall] = {
    "events by tenant": lambda s, i: logs.list_events(
        s, principal=tenant_of(i), tenant_id=None, event_type=None, window=NO_TIME, **PAGE
    ),
    "events by tenant and type, since": lambda s, i: logs.list_events(
        s,
        principal=OPERATOR,
        tenant_id=i["tenant"],
        event_type="invoice.paid",
        window=TimeRange(since=WEEK_AGO),
        **PAGE,
    ),
    "all events": lambda s, i: logs.list_events(
        s, principal=OPERATOR, tenant_id=None, event_type=None, window=NO_TIME, **PAGE
    ),
    "deliveries by tenant and status": lambda s, i: logs.list_deliveries(
        s,
        principal=tenant_of(i),
        tenant_id=None,
        endpoint_id=None,
        event_id=None,
        event_type=None,
        status="dead",
        window=NO_TIME,
        **PAGE,
    ),
    "deliveries by endpoint": lambda s, i: logs.list_deliveries(
        s,
        principal=OPERATOR,
        tenant_id=None,
        endpoint_id=i["endpoint"],
        event_id=None,
        event_type=None,
        status=None,
        window=TimeRange(since=WEEK_AGO),
        **PAGE,
    ),
    "deliveries by event": lambda s, i: logs.list_deliveries(
        s,
        principal=OPERATOR,
        tenant_id=None,
        endpoint_id=None,
        event_id=i["event"],
        event_type=None,
        status=None,
        window=NO_TIME,
        **PAGE,
    ),
    "deliveries by tenant and type": lambda s, i: logs.list_deliveries(
        s,
        principal=tenant_of(i),
        tenant_id=None,
        endpoint_id=None,
        event_id=None,
        event_type="order.created",
        status=None,
        window=NO_TIME,
        **PAGE,
    ),
    "attempts by tenant and error class": lambda s, i: logs.list_attempts(
        s,
        principal=tenant_of(i),
        tenant_id=None,
        endpoint_id=None,
        delivery_id=None,
        response_status=500,
        error_class="http_status",
        window=NO_TIME,
        **PAGE,
    ),
    "attempts by endpoint": lambda s, i: logs.list_attempts(
        s,
        principal=OPERATOR,
        tenant_id=None,
        endpoint_id=i["endpoint"],
        delivery_id=None,
        response_status=None,
        error_class=None,
        window=NO_TIME,
        **PAGE,
    ),
    "attempts by delivery": lambda s, i: logs.list_attempts(
        s,
        principal=OPERATOR,
        tenant_id=None,
        endpoint_id=None,
        delivery_id=i["delivery"],
        response_status=None,
        error_class=None,
        window=NO_TIME,
        **PAGE,
    ),
    "dlq by tenant": lambda s, i: redelivery.list_dlq(
        s, principal=tenant_of(i), where=DlqFilter(), **PAGE
    ),
    "dlq by tenant, endpoint and reason": lambda s, i: redelivery.list_dlq(
        s,
        principal=OPERATOR,
        where=DlqFilter(tenant_id=i["tenant"], endpoint_id=i["endpoint"], reason="exhausted"),
        **PAGE,
    ),
    "dlq of every tenant": lambda s, i: redelivery.list_dlq(
        s, principal=OPERATOR, where=DlqFilter(since=WEEK_AGO), **PAGE
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_list_query_uses_an_index(name: str, loaded_database: dict[str, str]) -> None:
    engine = create_async_engine(loaded_database["url"])
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    try:
        async with AsyncSession(engine) as session:
            await CALLS[name](session, loaded_database)
        assert captured, "the call ran no query"
        async with engine.connect() as connection:
            for statement, parameters in captured:
                plan_rows = await connection.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + statement, parameters
                )
                plan = plan_rows.scalar_one()[0]["Plan"]
                scans = _scans(plan)
                sequential = [table for node, table in scans if node == "Seq Scan"]
                assert not BIG_TABLES & set(sequential), (name, statement, scans)
    finally:
        await engine.dispose()
