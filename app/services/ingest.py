"""``POST /v1/events``: accept an event and fan it out, durably, in one transaction.

The event row and every delivery row commit together, and the caller gets its 202 only
after that commit; waking the workers comes after, and losing that wake-up only delays.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from opentelemetry.context import Context
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.auth import Principal
from app.catalog import EventTypeCatalog
from app.errors import HeraldError, Invalid, NotFound
from app.filters import Filter, compile_filter
from app.ids import new_id
from app.payload_schemas import payload_problem
from app.schemas.events import EventCreate
from app.storable import document_problem
from app.subscriptions import candidate_patterns
from app.tracing import current_traceparent, tracer

SUBSCRIBED_ENDPOINTS = text(
    """
    SELECT id, filter::text AS filter
    FROM endpoints
    WHERE tenant_id = :tenant_id AND enabled AND subscriptions && CAST(:patterns AS text[])
    """
)

# One statement records the event and fans it out. ON CONFLICT without a target covers both
# idempotency indexes (key and caller id); under concurrent duplicates the losers wait for the
# winner's commit and then insert nothing: no event row, so no delivery rows either.
INSERT_EVENT = text(
    """
    WITH event AS (
        INSERT INTO events (
            id, tenant_id, type, payload, caller_id, idempotency_key, delivery_count,
            trace_context
        )
        VALUES (
            :id, :tenant_id, :type, CAST(:payload AS jsonb), :caller_id, :idempotency_key,
            :count, :trace_context
        )
        ON CONFLICT DO NOTHING
        RETURNING id, created_at
    ), fanned_out AS (
        INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, event_type)
        SELECT fan.delivery_id, :tenant_id, event.id, fan.endpoint_id, :type
        FROM event,
             unnest(CAST(:delivery_ids AS text[]), CAST(:endpoint_ids AS text[]))
                 AS fan(delivery_id, endpoint_id)
    )
    SELECT created_at FROM event
    """
)

FIND_DUPLICATE = text(
    """
    SELECT id, type, delivery_count, created_at
    FROM events
    WHERE tenant_id = :tenant_id
      AND (idempotency_key = CAST(:idempotency_key AS text)
        OR caller_id = CAST(:caller_id AS text))
    ORDER BY created_at DESC
    LIMIT 1
    """
)

# An expired key is forgotten so the same key can name a new event.
FORGET_KEYS = text(
    """
    UPDATE events
    SET idempotency_key = CASE WHEN idempotency_key = CAST(:idempotency_key AS text)
                               THEN NULL ELSE idempotency_key END,
        caller_id = CASE WHEN caller_id = CAST(:caller_id AS text) THEN NULL ELSE caller_id END
    WHERE id = :id
    """
)


class PayloadTooLarge(HeraldError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the payload is {size} bytes; the limit is {limit}",
            413,
            "Content too large",
            "content-too-large",
        )


@dataclass(frozen=True)
class Accepted:
    id: str
    tenant_id: str
    type: str
    deliveries: int
    duplicate: bool
    created_at: datetime


@lru_cache(maxsize=4096)
def _compiled(filter_json: str) -> Filter:
    return compile_filter(json.loads(filter_json))


async def _check_type(
    session: AsyncSession,
    *,
    catalog: EventTypeCatalog,
    event_type: str,
    payload: dict[str, Any],
    strict: bool,
) -> None:
    known = await catalog.lookup(session, event_type)
    if known is None:
        if strict:
            raise Invalid("/type", f"event type {event_type!r} is not registered")
        return
    if known.archived:
        raise Invalid("/type", f"event type {event_type!r} is archived")
    if known.validator is not None and (problem := payload_problem(known.validator, payload)):
        raise problem


async def matching_endpoints(
    session: AsyncSession, *, tenant_id: str, event_type: str, payload: dict[str, Any]
) -> list[str]:
    rows = await session.execute(
        SUBSCRIBED_ENDPOINTS,
        {"tenant_id": tenant_id, "patterns": candidate_patterns(event_type)},
    )
    return [
        endpoint_id
        for endpoint_id, filter_json in rows
        if filter_json is None or _compiled(filter_json).matches(payload)
    ]


async def record_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    event_type: str,
    payload_json: str,
    endpoint_ids: list[str],
    caller_id: str | None = None,
    idempotency_key: str | None = None,
    idempotency_window: timedelta,
    trace_context: str | None = None,
) -> Accepted:
    """Insert the event and its deliveries and commit; or answer the earlier duplicate."""
    keys = {"idempotency_key": idempotency_key, "caller_id": caller_id, "tenant_id": tenant_id}
    event_id = new_id("evt")
    for _ in range(2):
        try:
            created_at = await session.scalar(
                INSERT_EVENT,
                {
                    "id": event_id,
                    "type": event_type,
                    "payload": payload_json,
                    "count": len(endpoint_ids),
                    "trace_context": trace_context,
                    "delivery_ids": [new_id("dlv") for _ in endpoint_ids],
                    "endpoint_ids": endpoint_ids,
                    **keys,
                },
            )
        except IntegrityError as error:
            await session.rollback()
            raise NotFound(f"tenant {tenant_id} not found") from error
        if created_at is not None:
            break
        earlier = (await session.execute(FIND_DUPLICATE, keys)).one_or_none()
        if earlier is None:
            continue  # the conflicting event was deleted meanwhile: insert again
        if earlier.created_at > datetime.now(earlier.created_at.tzinfo) - idempotency_window:
            await session.rollback()
            return Accepted(
                earlier.id,
                tenant_id,
                earlier.type,
                earlier.delivery_count,
                True,
                earlier.created_at,
            )
        await session.execute(FORGET_KEYS, {**keys, "id": earlier.id})
    else:
        raise HeraldError("the event could not be recorded; retry", 409, "Conflict", "conflict")
    await session.commit()
    return Accepted(event_id, tenant_id, event_type, len(endpoint_ids), False, created_at)


async def ingest_event(
    session: AsyncSession,
    *,
    principal: Principal,
    body: EventCreate,
    idempotency_key: str | None,
    catalog: EventTypeCatalog,
    max_payload_bytes: int,
    strict_event_types: bool,
    idempotency_window: timedelta,
    wake_workers: Callable[[], None],
    trace_parent: Context | None = None,
) -> Accepted:
    """``wake_workers`` runs after the commit; it must not block or raise (app.queue.Waker)."""
    tenant_id = principal.tenant_for(body.tenant_id)
    if tenant_id is None:
        raise Invalid("/tenant_id", "is required with an operator key")
    if (problem := document_problem(body.payload, "/payload")) is not None:
        raise Invalid(*problem)
    payload = orjson.dumps(body.payload)
    if len(payload) > max_payload_bytes:
        raise PayloadTooLarge(len(payload), max_payload_bytes)
    with tracer.start_as_current_span(
        "herald.ingest",
        context=trace_parent,
        attributes={"herald.tenant_id": tenant_id, "herald.event_type": body.type},
    ) as span:
        await _check_type(
            session,
            catalog=catalog,
            event_type=body.type,
            payload=body.payload,
            strict=strict_event_types,
        )
        endpoint_ids = await matching_endpoints(
            session, tenant_id=tenant_id, event_type=body.type, payload=body.payload
        )
        accepted = await record_event(
            session,
            tenant_id=tenant_id,
            event_type=body.type,
            payload_json=payload.decode(),
            endpoint_ids=endpoint_ids,
            caller_id=body.id,
            idempotency_key=idempotency_key,
            idempotency_window=idempotency_window,
            trace_context=current_traceparent(),
        )
        span.set_attributes(
            {
                "herald.event_id": accepted.id,
                "herald.deliveries": accepted.deliveries,
                "herald.duplicate": accepted.duplicate,
            }
        )
    metrics.events_ingested.labels("true" if accepted.duplicate else "false").inc()
    if accepted.deliveries and not accepted.duplicate:
        wake_workers()
    return accepted
