"""The operator-wide event catalogue; tenants may read it."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import EventType
from app.pagination import Page, fetch_page
from app.payload_schemas import check_schema
from app.schemas.event_types import EventTypeCreate, EventTypeUpdate


async def create_event_type(session: AsyncSession, *, body: EventTypeCreate) -> EventType:
    if body.schema_ is not None:
        check_schema(body.schema_)
    event_type = EventType(name=body.name, description=body.description, schema=body.schema_)
    session.add(event_type)
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise Conflict(f"event type {body.name} already exists") from error
    await session.refresh(event_type)
    return event_type


async def get_event_type(session: AsyncSession, *, name: str) -> EventType:
    event_type = await session.get(EventType, name)
    if event_type is None:
        raise NotFound(f"event type {name} not found")
    return event_type


async def list_event_types(
    session: AsyncSession, *, include_archived: bool, limit: int, cursor: str | None
) -> Page[EventType]:
    statement = select(EventType)
    if not include_archived:
        statement = statement.where(EventType.archived.is_(False))
    return await fetch_page(
        session, statement, EventType.name, limit=limit, cursor=cursor, newest_first=False
    )


async def update_event_type(
    session: AsyncSession, *, name: str, body: EventTypeUpdate
) -> EventType:
    event_type = await get_event_type(session, name=name)
    changed = body.model_fields_set
    if "schema_" in changed:
        if body.schema_ is not None:
            check_schema(body.schema_)
        event_type.schema = body.schema_
    if "description" in changed:
        event_type.description = body.description
    if body.archived is not None:
        event_type.archived = body.archived
    await session.commit()
    await session.refresh(event_type)
    return event_type


async def archive_event_type(session: AsyncSession, *, name: str) -> None:
    """Archived types stay readable (old events refer to them) but can no longer be posted."""
    event_type = await get_event_type(session, name=name)
    event_type.archived = True
    await session.commit()
