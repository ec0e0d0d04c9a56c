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
    principal.require_operator()
    return TenantOut.of(await tenants.create_tenant(session, body=body))


@router.get("")
async def list_tenants(
    session: SessionDep, principal: AuthDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> ListResponse[TenantOut]:
    principal.require_operator()
    page = await tenants.list_tenants(session, limit=limit, cursor=cursor)
    return ListResponse(
        data=[TenantOut.of(t) for t in page.items],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: TenantId, session: SessionDep, principal: AuthDep) -> TenantOut:
    principal.tenant_for(tenant_id)
    return TenantOut.of(await tenants.get_tenant(session, tenant_id=tenant_id))


@router.patch("/{tenant_id}")
async def update_tenant(
    tenant_id: TenantId, body: TenantUpdate, session: SessionDep, principal: AuthDep
) -> TenantOut:
    principal.tenant_for(tenant_id)
    principal.require_operator()
    return TenantOut.of(await tenants.update_tenant(session, tenant_id=tenant_id, body=body))


@router.delete("/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(tenant_id: TenantId, session: SessionDep, principal: AuthDep) -> None:
    principal.tenant_for(tenant_id)
    principal.require_operator()
    await tenants.delete_tenant(session, tenant_id=tenant_id)
