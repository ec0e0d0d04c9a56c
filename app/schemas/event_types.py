from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.models import EventType
from app.schemas.common import InputModel, StorableText
from app.subscriptions import EVENT_TYPE_PATTERN

EventTypeName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=EVENT_TYPE_PATTERN),
    StorableText,
]
Description = Annotated[str, StringConstraints(max_length=1024), StorableText]
# "schema" would shadow a BaseModel attribute, so the field is schema_ under that alias.
JsonSchema = Annotated[dict[str, Any] | None, Field(alias="schema")]


class EventTypeCreate(InputModel):
    name: EventTypeName
    description: Description | None = None
    schema_: JsonSchema = None


class EventTypeUpdate(InputModel):
    description: Description | None = None
    schema_: JsonSchema = None
    archived: StrictBool | None = None


class EventTypeOut(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    name: str
    description: str | None
    schema_: JsonSchema
    archived: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, event_type: EventType) -> "EventTypeOut":
        return cls.model_validate(
            {
                "name": event_type.name,
                "description": event_type.description,
                "schema": event_type.schema,
                "archived": event_type.archived,
                "created_at": event_type.created_at,
                "updated_at": event_type.updated_at,
            }
        )
