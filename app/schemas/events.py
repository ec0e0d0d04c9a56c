from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.models import Event
from app.schemas.common import InputModel, StorableText, TenantRef
from app.schemas.event_types import EventTypeName

CallerId = Annotated[str, StringConstraints(min_length=1, max_length=256), StorableText]


class EventCreate(InputModel):
    tenant_id: TenantRef | None = None
    type: EventTypeName
    payload: dict[str, Any]
    id: CallerId | None = Field(
        default=None, description="your own id for this event; repeats within 24 h are duplicates"
    )


class EventAccepted(BaseModel):
    """Built from ``app.services.ingest.Accepted`` (same fields)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    type: str
    deliveries: int
    duplicate: bool
    created_at: datetime


class DeliverySummary(BaseModel):
    id: str
    endpoint_id: str
    status: Literal["pending", "delivering", "succeeded", "dead", "held"]
    attempts: int
    next_attempt_at: datetime | None


class EventOut(BaseModel):
    id: str
    tenant_id: str
    type: str
    payload: dict[str, Any]
    caller_id: str | None
    deliveries: list[DeliverySummary]
    created_at: datetime


class EventSummary(BaseModel):
    id: str
    tenant_id: str
    type: str
    caller_id: str | None
    delivery_count: int
    created_at: datetime

    @classmethod
    def of(cls, event: Event) -> "EventSummary":
        return cls(
            id=event.id,
            tenant_id=event.tenant_id,
            type=event.type,
            caller_id=event.caller_id,
            delivery_count=event.delivery_count,
            created_at=event.created_at,
        )
