"""Services authorise on their own, so no router can forget to: 404 before 403.

A tenant key naming another tenant's object gets 404 (it must not learn the id exists), and
naming its own gets 403 where the operation needs an operator key.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.auth import Principal
from app.errors import Forbidden, NotFound
from app.models import Tenant
from app.schemas.tenants import TenantCreate, TenantUpdate
from app.services import api_keys, tenants

OPERATOR = Principal("operator", None, None)


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(database_url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    await engine.dispose()


async def make(session: AsyncSession, name: str) -> Tenant:
    return await tenants.create_tenant(session, principal=OPERATOR, body=TenantCreate(name=name))


async def operator_only(session: AsyncSession, name: str, key: Principal, tenant_id: str) -> Any:
    if name == "update tenant":
        body = TenantUpdate(name="x")
        return await tenants.update_tenant(session, principal=key, tenant_id=tenant_id, body=body)
    if name == "delete tenant":
        return await tenants.delete_tenant(session, principal=key, tenant_id=tenant_id)
    if name == "create key":
        return await api_keys.create_api_key(session, principal=key, tenant_id=tenant_id, name=None)
    return await api_keys.list_api_keys(
        session, principal=key, tenant_id=tenant_id, limit=10, cursor=None
    )


@pytest.mark.parametrize("name", ["update tenant", "delete tenant", "create key", "list keys"])
async def test_operator_only_operations_hide_others_then_forbid(
    session: AsyncSession, name: str
) -> None:
    own, other = await make(session, "own"), await make(session, "other")
    key = Principal("tenant", own.id, "key_x")
    with pytest.raises(NotFound):
        await operator_only(session, name, key, other.id)
    with pytest.raises(Forbidden):
        await operator_only(session, name, key, own.id)


async def test_tenant_reads_and_operator_scoped_calls(session: AsyncSession) -> None:
    own, other = await make(session, "own"), await make(session, "other")
    key = Principal("tenant", own.id, "key_x")
    assert (await tenants.get_tenant(session, principal=key, tenant_id=own.id)).id == own.id
    with pytest.raises(NotFound):
        await tenants.get_tenant(session, principal=key, tenant_id=other.id)
    with pytest.raises(Forbidden):
        await tenants.create_tenant(session, principal=key, body=TenantCreate(name="x"))
    with pytest.raises(Forbidden):
        await tenants.list_tenants(session, principal=key, limit=10, cursor=None)
    with pytest.raises(Forbidden):  # an operator key
        await api_keys.create_api_key(session, principal=key, tenant_id=None, name=None)
