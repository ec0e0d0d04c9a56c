"""The FastAPI application: built from explicit settings, resources owned by its lifespan."""

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app import __version__
from app.api.instrumentation import RequestMetrics
from app.api.problems import (
    PROBLEM_RESPONSES,
    BodySizeLimit,
    Problem,
    UnexpectedErrors,
    install_problem_handlers,
)
from app.api.resources import open_resources
from app.api.routes import (
    api_keys,
    attempts,
    deliveries,
    dlq,
    endpoints,
    event_types,
    events,
    health,
    jobs,
    metrics,
    tenants,
)
from app.api.url_guard import NulInUrl
from app.logs import configure_logging
from app.settings import Settings
from app.tracing import configure_tracing

log = logging.getLogger("herald.api")

# Bodies carry a payload plus a small envelope (tenant, type, id).
_ENVELOPE_ALLOWANCE = 16 * 1024


def create_app(settings: Settings) -> FastAPI:
    operator_key = settings.operator_key.get_secret_value() if settings.operator_key else None
    if operator_key is None:
        operator_key = "hrk_dev_" + secrets.token_urlsafe(24)
        log.warning("HERALD_OPERATOR_KEY is not set; this process accepts %s", operator_key)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_resources(settings, operator_key=operator_key) as resources:
            yield {"resources": resources}

    app = FastAPI(
        title="Herald",
        version=__version__,
        description="Self-hosted outbound webhook delivery.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    # Each add_middleware wraps the previous ones: UnexpectedErrors, added last, is outermost
    # and so also answers for errors raised by the others.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_payload_bytes + _ENVELOPE_ALLOWANCE)
    app.add_middleware(NulInUrl)
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(RequestMetrics)
    for module in (
        health,
        tenants,
        api_keys,
        event_types,
        endpoints,
        events,
        deliveries,
        attempts,
        dlq,
        jobs,
        metrics,
    ):
        app.include_router(module.router)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """Every /v1 operation documents its problem+json answers instead of FastAPI's default 422."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem_defs = components["Problem"].pop("$defs", {})
    components.update(problem_defs)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            operation["responses"].update(PROBLEM_RESPONSES)
    app.openapi_schema = schema
    return schema


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory``: settings come from the environment."""
    settings = Settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_format == "json")
    configure_tracing(settings, service="herald-api")
    return create_app(settings)
