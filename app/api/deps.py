"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.resources import Resources
from app.auth import Principal, authenticate
from app.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a thread pool,
# a hop per request that costs more than the lookup itself.
async def get_resources(request: Request) -> Resources:
    return cast(Resources, request.state.resources)


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    async with resources.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


_bearer = HTTPBearer(auto_error=False, description="an operator or tenant API key")


async def get_principal(
    session: SessionDep,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate(
        session,
        token=credentials.credentials if credentials else None,
        operator_key=resources.operator_key,
    )


AuthDep = Annotated[Principal, Depends(get_principal)]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="next_cursor of the previous page")
]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE
