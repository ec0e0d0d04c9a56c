"""Operational notifications at the database: provisioning the operations endpoint, recording.

The operations tenant and endpoint are one per database, so every test here starts and ends
without them.
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from app import operational
from app.db import asyncpg_dsn
from app.operational import (
    OPERATIONS_ENDPOINT_ID,
    OPERATIONS_TENANT_ID,
    Notification,
    dead_lettered,
    endpoint_notification,
)
from app.settings import Settings
from app.signing_secrets import SecretBox, generate_secret

URL = "https://ops.example.com/herald"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await connection.execute("DELETE FROM tenants WHERE id = $1", OPERATIONS_TENANT_ID)
    try:
        yield connection
    finally:
        await connection.execute("DELETE FROM tenants WHERE id = $1", OPERATIONS_TENANT_ID)
        await connection.close()


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secret_key.get_secret_value())


def configured(settings: Settings, *, url: str | None = URL, secret: str | None = None) -> Settings:
    return settings.model_copy(
        update={
            "operational_webhook_url": url,
            "operational_webhook_secret": SecretStr(secret) if secret is not None else None,
        }
    )


async def secrets_of(db: asyncpg.Connection) -> list[asyncpg.Record]:
    """The operations endpoint's secrets, oldest first."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT id, sealed_secret, expires_at FROM endpoint_secrets WHERE endpoint_id = $1"
        " ORDER BY id",
        OPERATIONS_ENDPOINT_ID,
    )
    return rows


def live(rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
    return [row for row in rows if row["expires_at"] is None]


def opened(box: SecretBox, row: asyncpg.Record) -> str:
    return box.open(row["sealed_secret"], associated=OPERATIONS_ENDPOINT_ID)


async def count(db: asyncpg.Connection, table: str) -> int:
    column = "id" if table == "tenants" else "tenant_id"
    total: int = await db.fetchval(
        f"SELECT count(*) FROM {table} WHERE {column} = $1",  # noqa: S608
        OPERATIONS_TENANT_ID,
    )
    return total


# provision()


async def test_provision_without_a_url_does_nothing(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    await operational.provision(db, settings=configured(settings, url=None), secret_box=box)
    assert await count(db, "tenants") == 0
    assert await count(db, "endpoints") == 0


async def test_provision_is_idempotent(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    endpoint = await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    first_secrets = await secrets_of(db)
    await operational.provision(db, settings=ops, secret_box=box)

    assert await count(db, "tenants") == 1
    assert await count(db, "endpoints") == 1
    tenant_name = await db.fetchval("SELECT name FROM tenants WHERE id = $1", OPERATIONS_TENANT_ID)
    assert tenant_name == "Herald operations"
    assert endpoint is not None
    assert (endpoint["url"], endpoint["subscriptions"], endpoint["enabled"]) == (URL, ["*"], True)
    assert endpoint["tenant_id"] == OPERATIONS_TENANT_ID
    again = await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    assert again is not None
    assert again["updated_at"] == endpoint["updated_at"]  # the same URL is no change
    secrets = await secrets_of(db)
    assert [row["id"] for row in secrets] == [row["id"] for row in first_secrets]
    (current,) = live(secrets)
    assert opened(box, current).startswith("whsec_")  # generated: none was configured


async def test_provision_seals_the_configured_secret(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    secret = generate_secret()
    ops = configured(settings, secret=secret)
    await operational.provision(db, settings=ops, secret_box=box)
    await operational.provision(db, settings=ops, secret_box=box)

    secrets = await secrets_of(db)
    assert len(secrets) == 1
    (current,) = live(secrets)
    assert opened(box, current) == secret
    assert secret.encode() not in current["sealed_secret"]


async def test_changing_the_configured_secret_retires_the_old_one(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    await operational.provision(db, settings=configured(settings), secret_box=box)
    (generated,) = await secrets_of(db)
    first, second = generate_secret(), generate_secret()

    await operational.provision(db, settings=configured(settings, secret=first), secret_box=box)
    secrets = await secrets_of(db)
    assert len(secrets) == 2
    retired = {row["id"]: row for row in secrets}[generated["id"]]
    assert retired["expires_at"] is not None
    assert retired["expires_at"] <= await db.fetchval("SELECT now()")
    (current,) = live(secrets)
    assert opened(box, current) == first

    await operational.provision(db, settings=configured(settings, secret=second), secret_box=box)
    secrets = await secrets_of(db)
    assert len(secrets) == 3
    (current,) = live(secrets)
    assert opened(box, current) == second
    assert sorted(opened(box, row) for row in secrets if row["expires_at"] is not None) == sorted(
        [opened(box, generated), first]
    )

    # No secret configured any more: the current one stays, nothing is generated.
    await operational.provision(db, settings=configured(settings), secret_box=box)
    secrets = await secrets_of(db)
    assert len(secrets) == 3
    (current,) = live(secrets)
    assert opened(box, current) == second


async def test_changing_the_url_updates_the_endpoint(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    await operational.provision(db, settings=configured(settings), secret_box=box)
    before = await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    moved = "https://elsewhere.example.com/ops"
    await operational.provision(db, settings=configured(settings, url=moved), secret_box=box)

    after = await db.fetchrow("SELECT * FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    assert before is not None
    assert after is not None
    assert after["url"] == moved
    assert after["updated_at"] > before["updated_at"]
    assert await count(db, "endpoints") == 1
    assert len(live(await secrets_of(db))) == 1


async def test_provision_restores_a_deleted_operations_endpoint(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    await operational.provision(db, settings=configured(settings), secret_box=box)
    await db.execute("DELETE FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    await operational.provision(db, settings=configured(settings), secret_box=box)
    assert await count(db, "endpoints") == 1
    assert len(live(await secrets_of(db))) == 1


# record()


def about(tenant_id: str, endpoint_id: str, **details: object) -> Notification:
    return endpoint_notification(
        "endpoint.circuit_opened",
        {"id": endpoint_id, "tenant_id": tenant_id, "url": "https://example.com/hook"},
        **details,
    )


async def notifications(db: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT e.id AS event_id, e.type, e.payload, e.delivery_count, d.tenant_id,"
        " d.endpoint_id, d.event_type, d.status, d.attempts, d.next_attempt_at"
        " FROM events e LEFT JOIN deliveries d ON d.event_id = e.id"
        " WHERE e.tenant_id = $1 ORDER BY e.id",
        OPERATIONS_TENANT_ID,
    )
    return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]


async def test_record_writes_events_and_deliveries_in_the_transaction(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    dead_row = {
        "id": "dlv_x",
        "event_id": "evt_x",
        "event_type": "order.created",
        "endpoint_id": "ep_x",
        "tenant_id": "ten_x",
        "attempts": 5,
    }
    async with db.transaction():
        await operational.record(
            db,
            [
                about("ten_x", "ep_x", failures=5),
                dead_lettered(dead_row, reason="exhausted"),
                # About the operations tenant itself: never reported, so never recursive.
                about(OPERATIONS_TENANT_ID, OPERATIONS_ENDPOINT_ID, failures=5),
            ],
            settings=ops,
        )

    written = await notifications(db)
    assert len(written) == 2
    for row in written:
        assert row["delivery_count"] == 1
        assert row["tenant_id"] == OPERATIONS_TENANT_ID
        assert row["endpoint_id"] == OPERATIONS_ENDPOINT_ID
        assert row["event_type"] == row["type"]
        assert (row["status"], row["attempts"]) == ("pending", 0)
        assert row["next_attempt_at"] is not None
    by_type = {row["type"]: row["payload"] for row in written}
    assert by_type == {
        "endpoint.circuit_opened": {
            "endpoint_id": "ep_x",
            "tenant_id": "ten_x",
            "url": "https://example.com/hook",
            "failures": 5,
        },
        "delivery.dead_lettered": {
            "delivery_id": "dlv_x",
            "event_id": "evt_x",
            "event_type": "order.created",
            "endpoint_id": "ep_x",
            "tenant_id": "ten_x",
            "reason": "exhausted",
            "attempts": 5,
        },
    }


async def test_record_is_undone_with_its_transaction(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)

    transaction = db.transaction()
    await transaction.start()
    await operational.record(db, [about("ten_x", "ep_x")], settings=ops)
    assert len(await notifications(db)) == 1
    await transaction.rollback()
    assert await notifications(db) == []


async def test_record_only_about_the_operations_tenant_writes_nothing(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    async with db.transaction():
        await operational.record(
            db, [about(OPERATIONS_TENANT_ID, OPERATIONS_ENDPOINT_ID)], settings=ops
        )
    assert await notifications(db) == []


async def test_record_without_a_url_writes_nothing(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    await operational.provision(db, settings=configured(settings), secret_box=box)
    async with db.transaction():
        await operational.record(
            db, [about("ten_x", "ep_x")], settings=configured(settings, url=None)
        )
    assert await notifications(db) == []


async def test_record_holds_deliveries_while_the_operations_endpoint_is_disabled(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    await db.execute(
        "UPDATE endpoints SET enabled = false, disabled_reason = 'gone' WHERE id = $1",
        OPERATIONS_ENDPOINT_ID,
    )
    async with db.transaction():
        await operational.record(db, [about("ten_x", "ep_x"), about("ten_y", "ep_y")], settings=ops)

    written = await notifications(db)
    assert [row["status"] for row in written] == ["held", "held"]
    assert {row["payload"]["endpoint_id"] for row in written} == {"ep_x", "ep_y"}


async def test_record_without_the_operations_endpoint_writes_nothing_and_does_not_fail(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    # Not provisioned at all.
    async with db.transaction():
        await operational.record(db, [about("ten_x", "ep_x")], settings=ops)
    assert await notifications(db) == []
    # The tenant exists, but its endpoint was deleted by hand.
    await operational.provision(db, settings=ops, secret_box=box)
    await db.execute("DELETE FROM endpoints WHERE id = $1", OPERATIONS_ENDPOINT_ID)
    async with db.transaction():
        await operational.record(db, [about("ten_x", "ep_x")], settings=ops)
    assert await notifications(db) == []
    assert (
        await db.fetchval("SELECT count(*) FROM events WHERE payload->>'endpoint_id' = 'ep_x'") == 0
    )


async def test_datetimes_from_the_database_are_serialised_as_iso_8601_utc(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    # What the workers pass: timestamptz values as asyncpg returns them.
    opened_at: datetime = await db.fetchval("SELECT now()")
    next_probe_at: datetime = await db.fetchval(
        "SELECT timestamptz '2030-05-06 07:08:09.123456+00'"
    )
    async with db.transaction():
        await operational.record(
            db,
            [about("ten_x", "ep_x", opened_at=opened_at, next_probe_at=next_probe_at)],
            settings=ops,
        )

    (row,) = await notifications(db)
    payload = row["payload"]
    assert payload["next_probe_at"] == "2030-05-06T07:08:09.123456+00:00"
    assert datetime.fromisoformat(payload["opened_at"]) == opened_at
    assert datetime.fromisoformat(payload["opened_at"]).utcoffset() == timedelta(0)


async def test_datetimes_with_another_offset_are_serialised_in_utc(
    db: asyncpg.Connection, settings: Settings, box: SecretBox
) -> None:
    ops = configured(settings)
    await operational.provision(db, settings=ops, secret_box=box)
    paris = datetime(2030, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    async with db.transaction():
        await operational.record(db, [about("ten_x", "ep_x", opened_at=paris)], settings=ops)

    (row,) = await notifications(db)
    assert row["payload"]["opened_at"] == datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC).isoformat()
