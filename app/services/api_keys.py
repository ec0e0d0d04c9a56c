"""API keys, created by operators; the token is returned once."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, issue_key
from app.errors import NotFound
from app.models import ApiKey
from app.pagination import Page, fetch_page
from app.services.tenants import commit_unless_tenant_vanished, find_tenant


async def create_api_key(
    session: AsyncSession, *, principal: Principal, tenant_id: str | None, name: str | None
) -> tuple[ApiKey, str]:
    """A new key for ``tenant_id``, or an operator key when it is None."""
    _authorise(principal, tenant_id)
    if tenant_id is not None:
        await find_tenant(session, tenant_id=tenant_id)
    key_id, token, key_hash = issue_key()
    key = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        scope="operator" if tenant_id is None else "tenant",
        name=name,
        key_hash=key_hash,
    )
    session.add(key)
    await commit_unless_tenant_vanished(session, tenant_id=tenant_id)
    await session.refresh(key)
    return key, token


async def list_api_keys(
    session: AsyncSession, *, principal: Principal, tenant_id: str, limit: int, cursor: str | None
) -> Page[ApiKey]:
    _authorise(principal, tenant_id)
    await find_tenant(session, tenant_id=tenant_id)
    statement = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    return await fetch_page(session, statement, ApiKey.id, limit=limit, cursor=cursor)


async def delete_api_key(session: AsyncSession, *, principal: Principal, key_id: str) -> None:
    key = await session.get(ApiKey, key_id)
    if key is None or not principal.can_see(key.tenant_id or ""):
        raise NotFound(f"api key {key_id} not found")
    principal.require_operator()
    await session.delete(key)
    await session.commit()


def _authorise(principal: Principal, tenant_id: str | None) -> None:
    # Another tenant's id is not found (404) before the key is found lacking (403).
    principal.tenant_for(tenant_id)
    principal.require_operator()
