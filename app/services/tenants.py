"""Tenants: the operator's customers. Operator keys only."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.ids import new_id
from app.models import Tenant
from app.pagination import Page, fetch_page
from app.schemas.tenants import TenantCreate, TenantUpdate


async def create_tenant(session: AsyncSession, *, body: TenantCreate) -> Tenant:
    tenant = Tenant(id=new_id("ten"), name=body.name, metadata_=body.metadata)
    session.add(tenant)
    await session.commit()
    await session.refresh(tenant)
    return tenant


async def get_tenant(session: AsyncSession, *, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def list_tenants(session: AsyncSession, *, limit: int, cursor: str | None) -> Page[Tenant]:
    return await fetch_page(session, select(Tenant), Tenant.id, limit=limit, cursor=cursor)


async def update_tenant(session: AsyncSession, *, tenant_id: str, body: TenantUpdate) -> Tenant:
    tenant = await get_tenant(session, tenant_id=tenant_id)
    if body.name is not None:
        tenant.name = body.name
    if body.metadata is not None:
        tenant.metadata_ = body.metadata
    await session.commit()
    await session.refresh(tenant)
    return tenant


async def delete_tenant(session: AsyncSession, *, tenant_id: str) -> None:
    """Deletes the tenant with everything it owns (keys, endpoints, events, deliveries)."""
    tenant = await get_tenant(session, tenant_id=tenant_id)
    await session.delete(tenant)
    await session.commit()
