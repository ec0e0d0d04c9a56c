from typing import Annotated

from fastapi import APIRouter, Path, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, ResourcesDep, SessionDep
from app.api.filters import IdFilter, Since, StatusFilter, TypeFilter, Until
from app.schemas.common import ListResponse
from app.schemas.deliveries import AttemptOut, DeliveryOut, DeliveryWithAttempts
from app.services import events, logs, redelivery
from app.services.logs import TimeRange

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

DeliveryId = Annotated[str, Path(max_length=64)]


@router.get("")
async def list_deliveries(
    session: SessionDep,
    principal: AuthDep,
    tenant_id: IdFilter = None,
    endpoint_id: IdFilter = None,
    event_id: IdFilter = None,
    event_type: TypeFilter = None,
    status: StatusFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[DeliveryOut]:
    """Deliveries, newest first."""
    page = await logs.list_deliveries(
        session,
        principal=principal,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        status=status,
        window=TimeRange(since, until),
        limit=limit,
        cursor=cursor,
    )
    return ListResponse[DeliveryOut].of(page, DeliveryOut.of)


@router.get("/{delivery_id}")
async def get_delivery(
    delivery_id: DeliveryId, session: SessionDep, principal: AuthDep
) -> DeliveryWithAttempts:
    """The delivery with its whole attempt log, oldest attempt first."""
    delivery, attempts = await events.get_delivery(
        session, principal=principal, delivery_id=delivery_id
    )
    return DeliveryWithAttempts(
        **DeliveryOut.of(delivery).model_dump(),
        attempt_log=[AttemptOut.of(attempt) for attempt in attempts],
    )


@router.post("/{delivery_id}/resend", status_code=status.HTTP_202_ACCEPTED)
async def resend_delivery(
    delivery_id: DeliveryId, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> DeliveryOut:
    """Send again now with the full retry schedule (attempts carry trigger ``manual``)."""
    delivery = await redelivery.restart(
        session, principal=principal, delivery_id=delivery_id, trigger="manual", only_dead=False
    )
    resources.waker.wake()
    return DeliveryOut.of(delivery)
