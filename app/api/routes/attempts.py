from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, SessionDep
from app.api.filters import ErrorClassFilter, IdFilter, Since, StatusCodeFilter, Until
from app.schemas.common import ListResponse
from app.schemas.deliveries import AttemptOut
from app.services import logs
from app.services.logs import TimeRange

router = APIRouter(prefix="/v1/attempts", tags=["attempts"])


@router.get("")
async def list_attempts(
    session: SessionDep,
    principal: AuthDep,
    tenant_id: IdFilter = None,
    endpoint_id: IdFilter = None,
    delivery_id: IdFilter = None,
    response_status: StatusCodeFilter = None,
    error_class: ErrorClassFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[AttemptOut]:
    """The attempt log, newest first."""
    page = await logs.list_attempts(
        session,
        principal=principal,
        tenant_id=tenant_id,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        response_status=response_status,
        error_class=error_class,
        window=TimeRange(since, until),
        limit=limit,
        cursor=cursor,
    )
    return ListResponse[AttemptOut].of(page, AttemptOut.of)


@router.get("/{attempt_id}")
async def get_attempt(
    attempt_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: AuthDep
) -> AttemptOut:
    """One request: headers sent (secrets redacted), response status, headers and body."""
    return AttemptOut.of(
        await logs.get_attempt(session, principal=principal, attempt_id=attempt_id)
    )
