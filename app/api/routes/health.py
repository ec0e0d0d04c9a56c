import functools
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import ResourcesDep
from app.db import alembic_config

router = APIRouter(tags=["health"])


@functools.cache
def migration_head() -> str | None:
    config = alembic_config("")
    return ScriptDirectory.from_config(config).get_current_head()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "a dependency is unreachable or migrations are behind"}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """PostgreSQL and Redis answer, and the schema is at the newest migration."""
    checks: dict[str, Any] = {}
    try:
        async with resources.engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        expected = migration_head()
        checks["database"] = "ok"
        checks["migrations"] = "ok" if version == expected else f"at {version}, need {expected}"
    except Exception as error:  # readiness reports every failure rather than raising
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        await resources.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = f"unreachable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
