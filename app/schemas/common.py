"""Shared pieces of the wire format."""

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.pagination import Page
from app.storable import text_problem

Item = TypeVar("Item")
Row = TypeVar("Row")


def _storable_text(value: object) -> object:
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise PydanticCustomError("unstorable_text", problem)
    return value


# Put last in an Annotated string type: it runs before the string checks, so a lone
# surrogate gets this message rather than pydantic's "unable to parse raw data".
StorableText = BeforeValidator(_storable_text)
"""Rejects strings PostgreSQL cannot store (NUL, lone surrogates) with a clear message."""

Text = Annotated[str, StorableText]

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64), StorableText]
MetadataValue = Annotated[str, StringConstraints(max_length=1024), StorableText]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=32)]
TenantRef = Annotated[str, StringConstraints(min_length=1, max_length=64), StorableText]


class InputModel(BaseModel):
    """A request body: unknown fields are an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ListResponse(BaseModel, Generic[Item]):
    data: list[Item]
    next_cursor: str | None
    has_more: bool

    @classmethod
    def of(cls, page: Page[Row], mapper: Callable[[Row], Item]) -> "ListResponse[Item]":
        return cls(
            data=[mapper(row) for row in page.items],
            next_cursor=page.next_cursor,
            has_more=page.has_more,
        )
