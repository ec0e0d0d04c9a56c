from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, ResourcesDep, SessionDep
from app.api.filters import IdFilter, Since, TypeFilter, Until
from app.schemas.common import ListResponse
from app.schemas.deliveries import DeliveryOut
from app.schemas.jobs import JobOut, ReplayRequest
from app.services import jobs, redelivery
from app.services.redelivery import DlqFilter

router = APIRouter(prefix="/v1/dlq", tags=["dlq"])

DeliveryId = Annotated[str, Path(max_length=64)]
DeadReason = Literal["exhausted", "gone", "circuit_open"]


@router.get("")
async def list_dlq(
    session: SessionDep,
    principal: AuthDep,
    tenant_id: IdFilter = None,
    endpoint_id: IdFilter = None,
    event_type: TypeFilter = None,
    reason: Annotated[DeadReason | None, Query()] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[DeliveryOut]:
    """Dead deliveries, the most recently dead first; ``since``/``until`` bound ``dead_at``."""
    page = await redelivery.list_dlq(
        session,
        principal=principal,
        where=DlqFilter(tenant_id, endpoint_id, event_type, reason, since, until),
        limit=limit,
        cursor=cursor,
    )
    return ListResponse[DeliveryOut].of(page, DeliveryOut.of)


@router.post("/replay", status_code=status.HTTP_202_ACCEPTED)
async def replay_many(
    body: ReplayRequest, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> JobOut:
    """Replay every dead delivery matching the filter, as a durable job (``GET /v1/jobs/{id}``)."""
    job = await jobs.create_dlq_replay(
        session,
        principal=principal,
        where=DlqFilter(
            body.tenant_id, body.endpoint_id, body.type, body.reason, body.since, body.until
        ),
    )
    resources.waker.wake()
    return JobOut.of(job)


@router.post("/{delivery_id}/replay", status_code=status.HTTP_202_ACCEPTED)
async def replay_one(
    delivery_id: DeliveryId, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> DeliveryOut:
    """Take the delivery out of the DLQ and deliver it again (attempts carry ``replay``)."""
    delivery = await redelivery.restart(
        session, principal=principal, delivery_id=delivery_id, trigger="replay", only_dead=True
    )
    resources.waker.wake()
    return DeliveryOut.of(delivery)


@router.delete("/{delivery_id}", status_code=status.HTTP_204_NO_CONTENT)
async def discard_one(delivery_id: DeliveryId, session: SessionDep, principal: AuthDep) -> None:
    """Remove the dead delivery and its attempts for good."""
    await redelivery.discard(session, principal=principal, delivery_id=delivery_id)
