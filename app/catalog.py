"""A short-lived per-process view of the event-type catalogue, for the ingest hot path.

Ingest would otherwise read the event type (and compile its JSON Schema) on every event.
Changes to a type reach every API process within ``ttl`` seconds.
"""

import time
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import EventType


@dataclass(frozen=True)
class KnownType:
    archived: bool
    validator: Validator | None


class EventTypeCatalog:
    def __init__(self, *, ttl: float = 5.0) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[float, KnownType | None]] = {}

    async def lookup(self, session: AsyncSession, name: str) -> KnownType | None:
        """The registered type, or None when ``name`` is not in the catalogue."""
        cached = self._entries.get(name)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        event_type = await session.get(EventType, name, populate_existing=True)
        known = None if event_type is None else _known(event_type.archived, event_type.schema)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[name] = (now + self._ttl, known)
        return known

    def forget(self, name: str) -> None:
        """A change made through this process applies at once; other processes wait for ttl."""
        self._entries.pop(name, None)


def _known(archived: bool, schema: dict[str, Any] | None) -> KnownType:
    if schema is None:
        return KnownType(archived, None)
    validator: Validator = validator_for(schema, default=Draft202012Validator)(schema)
    return KnownType(archived, validator)
