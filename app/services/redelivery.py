"""Sending again: resend any delivery, replay or discard what sits in the DLQ.

A new chain starts at attempt 0 of the full schedule; the attempt log keeps every earlier
attempt, and the new attempts carry the trigger (``manual`` or ``replay``).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Conflict, Invalid, NotFound
from app.models import Delivery
from app.pagination import Page, decode_cursor, encode_cursor

# Only a delivery nobody is sending right now may start a new chain; the lease check makes
# a resend racing a worker's claim a clear 409 instead of two concurrent chains.
RESTART_CHAINS = text(
    """
    UPDATE deliveries
    SET status = 'pending', chain_attempts = 0, trigger = :trigger, next_attempt_at = now(),
        dead_reason = NULL, dead_at = NULL, finished_at = NULL, updated_at = now()
    WHERE id = ANY(CAST(:ids AS text[]))
      AND (lease_expires_at IS NULL OR lease_expires_at <= now())
    RETURNING id
    """
)


async def restart_many(session: AsyncSession, *, ids: list[str], trigger: str) -> list[str]:
    """Start a new chain for each delivery not being sent right now; the caller commits."""
    result = await session.scalars(RESTART_CHAINS, {"ids": ids, "trigger": trigger})
    return list(result.all())


async def _visible_delivery(
    session: AsyncSession, *, principal: Principal, delivery_id: str
) -> Delivery:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or not principal.can_see(delivery.tenant_id):
        raise NotFound(f"delivery {delivery_id} not found")
    return delivery


async def restart(
    session: AsyncSession,
    *,
    principal: Principal,
    delivery_id: str,
    trigger: str,
    only_dead: bool,
) -> Delivery:
    delivery = await _visible_delivery(session, principal=principal, delivery_id=delivery_id)
    if only_dead and delivery.status != "dead":
        raise NotFound(f"delivery {delivery_id} is not in the DLQ")
    if not await restart_many(session, ids=[delivery_id], trigger=trigger):
        await session.rollback()
        raise Conflict(f"delivery {delivery_id} is being sent right now; try again shortly")
    await session.commit()
    await session.refresh(delivery)
    return delivery


async def discard(session: AsyncSession, *, principal: Principal, delivery_id: str) -> None:
    """Remove a dead delivery (and its attempts) from the DLQ for good."""
    delivery = await _visible_delivery(session, principal=principal, delivery_id=delivery_id)
    if delivery.status != "dead":
        raise NotFound(f"delivery {delivery_id} is not in the DLQ")
    await session.execute(
        delete(Delivery).where(Delivery.id == delivery_id, Delivery.status == "dead")
    )
    await session.commit()


@dataclass(frozen=True)
class DlqFilter:
    tenant_id: str | None = None
    endpoint_id: str | None = None
    event_type: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_dlq(
    session: AsyncSession,
    *,
    principal: Principal,
    where: DlqFilter,
    limit: int,
    cursor: str | None,
) -> Page[Delivery]:
    """Dead deliveries, newest ``dead_at`` first (served by the partial index on dead rows)."""
    statement = select(Delivery).where(Delivery.status == "dead")
    if (scope := principal.tenant_for(where.tenant_id)) is not None:
        statement = statement.where(Delivery.tenant_id == scope)
    if where.endpoint_id is not None:
        statement = statement.where(Delivery.endpoint_id == where.endpoint_id)
    if where.event_type is not None:
        statement = statement.where(Delivery.event_type == where.event_type)
    if where.reason is not None:
        statement = statement.where(Delivery.dead_reason == where.reason)
    if where.since is not None:
        statement = statement.where(Delivery.dead_at >= where.since)
    if where.until is not None:
        statement = statement.where(Delivery.dead_at < where.until)
    if cursor is not None:
        dead_at_text, _, last_id = decode_cursor(cursor).partition("|")
        try:
            dead_at = datetime.fromisoformat(dead_at_text)
        except ValueError as error:
            raise Invalid(
                "/cursor", "is not a cursor returned by this list", location="query"
            ) from error
        position = tuple_(literal(dead_at, Delivery.dead_at.type), literal(last_id))
        statement = statement.where(tuple_(Delivery.dead_at, Delivery.id) < position)
    statement = statement.order_by(Delivery.dead_at.desc(), Delivery.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(statement)).all())
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    assert last.dead_at is not None
    return Page(rows, encode_cursor(f"{last.dead_at.isoformat()}|{last.id}"))
