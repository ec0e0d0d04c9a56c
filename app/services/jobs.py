"""Durable bulk jobs: replay the DLQ by filter, recover an endpoint's failures since a time.

A job fixes its selection when it is created (``snapshot``) and is worked off in batches
ordered by delivery id. Each batch restarts its deliveries and advances the job's position
in one transaction, so a job resumed after a crash never restarts a delivery twice.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Invalid, NotFound
from app.ids import lower_bound_id, new_id
from app.models import Delivery, Job
from app.services.endpoints import get_endpoint
from app.services.redelivery import DlqFilter, restart_many
from app.services.tenants import get_tenant


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def selection(job: Job) -> Select[str]:
    """The ids of the deliveries a job covers, in the order it works them off."""
    params = job.params
    snapshot = _moment(params["snapshot"])
    statement = select(Delivery.id)
    if job.tenant_id is not None:
        statement = statement.where(Delivery.tenant_id == job.tenant_id)
    if (endpoint_id := params.get("endpoint_id")) is not None:
        statement = statement.where(Delivery.endpoint_id == endpoint_id)
    if job.kind == "dlq_replay":
        statement = statement.where(Delivery.status == "dead", Delivery.dead_at <= snapshot)
        if (event_type := params.get("event_type")) is not None:
            statement = statement.where(Delivery.event_type == event_type)
        if (reason := params.get("reason")) is not None:
            statement = statement.where(Delivery.dead_reason == reason)
        if (since := _moment(params.get("since"))) is not None:
            statement = statement.where(Delivery.dead_at >= since)
        if (until := _moment(params.get("until"))) is not None:
            statement = statement.where(Delivery.dead_at < until)
    else:
        # Recover: what was created in the window and died, or is failing and waiting.
        since = _moment(params["since"])
        assert since is not None
        until = _moment(params.get("until")) or snapshot
        assert until is not None
        statement = statement.where(
            Delivery.id >= lower_bound_id("dlv", int(since.timestamp() * 1000)),
            Delivery.id < lower_bound_id("dlv", int(until.timestamp() * 1000)),
            (Delivery.status == "dead")
            | ((Delivery.status == "pending") & (Delivery.chain_attempts > 0)),
        )
    return statement.order_by(Delivery.id)


async def _create(
    session: AsyncSession, *, kind: str, tenant_id: str | None, params: dict[str, Any]
) -> Job:
    job = Job(
        id=new_id("job"),
        kind=kind,
        tenant_id=tenant_id,
        params=params | {"snapshot": datetime.now().astimezone().isoformat()},
    )
    job.total = (
        await session.scalar(select(func.count()).select_from(selection(job).subquery())) or 0
    )
    session.add(job)
    await session.commit()
    await session.refresh(job)
    return job


async def create_dlq_replay(
    session: AsyncSession, *, principal: Principal, where: DlqFilter
) -> Job:
    tenant_id = principal.tenant_for(where.tenant_id)
    if tenant_id is not None:
        await get_tenant(session, principal=principal, tenant_id=tenant_id)
    if where.endpoint_id is not None:
        await get_endpoint(session, principal=principal, endpoint_id=where.endpoint_id)
    params = {
        "endpoint_id": where.endpoint_id,
        "event_type": where.event_type,
        "reason": where.reason,
        "since": _iso(where.since),
        "until": _iso(where.until),
    }
    return await _create(session, kind="dlq_replay", tenant_id=tenant_id, params=params)


async def create_recover(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: str,
    since: datetime,
    until: datetime | None,
) -> Job:
    endpoint = await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    if until is not None and until <= since:
        raise Invalid("/until", "must be later than since")
    params = {"endpoint_id": endpoint_id, "since": _iso(since), "until": _iso(until)}
    return await _create(session, kind="recover", tenant_id=endpoint.tenant_id, params=params)


async def get_job(session: AsyncSession, *, principal: Principal, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None or (job.tenant_id is not None and not principal.can_see(job.tenant_id)):
        raise NotFound(f"job {job_id} not found")
    if job.tenant_id is None and not principal.is_operator:
        raise NotFound(f"job {job_id} not found")
    return job


async def run_batch(session: AsyncSession, *, job: Job, batch_size: int) -> bool:
    """Restart the next batch and record progress in one transaction; False when finished."""
    statement = selection(job).limit(batch_size).with_for_update(of=Delivery)
    if job.position is not None:
        statement = statement.where(Delivery.id > job.position)
    ids = list((await session.scalars(statement)).all())
    if not ids:
        await session.execute(
            update(Job).where(Job.id == job.id).values(status="succeeded", leased_by=None)
        )
        await session.commit()
        return False
    trigger = "replay" if job.kind == "dlq_replay" else "manual"
    restarted = await restart_many(session, ids=ids, trigger=trigger)
    await session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            position=ids[-1],
            done=Job.done + len(restarted),
            failed=Job.failed + len(ids) - len(restarted),
        )
    )
    await session.commit()
    job.position = ids[-1]
    return True
