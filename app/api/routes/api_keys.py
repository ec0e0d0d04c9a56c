from typing import Annotated

from fastapi import APIRouter, Path, status

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, SessionDep
from app.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.schemas.common import ListResponse
from app.services import api_keys

router = APIRouter(prefix="/v1", tags=["api keys"])

TenantId = Annotated[str, Path(max_length=64)]
KeyId = Annotated[str, Path(max_length=64)]


@router.post("/tenants/{tenant_id}/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    tenant_id: TenantId, body: ApiKeyCreate, session: SessionDep, principal: AuthDep
) -> ApiKeyCreated:
    key, token = await api_keys.create_api_key(
        session, principal=principal, tenant_id=tenant_id, name=body.name
    )
    return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), key=token)


@router.get("/tenants/{tenant_id}/api-keys")
async def list_api_keys(
    tenant_id: TenantId,
    session: SessionDep,
    principal: AuthDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[ApiKeyOut]:
    page = await api_keys.list_api_keys(
        session, principal=principal, tenant_id=tenant_id, limit=limit, cursor=cursor
    )
    return ListResponse[ApiKeyOut].of(page, ApiKeyOut.of)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_api_key(key_id: KeyId, session: SessionDep, principal: AuthDep) -> None:
    await api_keys.delete_api_key(session, principal=principal, key_id=key_id)
