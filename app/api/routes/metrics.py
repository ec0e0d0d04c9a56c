"""``GET /metrics``: this API process's counters plus database-wide gauges read at scrape."""

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app import metrics
from app.api.deps import ResourcesDep

router = APIRouter(tags=["health"])

# Each statement walks a partial index, so a scrape stays cheap with millions of rows.
GAUGES = text(
    """
    SELECT
        (SELECT count(*) FROM deliveries
         WHERE status = 'pending' AND next_attempt_at <= now()) AS due,
        (SELECT EXTRACT(EPOCH FROM now() - min(next_attempt_at)) FROM deliveries
         WHERE status = 'pending' AND next_attempt_at <= now()) AS oldest_due_s,
        (SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead,
        (SELECT count(*) FROM endpoints WHERE circuit_state <> 'closed') AS open_circuits,
        (SELECT count(*) FROM deliveries WHERE status = 'held') AS held
    """
)
GAUGE_TTL_S = 5.0
_refreshed_at = 0.0


async def _refresh_gauges(resources: ResourcesDep) -> None:
    global _refreshed_at
    if time.monotonic() - _refreshed_at < GAUGE_TTL_S:
        return
    async with resources.engine.connect() as connection:
        row = (await connection.execute(GAUGES)).one()
    metrics.due_backlog.set(row.due)
    metrics.due_oldest_age.set(float(row.oldest_due_s or 0))
    metrics.dlq_size.set(row.dead)
    metrics.circuits_open.set(row.open_circuits)
    metrics.held_deliveries.set(row.held)
    _refreshed_at = time.monotonic()


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def prometheus(resources: ResourcesDep) -> Response:
    await _refresh_gauges(resources)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
