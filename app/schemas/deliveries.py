from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from app.models import Attempt, Delivery

DeliveryStatus = Literal["pending", "delivering", "succeeded", "dead", "held"]
_STORED: dict[str, DeliveryStatus] = {
    "pending": "pending",
    "succeeded": "succeeded",
    "dead": "dead",
    "held": "held",
}


def shown_status(delivery: Delivery) -> DeliveryStatus:
    """A pending delivery under a live lease is being sent right now."""
    if (
        delivery.status == "pending"
        and delivery.lease_expires_at is not None
        and delivery.lease_expires_at > datetime.now(UTC)
    ):
        return "delivering"
    return _STORED[delivery.status]


Trigger = Literal["scheduled", "manual", "replay", "probe"]
ErrorClass = Literal["timeout", "connect", "dns", "tls", "blocked", "http_status"]


class AttemptOut(BaseModel):
    id: str
    delivery_id: str
    endpoint_id: str
    number: int
    trigger: Trigger
    url: str
    request_headers: dict[str, str]
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: str | None
    duration_ms: int
    error_class: ErrorClass | None
    error_detail: str | None
    worker_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, attempt: Attempt) -> "AttemptOut":
        return cls.model_validate(attempt, from_attributes=True)


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    endpoint_id: str
    tenant_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    dead_reason: str | None
    dead_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> "DeliveryOut":
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            endpoint_id=delivery.endpoint_id,
            tenant_id=delivery.tenant_id,
            event_type=delivery.event_type,
            status=shown_status(delivery),
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            dead_reason=delivery.dead_reason,
            dead_at=delivery.dead_at,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )


class DeliveryWithAttempts(DeliveryOut):
    attempt_log: list[AttemptOut]
