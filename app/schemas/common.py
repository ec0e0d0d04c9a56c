"""Shared pieces of the wire format."""

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Item = TypeVar("Item")

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=1024)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=32)]


class InputModel(BaseModel):
    """A request body: unknown fields are an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ListResponse(BaseModel, Generic[Item]):
    data: list[Item]
    next_cursor: str | None
    has_more: bool
