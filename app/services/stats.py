"""Per-endpoint delivery statistics over a time window, from indexed id ranges."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import Invalid
from app.ids import lower_bound_id
from app.services.endpoints import get_endpoint

DELIVERY_COUNTS = text(
    """
    SELECT CASE WHEN status = 'pending' AND lease_expires_at > now() THEN 'delivering'
                ELSE status END AS shown,
           count(*)
    FROM deliveries
    WHERE endpoint_id = :endpoint_id AND id >= :low AND id < :high
    GROUP BY shown
    """
)

ATTEMPT_FIGURES = text(
    """
    SELECT count(*) AS total,
           count(*) FILTER (WHERE response_status BETWEEN 200 AND 299) AS succeeded,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
    FROM attempts
    WHERE endpoint_id = :endpoint_id AND id >= :low AND id < :high
    """
)


@dataclass(frozen=True)
class EndpointStats:
    deliveries: dict[str, int]
    attempts: int
    attempts_succeeded: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return self.attempts_succeeded / self.attempts if self.attempts else None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def endpoint_stats(
    session: AsyncSession,
    *,
    principal: Principal,
    endpoint_id: str,
    since: datetime,
    until: datetime,
) -> EndpointStats:
    await get_endpoint(session, principal=principal, endpoint_id=endpoint_id)
    if until <= since:
        raise Invalid("/until", "must be later than since", location="query")
    window = {"endpoint_id": endpoint_id}
    counts = await session.execute(
        DELIVERY_COUNTS,
        window
        | {"low": lower_bound_id("dlv", _ms(since)), "high": lower_bound_id("dlv", _ms(until))},
    )
    figures = (
        await session.execute(
            ATTEMPT_FIGURES,
            window
            | {"low": lower_bound_id("att", _ms(since)), "high": lower_bound_id("att", _ms(until))},
        )
    ).one()
    by_status = dict.fromkeys(("pending", "delivering", "succeeded", "dead", "held"), 0)
    by_status.update({status: count for status, count in counts})
    return EndpointStats(
        deliveries=by_status,
        attempts=figures.total,
        attempts_succeeded=figures.succeeded,
        latency_p50_ms=figures.p50,
        latency_p95_ms=figures.p95,
    )
