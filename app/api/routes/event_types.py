from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, ResourcesDep, SessionDep
from app.schemas.common import ListResponse
from app.schemas.event_types import EventTypeCreate, EventTypeOut, EventTypeUpdate
from app.services import event_types

router = APIRouter(prefix="/v1/event-types", tags=["event types"])

Name = Annotated[str, Path(max_length=128)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_event_type(
    body: EventTypeCreate, session: SessionDep, principal: AuthDep
) -> EventTypeOut:
    principal.require_operator()
    return EventTypeOut.of(await event_types.create_event_type(session, body=body))


@router.get("")
async def list_event_types(
    session: SessionDep,
    _: AuthDep,
    include_archived: Annotated[bool, Query()] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[EventTypeOut]:
    page = await event_types.list_event_types(
        session, include_archived=include_archived, limit=limit, cursor=cursor
    )
    return ListResponse[EventTypeOut].of(page, EventTypeOut.of)


@router.get("/{name}")
async def get_event_type(name: Name, session: SessionDep, _: AuthDep) -> EventTypeOut:
    return EventTypeOut.of(await event_types.get_event_type(session, name=name))


@router.patch("/{name}")
async def update_event_type(
    name: Name,
    body: EventTypeUpdate,
    session: SessionDep,
    principal: AuthDep,
    resources: ResourcesDep,
) -> EventTypeOut:
    principal.require_operator()
    updated = await event_types.update_event_type(session, name=name, body=body)
    resources.catalog.forget(name)
    return EventTypeOut.of(updated)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def archive_event_type(
    name: Name, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> None:
    """Archives the type: it stays readable but can no longer be posted."""
    principal.require_operator()
    await event_types.archive_event_type(session, name=name)
    resources.catalog.forget(name)
