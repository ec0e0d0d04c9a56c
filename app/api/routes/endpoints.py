import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from redis.exceptions import RedisError

from app.api.deps import DEFAULT_LIMIT, AuthDep, Cursor, Limit, ResourcesDep, SessionDep
from app.api.filters import Since, Until
from app.circuit import reset_counters
from app.schemas.common import ListResponse
from app.schemas.endpoints import (
    DeliveryCounts,
    EndpointCreate,
    EndpointOut,
    EndpointStatsOut,
    EndpointUpdate,
    LatencyMs,
    SecretOut,
    SecretRotate,
)
from app.schemas.events import EventAccepted
from app.schemas.jobs import JobOut, RecoverRequest
from app.services import endpoint_secrets, endpoints, events, jobs, stats

log = logging.getLogger("herald.api")

router = APIRouter(prefix="/v1/endpoints", tags=["endpoints"])

EndpointId = Annotated[str, Path(max_length=64)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    body: EndpointCreate, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> EndpointOut:
    endpoint = await endpoints.create_endpoint(
        session,
        principal=principal,
        body=body,
        secret_box=resources.secret_box,
        https_only=resources.settings.https_only,
    )
    return EndpointOut.of(endpoint)


@router.get("")
async def list_endpoints(
    session: SessionDep,
    principal: AuthDep,
    tenant_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ListResponse[EndpointOut]:
    page = await endpoints.list_endpoints(
        session, principal=principal, tenant_id=tenant_id, limit=limit, cursor=cursor
    )
    return ListResponse(
        data=[EndpointOut.of(e) for e in page.items],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
    )


@router.get("/{endpoint_id}")
async def get_endpoint(
    endpoint_id: EndpointId, session: SessionDep, principal: AuthDep
) -> EndpointOut:
    endpoint = await endpoints.get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    return EndpointOut.of(endpoint)


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: EndpointId,
    body: EndpointUpdate,
    session: SessionDep,
    principal: AuthDep,
    resources: ResourcesDep,
) -> EndpointOut:
    endpoint = await endpoints.update_endpoint(
        session,
        principal=principal,
        endpoint_id=endpoint_id,
        body=body,
        settings=resources.settings,
    )
    if body.enabled:
        # Held deliveries were released and the circuit closed: start its count afresh and
        # claim them now.
        await _forget_outcomes(resources, endpoint_id)
        resources.waker.wake()
    return EndpointOut.of(endpoint)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(endpoint_id: EndpointId, session: SessionDep, principal: AuthDep) -> None:
    await endpoints.delete_endpoint(session, principal=principal, endpoint_id=endpoint_id)


@router.post("/{endpoint_id}/circuit/reset")
async def reset_circuit(
    endpoint_id: EndpointId, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> EndpointOut:
    """Close the endpoint's circuit now: its held deliveries are sent again, in due order."""
    endpoint = await endpoints.reset_circuit(
        session, principal=principal, endpoint_id=endpoint_id, settings=resources.settings
    )
    await _forget_outcomes(resources, endpoint_id)
    resources.waker.wake()
    return EndpointOut.of(endpoint)


async def _forget_outcomes(resources: ResourcesDep, endpoint_id: str) -> None:
    try:
        await reset_counters(resources.redis, [endpoint_id])
    except (RedisError, OSError) as error:
        # The circuit is closed in PostgreSQL; old counts can at worst open it again sooner.
        log.warning("could not reset circuit counters of %s: %s", endpoint_id, error)


@router.post("/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED)
async def send_test_event(
    endpoint_id: EndpointId, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> EventAccepted:
    """Send a ``test.webhook`` event to this endpoint now, through the normal delivery path."""
    accepted = await events.send_test_event(
        session,
        principal=principal,
        endpoint_id=endpoint_id,
        idempotency_window=resources.settings.idempotency_window,
    )
    resources.waker.wake()
    return EventAccepted.model_validate(accepted)


@router.get("/{endpoint_id}/stats")
async def get_stats(
    endpoint_id: EndpointId,
    session: SessionDep,
    principal: AuthDep,
    since: Since = None,
    until: Until = None,
) -> EndpointStatsOut:
    """Deliveries by status, attempt success rate and latency over a window (default 24 h)."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=24)
    figures = await stats.endpoint_stats(
        session, principal=principal, endpoint_id=endpoint_id, since=since, until=until
    )
    return EndpointStatsOut(
        endpoint_id=endpoint_id,
        since=since,
        until=until,
        deliveries=DeliveryCounts(**figures.deliveries, total=sum(figures.deliveries.values())),
        attempts=figures.attempts,
        success_rate=figures.success_rate,
        latency_ms=LatencyMs(p50=figures.latency_p50_ms, p95=figures.latency_p95_ms),
    )


@router.post("/{endpoint_id}/recover", status_code=status.HTTP_202_ACCEPTED)
async def recover(
    endpoint_id: EndpointId,
    body: RecoverRequest,
    session: SessionDep,
    principal: AuthDep,
    resources: ResourcesDep,
) -> JobOut:
    """Re-deliver what was sent to this endpoint in the window and died or is still failing."""
    job = await jobs.create_recover(
        session, principal=principal, endpoint_id=endpoint_id, since=body.since, until=body.until
    )
    resources.waker.wake()
    return JobOut.of(job)


@router.get("/{endpoint_id}/secret")
async def get_secret(
    endpoint_id: EndpointId, session: SessionDep, principal: AuthDep, resources: ResourcesDep
) -> SecretOut:
    return await endpoint_secrets.get_secret(
        session, principal=principal, endpoint_id=endpoint_id, secret_box=resources.secret_box
    )


@router.post("/{endpoint_id}/secret/rotate")
async def rotate_secret(
    endpoint_id: EndpointId,
    body: SecretRotate,
    session: SessionDep,
    principal: AuthDep,
    resources: ResourcesDep,
) -> SecretOut:
    grace = (
        timedelta(seconds=body.grace_period_s)
        if body.grace_period_s is not None
        else resources.settings.secret_rotation_grace
    )
    return await endpoint_secrets.rotate_secret(
        session,
        principal=principal,
        endpoint_id=endpoint_id,
        secret=body.secret,
        grace_period=grace,
        secret_box=resources.secret_box,
    )
