"""Reading events and deliveries, and the endpoint test event."""

import json
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Invalid, NotFound
from app.models import Attempt, Delivery, Event
from app.services.endpoints import get_endpoint
from app.services.ingest import Accepted, record_event

TEST_EVENT_TYPE = "test.webhook"


async def get_event(
    session: AsyncSession, *, principal: Principal, event_id: str
) -> tuple[Event, list[Delivery]]:
    event = await session.get(Event, event_id)
    if event is None or not principal.can_see(event.tenant_id):
        raise NotFound(f"event {event_id} not found")
    deliveries = await session.scalars(
        select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.id)
    )
    return event, list(deliveries.all())


async def get_delivery(
    session: AsyncSession, *, principal: Principal, delivery_id: str
) -> tuple[Delivery, list[Attempt]]:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or not principal.can_see(delivery.tenant_id):
        raise NotFound(f"delivery {delivery_id} not found")
    attempts = await session.scalars(
        select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.number)
    )
    return delivery, list(attempts.all())


async def send_test_event(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: str,
    idempotency_window: timedelta,
) -> Accepted:
    """A ``test.webhook`` event for this endpoint only, through the normal delivery path."""
    endpoint = await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise Invalid("", f"endpoint {endpoint_id} is disabled; enable it to test it")
    payload = {"message": "This is a test webhook from Herald.", "endpoint_id": endpoint_id}
    return await record_event(
        session,
        tenant_id=endpoint.tenant_id,
        event_type=TEST_EVENT_TYPE,
        payload_json=json.dumps(payload),
        endpoint_ids=[endpoint_id],
        idempotency_window=idempotency_window,
    )
