"""Tenants: the operator's customers. Operator keys manage them; a tenant key reads its own."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import NotFound
from app.ids import new_id
from app.models import Tenant
from app.pagination import Page, fetch_page
from app.schemas.tenants import TenantCreate, TenantUpdate


async def find_tenant(session: AsyncSession, *, tenant_id: str) -> Tenant:
    """The tenant, whoever asks: for services that have already authorised the caller."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def commit_unless_tenant_vanished(session: AsyncSession, *, tenant_id: str | None) -> None:
    """Commit rows that belong to ``tenant_id``; 404 when it was deleted since it was read.

    Reading the tenant takes no lock, so a concurrent delete can win the race, and the
    foreign key then fails the insert. Any other integrity error is a bug and propagates.
    """
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        if tenant_id is None or await _exists(session, tenant_id):
            raise
        raise NotFound(f"tenant {tenant_id} not found") from error


async def _exists(session: AsyncSession, tenant_id: str) -> bool:
    return await session.scalar(select(Tenant.id).where(Tenant.id == tenant_id)) is not None


async def create_tenant(
    session: AsyncSession, *, principal: Principal, body: TenantCreate
) -> Tenant:
    principal.require_operator()
    tenant = Tenant(id=new_id("ten"), name=body.name, metadata_=body.metadata)
    session.add(tenant)
    await session.commit()
    await session.refresh(tenant)
    return tenant


async def get_tenant(session: AsyncSession, *, principal: Principal, tenant_id: str) -> Tenant:
    principal.tenant_for(tenant_id)
    return await find_tenant(session, tenant_id=tenant_id)


async def list_tenants(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> Page[Tenant]:
    principal.require_operator()
    return await fetch_page(session, select(Tenant), Tenant.id, limit=limit, cursor=cursor)


async def update_tenant(
    session: AsyncSession, *, principal: Principal, tenant_id: str, body: TenantUpdate
) -> Tenant:
    _authorise_management(principal, tenant_id)
    tenant = await find_tenant(session, tenant_id=tenant_id)
    if body.name is not None:
        tenant.name = body.name
    if body.metadata is not None:
        tenant.metadata_ = body.metadata
    await session.commit()
    await session.refresh(tenant)
    return tenant


async def delete_tenant(session: AsyncSession, *, principal: Principal, tenant_id: str) -> None:
    """Deletes the tenant with everything it owns (keys, endpoints, events, deliveries)."""
    _authorise_management(principal, tenant_id)
    tenant = await find_tenant(session, tenant_id=tenant_id)
    await session.delete(tenant)
    await session.commit()


def _authorise_management(principal: Principal, tenant_id: str) -> None:
    # In this order: another tenant's id is not found (404) before the key is found lacking
    # (403), so a tenant key cannot learn which tenant ids exist.
    principal.tenant_for(tenant_id)
    principal.require_operator()
