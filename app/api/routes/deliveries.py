from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import AuthDep, SessionDep
from app.schemas.deliveries import AttemptOut, DeliveryOut, DeliveryWithAttempts
from app.services import events

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


@router.get("/{delivery_id}")
async def get_delivery(
    delivery_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: AuthDep
) -> DeliveryWithAttempts:
    """The delivery with its whole attempt log, oldest attempt first."""
    delivery, attempts = await events.get_delivery(
        session, principal=principal, delivery_id=delivery_id
    )
    return DeliveryWithAttempts(
        **DeliveryOut.of(delivery).model_dump(),
        attempt_log=[AttemptOut.of(attempt) for attempt in attempts],
    )
