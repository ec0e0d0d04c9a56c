"""Listing events, deliveries and attempts for support staff: filters over indexed orders.

Every list is newest first by id. Ids are time-sortable, so a time range becomes an id
range and every query walks one index ((tenant_id, id), (endpoint_id, id) or the primary
key) instead of sorting.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import NotFound
from app.ids import Prefix, lower_bound_id
from app.models import Attempt, Delivery, Event
from app.pagination import Page, fetch_page


@dataclass(frozen=True)
class TimeRange:
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, statement: Select[Any], id_column: Any, prefix: Prefix) -> Select[Any]:
        if self.since is not None:
            statement = statement.where(id_column >= lower_bound_id(prefix, _ms(self.since)))
        if self.until is not None:
            statement = statement.where(id_column < lower_bound_id(prefix, _ms(self.until)))
        return statement


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def list_events(
    session: AsyncSession,
    *,
    principal: Principal,
    tenant_id: str | None,
    event_type: str | None,
    window: TimeRange,
    limit: int,
    cursor: str | None,
) -> Page[Event]:
    statement = select(Event)
    if (scope := principal.tenant_for(tenant_id)) is not None:
        statement = statement.where(Event.tenant_id == scope)
    if event_type is not None:
        statement = statement.where(Event.type == event_type)
    statement = window.apply(statement, Event.id, "evt")
    return await fetch_page(session, statement, Event.id, limit=limit, cursor=cursor)


async def list_deliveries(
    session: AsyncSession,
    *,
    principal: Principal,
    tenant_id: str | None,
    endpoint_id: str | None,
    event_id: str | None,
    event_type: str | None,
    status: str | None,
    window: TimeRange,
    limit: int,
    cursor: str | None,
) -> Page[Delivery]:
    statement = select(Delivery)
    if (scope := principal.tenant_for(tenant_id)) is not None:
        statement = statement.where(Delivery.tenant_id == scope)
    if endpoint_id is not None:
        statement = statement.where(Delivery.endpoint_id == endpoint_id)
    if event_id is not None:
        statement = statement.where(Delivery.event_id == event_id)
    if event_type is not None:
        statement = statement.where(Delivery.event_type == event_type)
    # "delivering" is shown, not stored: a pending delivery under a live lease.
    leased = Delivery.lease_expires_at > func.now()
    if status == "delivering":
        statement = statement.where(Delivery.status == "pending", leased)
    elif status == "pending":
        statement = statement.where(Delivery.status == "pending", or_(~leased, leased.is_(None)))
    elif status is not None:
        statement = statement.where(Delivery.status == status)
    statement = window.apply(statement, Delivery.id, "dlv")
    return await fetch_page(session, statement, Delivery.id, limit=limit, cursor=cursor)


async def list_attempts(
    session: AsyncSession,
    *,
    principal: Principal,
    tenant_id: str | None,
    endpoint_id: str | None,
    delivery_id: str | None,
    response_status: int | None,
    error_class: str | None,
    window: TimeRange,
    limit: int,
    cursor: str | None,
) -> Page[Attempt]:
    statement = select(Attempt)
    if (scope := principal.tenant_for(tenant_id)) is not None:
        statement = statement.where(Attempt.tenant_id == scope)
    if endpoint_id is not None:
        statement = statement.where(Attempt.endpoint_id == endpoint_id)
    if delivery_id is not None:
        statement = statement.where(Attempt.delivery_id == delivery_id)
    if response_status is not None:
        statement = statement.where(Attempt.response_status == response_status)
    if error_class is not None:
        statement = statement.where(Attempt.error_class == error_class)
    statement = window.apply(statement, Attempt.id, "att")
    return await fetch_page(session, statement, Attempt.id, limit=limit, cursor=cursor)


async def get_attempt(session: AsyncSession, *, principal: Principal, attempt_id: str) -> Attempt:
    attempt = await session.get(Attempt, attempt_id)
    if attempt is None or not principal.can_see(attempt.tenant_id):
        raise NotFound(f"attempt {attempt_id} not found")
    return attempt
