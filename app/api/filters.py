"""Query parameters shared by the support lists."""

from datetime import datetime
from typing import Annotated

from fastapi import Query

from app.schemas.deliveries import DeliveryStatus, ErrorClass

IdFilter = Annotated[str | None, Query(max_length=64)]
TypeFilter = Annotated[str | None, Query(alias="type", max_length=128)]
StatusFilter = Annotated[DeliveryStatus | None, Query()]
ErrorClassFilter = Annotated[ErrorClass | None, Query()]
StatusCodeFilter = Annotated[int | None, Query(ge=100, le=599)]
Since = Annotated[datetime | None, Query(description="inclusive lower bound (RFC 3339)")]
Until = Annotated[datetime | None, Query(description="exclusive upper bound (RFC 3339)")]
