from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from app.models import ApiKey
from app.schemas.common import InputModel, StorableText


class ApiKeyCreate(InputModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256), StorableText] | None = (
        None
    )


class ApiKeyOut(BaseModel):
    id: str
    name: str | None
    scope: Literal["operator", "tenant"]
    tenant_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyOut":
        scope: Literal["operator", "tenant"] = "operator" if key.scope == "operator" else "tenant"
        return cls(
            id=key.id,
            name=key.name,
            scope=scope,
            tenant_id=key.tenant_id,
            created_at=key.created_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str
