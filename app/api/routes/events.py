from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, ResourcesDep, SessionDep
from app.api.filters import IdFilter, Since, TypeFilter, Until
from app.schemas.common import ListResponse
from app.schemas.deliveries import shown_status
from app.schemas.events import (
    DeliverySummary,
    EventAccepted,
    EventCreate,
    EventOut,
    EventSummary,
)
from app.services import events, logs
from app.services.ingest import ingest_event
from app.services.logs import TimeRange
from app.tracing import context_from_headers

router = APIRouter(prefix="/v1/events", tags=["events"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=256,
        description="repeats within the idempotency window return the first answer",
    ),
]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_event(
    body: EventCreate,
    request: Request,
    session: SessionDep,
    principal: AuthDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKey = None,
) -> EventAccepted:
    """Accepted only once the event and all its deliveries are committed."""
    settings = resources.settings
    accepted = await ingest_event(
        session,
        principal=principal,
        body=body,
        idempotency_key=idempotency_key,
        catalog=resources.catalog,
        max_payload_bytes=settings.max_payload_bytes,
        strict_event_types=settings.strict_event_types,
        idempotency_window=settings.idempotency_window,
        wake_workers=resources.waker.wake,
        trace_parent=context_from_headers(request.headers),
    )
    return EventAccepted.model_validate(accepted)


@router.get("")
async def list_events(
    session: SessionDep,
    principal: AuthDep,
    tenant_id: IdFilter = None,
    event_type: TypeFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[EventSummary]:
    """Events, newest first."""
    page = await logs.list_events(
        session,
        principal=principal,
        tenant_id=tenant_id,
        event_type=event_type,
        window=TimeRange(since, until),
        limit=limit,
        cursor=cursor,
    )
    return ListResponse[EventSummary].of(page, EventSummary.of)


@router.get("/{event_id}")
async def get_event(
    event_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: AuthDep
) -> EventOut:
    event, deliveries = await events.get_event(session, principal=principal, event_id=event_id)
    return EventOut(
        id=event.id,
        tenant_id=event.tenant_id,
        type=event.type,
        payload=event.payload,
        caller_id=event.caller_id,
        deliveries=[
            DeliverySummary(
                id=d.id,
                endpoint_id=d.endpoint_id,
                status=shown_status(d),
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at,
            )
            for d in deliveries
        ],
        created_at=event.created_at,
    )
