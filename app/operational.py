"""Operational notifications: Herald telling its operator what happened to endpoints.

They travel the same pipeline as any webhook: each notification is an event of a reserved
operations tenant, delivered to one reserved endpoint whose URL is
``HERALD_OPERATIONAL_WEBHOOK_URL`` and whose secret is ``HERALD_OPERATIONAL_WEBHOOK_SECRET``
(or generated; an operator key reads it at ``GET /v1/endpoints/{id}/secret``). So they are
signed, retried, logged, and protected by a circuit breaker like everything else.

They are written in the same transaction as the change they report, so none is lost, and
nothing that happens to the operations endpoint itself is reported, so they never recurse.
The SQL uses ``$n`` parameters and runs on asyncpg in the workers and through SQLAlchemy's
asyncpg driver in the API.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import orjson

from app.ids import new_id
from app.settings import Settings
from app.signing_secrets import SecretBox, generate_secret

OPERATIONS_TENANT_ID = "ten_" + "0" * 26
OPERATIONS_ENDPOINT_ID = "ep_" + "0" * 26

NotificationType = Literal[
    "endpoint.circuit_opened",
    "endpoint.circuit_closed",
    "endpoint.disabled",
    "delivery.dead_lettered",
]


@dataclass(frozen=True)
class Notification:
    type: NotificationType
    data: Mapping[str, Any]


# The deliveries are held, not dropped, while the operations endpoint is disabled. Without
# the endpoint (not provisioned yet, or deleted by hand) nothing is written and nothing fails.
INSERT_NOTIFICATIONS = """
WITH target AS (
    SELECT id, enabled FROM endpoints WHERE id = $5
), event AS (
    INSERT INTO events (id, tenant_id, type, payload, delivery_count)
    SELECT n.event_id, $6, n.type, n.payload::jsonb, 1
    FROM unnest($1::text[], $2::text[], $3::text[]) AS n(event_id, type, payload), target
)
INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type, status)
SELECT n.delivery_id, $6, n.event_id, target.id, n.type,
       CASE WHEN target.enabled THEN 'pending' ELSE 'held' END
FROM unnest($1::text[], $2::text[], $4::text[]) AS n(event_id, type, delivery_id), target
"""


def notification_args(notifications: Sequence[Notification]) -> tuple[object, ...]:
    """Parameters of INSERT_NOTIFICATIONS."""
    return (
        [new_id("evt") for _ in notifications],
        [n.type for n in notifications],
        [
            orjson.dumps(n.data, default=_jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
            for n in notifications
        ],
        [new_id("dlv") for _ in notifications],
        OPERATIONS_ENDPOINT_ID,
        OPERATIONS_TENANT_ID,
    )


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def reportable(notifications: Iterable[Notification], *, settings: Settings) -> list[Notification]:
    """What to send: nothing without a URL, and nothing about the operations tenant itself."""
    if settings.operational_webhook_url is None:
        return []
    return [n for n in notifications if n.data.get("tenant_id") != OPERATIONS_TENANT_ID]


async def record(
    connection: asyncpg.Connection, notifications: Iterable[Notification], *, settings: Settings
) -> None:
    """Store notifications as events, in the caller's transaction."""
    chosen = reportable(notifications, settings=settings)
    if chosen:
        await connection.execute(INSERT_NOTIFICATIONS, *notification_args(chosen))


def dead_lettered(row: Mapping[str, Any], *, reason: str) -> Notification:
    return Notification(
        "delivery.dead_lettered",
        {
            "delivery_id": row["id"],
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "endpoint_id": row["endpoint_id"],
            "tenant_id": row["tenant_id"],
            "reason": reason,
            "attempts": row["attempts"],
        },
    )


def endpoint_notification(
    kind: NotificationType, endpoint: Mapping[str, Any], **details: object
) -> Notification:
    return Notification(
        kind,
        {
            "endpoint_id": endpoint["id"],
            "tenant_id": endpoint["tenant_id"],
            "url": endpoint["url"],
            **details,
        },
    )


ENSURE_TENANT = """
INSERT INTO tenants (id, name) VALUES ($1, 'Herald operations') ON CONFLICT (id) DO NOTHING
"""
ENSURE_ENDPOINT = """
INSERT INTO endpoints (id, tenant_id, url, description, subscriptions)
VALUES ($1, $2, $3, 'Herald operational notifications', ARRAY['*'])
ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, updated_at = now()
WHERE endpoints.url <> EXCLUDED.url
"""
CURRENT_SECRET = """
SELECT id, sealed_secret FROM endpoint_secrets
WHERE endpoint_id = $1 AND expires_at IS NULL ORDER BY id DESC LIMIT 1
"""
RETIRE_SECRETS = """
UPDATE endpoint_secrets SET expires_at = now() WHERE endpoint_id = $1 AND expires_at IS NULL
"""
INSERT_SECRET = """
INSERT INTO endpoint_secrets (id, endpoint_id, sealed_secret) VALUES ($1, $2, $3)
"""


async def provision(
    connection: asyncpg.Connection, *, settings: Settings, secret_box: SecretBox
) -> None:
    """Make the operations tenant and endpoint match the settings (idempotent, any worker)."""
    url = settings.operational_webhook_url
    if url is None:
        return
    configured = settings.operational_webhook_secret
    async with connection.transaction():
        # Workers starting together provision one after another.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('herald:operations'))")
        await connection.execute(ENSURE_TENANT, OPERATIONS_TENANT_ID)
        await connection.execute(ENSURE_ENDPOINT, OPERATIONS_ENDPOINT_ID, OPERATIONS_TENANT_ID, url)
        current = await connection.fetchrow(CURRENT_SECRET, OPERATIONS_ENDPOINT_ID)
        if current is not None:
            if configured is None:
                return
            try:
                opened = secret_box.open(
                    current["sealed_secret"], associated=OPERATIONS_ENDPOINT_ID
                )
            except ValueError:
                opened = None  # sealed under another HERALD_SECRET_KEY: replace it
            if opened == configured.get_secret_value():
                return
            await connection.execute(RETIRE_SECRETS, OPERATIONS_ENDPOINT_ID)
        secret = configured.get_secret_value() if configured else generate_secret()
        await connection.execute(
            INSERT_SECRET,
            new_id("sec"),
            OPERATIONS_ENDPOINT_ID,
            secret_box.seal(secret, associated=OPERATIONS_ENDPOINT_ID),
        )
