from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.models import Attempt, Delivery

DeliveryStatus = Literal["pending", "delivering", "succeeded", "dead", "held"]
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
        return cls.model_validate(delivery, from_attributes=True)


class DeliveryWithAttempts(DeliveryOut):
    attempt_log: list[AttemptOut]
