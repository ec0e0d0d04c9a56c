from typing import Annotated

from fastapi import APIRouter, Path, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, SessionDep
from app.schemas.common import ListResponse
from app.schemas.tenants import TenantCreate, TenantOut, TenantUpdate
from app.services import tenants

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])

TenantId = Annotated[str, Path(max_length=64)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(body: TenantCreate, session: SessionDep, principal: AuthDep) -> TenantOut:
    return TenantOut.of(await tenants.create_tenant(session, principal=principal, body=body))


@router.get("")
async def list_tenants(
    session: SessionDep, principal: AuthDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> ListResponse[TenantOut]:
    page = await tenants.list_tenants(session, principal=principal, limit=limit, cursor=cursor)
    return ListResponse[TenantOut].of(page, TenantOut.of)


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: TenantId, session: SessionDep, principal: AuthDep) -> TenantOut:
    tenant = await tenants.get_tenant(session, principal=principal, tenant_id=tenant_id)
    return TenantOut.of(tenant)


@router.patch("/{tenant_id}")
async def update_tenant(
    tenant_id: TenantId, body: TenantUpdate, session: SessionDep, principal: AuthDep
) -> TenantOut:
    tenant = await tenants.update_tenant(
        session, principal=principal, tenant_id=tenant_id, body=body
    )
    return TenantOut.of(tenant)


@router.delete("/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(tenant_id: TenantId, session: SessionDep, principal: AuthDep) -> None:
    await tenants.delete_tenant(session, principal=principal, tenant_id=tenant_id)
