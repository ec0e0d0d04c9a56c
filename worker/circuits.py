"""Circuit breaker transitions made by the workers.

Outcome-driven ones follow each flush: the outcomes are counted in Redis (``worker.limits``)
and a circuit whose threshold was reached is opened in PostgreSQL; a probe's outcome closes
or re-opens its circuit in the transaction that records it. Time-driven ones belong to the
keeper loop: sending a probe when a cool-down ends, dead-lettering deliveries held longer
than the hold limit, disabling endpoints whose circuit stayed open past the disable limit.
Every transition is a conditional UPDATE, so workers racing for one change it once.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from app import endpoint_state, operational
from app.circuit import BreakerPolicy
from app.operational import Notification, dead_lettered, endpoint_notification
from app.settings import Settings
from worker.limits import Counted, Outcomes
from worker.loops import WakeableLoop

log = logging.getLogger("herald.worker")

# A half-open circuit whose probe has not come back by then gets another probe.
PROBE_DEADLINE_LEASES = 2

# $1 when an unanswered probe is given up. Locks each due endpoint, promotes its earliest
# held delivery to be the probe, and marks the circuit half-open; an endpoint with nothing
# held stays open until a delivery for it arrives.
PROMOTE_PROBES = """
WITH due AS (
    SELECT id FROM endpoints
    WHERE circuit_state <> 'closed' AND enabled AND circuit_next_probe_at <= now()
    FOR UPDATE SKIP LOCKED
), probe AS (
    SELECT first.id, due.id AS endpoint_id
    FROM due
    CROSS JOIN LATERAL (
        SELECT d.id FROM deliveries AS d
        WHERE d.endpoint_id = due.id AND d.status = 'held'
        ORDER BY d.next_attempt_at NULLS LAST
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AS first
), promoted AS (
    UPDATE deliveries AS d
    SET status = 'pending', trigger = 'probe', next_attempt_at = now(), updated_at = now()
    FROM probe
    WHERE d.id = probe.id
    RETURNING d.endpoint_id
)
UPDATE endpoints AS ep
SET circuit_state = 'half_open', circuit_next_probe_at = now() + $1::interval,
    updated_at = now()
FROM promoted
WHERE ep.id = promoted.endpoint_id
RETURNING ep.id
"""

# $1 hold limit, $2 batch size.
EXPIRE_HELD = """
WITH expired AS (
    SELECT held.id
    FROM endpoints AS ep
    CROSS JOIN LATERAL (
        SELECT d.id FROM deliveries AS d
        WHERE d.endpoint_id = ep.id AND d.status = 'held'
          AND d.next_attempt_at < now() - $1::interval
        ORDER BY d.next_attempt_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ) AS held
    WHERE ep.circuit_state <> 'closed' AND ep.enabled
    LIMIT $2
)
UPDATE deliveries AS d
SET status = 'dead', dead_reason = 'circuit_open', dead_at = now(), finished_at = now(),
    next_attempt_at = NULL, updated_at = now()
FROM expired
WHERE d.id = expired.id
RETURNING d.id, d.event_id, d.event_type, d.endpoint_id, d.tenant_id, d.attempts
"""

NEXT_PROBE_AT = """
SELECT min(circuit_next_probe_at) FROM endpoints WHERE circuit_state <> 'closed' AND enabled
"""


def policy_of(row: Mapping[str, Any], settings: Settings) -> BreakerPolicy:
    override = row["circuit_breaker"]
    return BreakerPolicy.of(settings, orjson.loads(override) if override else None)


@dataclass(frozen=True)
class Result:
    """One finished attempt, as the breaker sees it."""

    row: Mapping[str, Any]
    succeeded: bool

    @property
    def is_probe(self) -> bool:
        return bool(self.row["trigger"] == "probe" and self.row["circuit_state"] == "half_open")


def count_outcomes(results: Sequence[Result], settings: Settings) -> list[Outcomes]:
    """Per endpoint, in finishing order: what ``Limits.settle`` counts for the breaker."""
    by_endpoint: dict[str, list[Result]] = {}
    for result in results:
        by_endpoint.setdefault(result.row["endpoint_id"], []).append(result)
    outcomes = []
    for endpoint_id, items in by_endpoint.items():
        first = items[0].row
        policy = policy_of(first, settings)
        # Only a closed circuit counts outcomes; a probe's outcome decides on its own.
        counted = [i for i in items if not i.is_probe and i.row["circuit_state"] == "closed"]
        trailing = 0
        for item in counted:
            trailing = 0 if item.succeeded else trailing + 1
        if not counted or not policy.enabled:
            continue
        successes = sum(i.succeeded for i in counted)
        outcomes.append(
            Outcomes(
                endpoint_id,
                (),
                successes=successes,
                failures=len(counted) - successes,
                trailing_failures=trailing,
                policy=policy,
            )
        )
    return outcomes


async def settle_probes(
    connection: asyncpg.Connection, results: Sequence[Result], settings: Settings
) -> tuple[list[str], list[Notification]]:
    """Close or re-open the circuits whose probe came back; returns the endpoints closed."""
    succeeded = sorted({r.row["endpoint_id"] for r in results if r.is_probe and r.succeeded})
    failed = {r.row["endpoint_id"]: r.row for r in results if r.is_probe and not r.succeeded}
    notifications = []
    closed: list[str] = []
    if succeeded:
        rows = await connection.fetch(endpoint_state.CLOSE_CIRCUITS, succeeded, ["half_open"])
        closed = [row["id"] for row in rows]
        await connection.execute(
            endpoint_state.RELEASE_HELD, [row["id"] for row in rows if row["enabled"]]
        )
        notifications += [
            endpoint_notification("endpoint.circuit_closed", row, reason="probe_succeeded")
            for row in rows
        ]
    if failed:
        await connection.execute(
            endpoint_state.REOPEN_CIRCUITS,
            list(failed),
            [
                policy_of(row, settings).cooldown_after(row["circuit_reopens"] + 1)
                for row in failed.values()
            ],
        )
    return closed, notifications


async def open_tripped(
    pool: asyncpg.Pool,
    *,
    counted: Mapping[str, Counted],
    shown: Mapping[str, int],
    policies: Mapping[str, BreakerPolicy],
    settings: Settings,
) -> list[str]:
    """Mirror failure counts to the endpoint rows and open the circuits that tripped."""
    changed = {
        e: c.consecutive_failures for e, c in counted.items() if shown[e] != c.consecutive_failures
    }
    tripped = {e: c for e, c in counted.items() if c.trip}
    if not changed and not tripped:
        return []
    async with pool.acquire() as connection, connection.transaction():
        if changed:
            await connection.execute(
                endpoint_state.COUNT_FAILURES, list(changed), list(changed.values())
            )
        if not tripped:
            return []
        opened = await connection.fetch(
            endpoint_state.OPEN_CIRCUITS,
            list(tripped),
            [c.consecutive_failures for c in tripped.values()],
            [policies[e].cooldown for e in tripped],
        )
        await connection.execute(endpoint_state.HOLD_WAITING, [row["id"] for row in opened])
        await operational.record(
            connection,
            [
                endpoint_notification(
                    "endpoint.circuit_opened",
                    row,
                    failures=row["circuit_failures"],
                    opened_at=row["circuit_opened_at"],
                    next_probe_at=row["circuit_next_probe_at"],
                )
                for row in opened
            ],
            settings=settings,
        )
    for row in opened:
        log.warning(
            "circuit opened after %s failures",
            row["circuit_failures"],
            extra={"endpoint_id": row["id"], "tenant_id": row["tenant_id"]},
        )
    return [row["id"] for row in opened]


class CircuitKeeper(WakeableLoop):
    """The time-driven transitions, in every worker (the statements make them race-safe)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: Settings,
        on_probe: Callable[[], None],
    ) -> None:
        super().__init__()
        self._pool = pool
        self._settings = settings
        self._on_probe = on_probe

    async def run(self) -> None:
        while self.next_pass():
            try:
                await self.tick()
                wait = await self._seconds_until_probe()
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("circuit keeper failed, retrying: %s", error)
                wait = self._settings.worker_idle_poll.total_seconds()
            await self.pause(wait)

    async def tick(self) -> None:
        settings = self._settings
        async with self._pool.acquire() as connection:
            promoted = await connection.fetch(
                PROMOTE_PROBES, settings.worker_lease * PROBE_DEADLINE_LEASES
            )
            if promoted:
                self._on_probe()
            while await self._expire_held(connection) == settings.retention_batch:
                pass
            async with connection.transaction():
                disabled = await connection.fetch(
                    endpoint_state.DISABLE_STALE, settings.circuit_disable_limit
                )
                await connection.execute(
                    endpoint_state.HOLD_WAITING, [row["id"] for row in disabled]
                )
                await operational.record(
                    connection,
                    [
                        endpoint_notification("endpoint.disabled", row, reason="circuit_open")
                        for row in disabled
                    ],
                    settings=settings,
                )

    async def _expire_held(self, connection: asyncpg.Connection) -> int:
        async with connection.transaction():
            expired = await connection.fetch(
                EXPIRE_HELD, self._settings.circuit_hold_limit, self._settings.retention_batch
            )
            await operational.record(
                connection,
                [dead_lettered(row, reason="circuit_open") for row in expired],
                settings=self._settings,
            )
        return len(expired)

    async def _seconds_until_probe(self) -> float:
        idle = self._settings.worker_idle_poll.total_seconds()
        async with self._pool.acquire() as connection:
            at: datetime | None = await connection.fetchval(NEXT_PROBE_AT)
        # An overdue probe waits for a held delivery; the claim wakes the keeper when it holds.
        if at is None or at <= datetime.now(UTC):
            return idle
        return min((at - datetime.now(UTC)).total_seconds(), idle)
