from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from app.models import Tenant
from app.schemas.common import InputModel, Metadata, StorableText

TenantName = Annotated[str, StringConstraints(min_length=1, max_length=256), StorableText]


class TenantCreate(InputModel):
    name: TenantName
    metadata: Metadata = {}


class TenantUpdate(InputModel):
    name: TenantName | None = None
    metadata: Metadata | None = None


class TenantOut(BaseModel):
    id: str
    name: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> "TenantOut":
        return cls(
            id=tenant.id,
            name=tenant.name,
            metadata=tenant.metadata_,
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
        )
