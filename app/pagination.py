"""Cursor pagination over id-ordered tables.

A cursor is the opaque (base64url) sort key of the last row of the previous page; the next
page continues strictly after it, so rows inserted meanwhile never shift a page.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import Invalid

MAX_PAGE_SIZE = 250
DEFAULT_PAGE_SIZE = 50

Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    items: Sequence[Row]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def _not_a_cursor() -> Invalid:
    return Invalid("/cursor", "is not a cursor returned by this list", location="query")


def decode_cursor(cursor: str) -> str:
    problem = _not_a_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # validate=True: the lenient decoder silently drops foreign characters ("!!!!" -> "").
        sort_key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise problem from error
    # Only what encode_cursor produces: no padding, no '+' or '/', no empty key.
    if not sort_key or encode_cursor(sort_key) != cursor:
        raise problem
    return sort_key


async def fetch_page(
    session: AsyncSession,
    statement: Select[Row],
    sort_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = True,
) -> Page[Row]:
    if cursor is not None:
        after = decode_cursor(cursor)
        # No sort key holds NUL, and PostgreSQL cannot even compare text with one.
        if "\x00" in after:
            raise _not_a_cursor()
        statement = statement.where(sort_column < after if newest_first else sort_column > after)
    order = sort_column.desc() if newest_first else sort_column.asc()
    rows = list((await session.scalars(statement.order_by(order).limit(limit + 1))).all())
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor(str(getattr(rows[-1], sort_column.key))))
