from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from app.models import Job
from app.schemas.common import InputModel
from app.schemas.event_types import EventTypeName

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
JobKind = Literal["dlq_replay", "recover"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


class ReplayRequest(InputModel):
    """Which dead deliveries to replay; every field narrows the selection."""

    tenant_id: Id | None = None
    endpoint_id: Id | None = None
    type: EventTypeName | None = None
    reason: Literal["exhausted", "gone", "circuit_open"] | None = None
    since: datetime | None = None
    until: datetime | None = None


class RecoverRequest(InputModel):
    since: datetime
    until: datetime | None = None


class JobOut(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    tenant_id: str | None
    total: int
    done: int
    failed: int
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> "JobOut":
        return cls.model_validate(job, from_attributes=True)
