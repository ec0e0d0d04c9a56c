"""Claiming due deliveries: which may go now, which wait, which are held.

One transaction per claim: lock the earliest due rows (skipping rows a peer has locked),
decide, apply. A delivery whose endpoint is disabled or whose circuit is open is held (no
attempt spent, no worker slot taken); one that would exceed its endpoint's in-flight cap or
rate limit is deferred (its due time moves to when it can go); the rest are leased and sent.
Every candidate leaves the due set one way or another, so a claim always makes progress.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from app import metrics
from worker import sql
from worker.limits import Admission, Limits, Wanted

log = logging.getLogger("herald.worker")

# A delivery waiting for a slot of a saturated endpoint looks again after about as long as
# the oldest request in flight there has taken so far: soon for a fast receiver, rarely for
# one that hangs.
MIN_SLOT_WAIT = timedelta(milliseconds=50)


def must_hold(*, enabled: bool, circuit_state: str, trigger: str) -> bool:
    """Held, not sent: a disabled endpoint, an open circuit, or a half-open one's non-probes."""
    if not enabled or circuit_state == "open":
        return True
    return circuit_state == "half_open" and trigger != "probe"


@dataclass
class Plan:
    leased: list[str] = field(default_factory=list)
    deferred: list[tuple[str, datetime]] = field(default_factory=list)
    rate_limited: int = 0


def plan(
    waiting: Mapping[str, Sequence[str]],
    rates: Mapping[str, int | None],
    admissions: Mapping[str, Admission],
    *,
    now: datetime,
    max_slot_wait: timedelta,
) -> Plan:
    """Per endpoint, lease the first ``admitted`` deliveries (due order) and defer the rest."""
    result = Plan()
    for endpoint_id, delivery_ids in waiting.items():
        admission = admissions[endpoint_id]
        result.leased += delivery_ids[: admission.admitted]
        rest = delivery_ids[admission.admitted :]
        if not rest:
            continue
        rate = rates[endpoint_id]
        if admission.next_allowed_ms and rate:
            # Spread over the slots the rate will allow, so they come back one by one.
            first = datetime.fromtimestamp(admission.next_allowed_ms / 1000, UTC)
            step = timedelta(seconds=1 / rate)
            result.deferred += [(d, first + step * i) for i, d in enumerate(rest)]
            result.rate_limited += len(rest)
        else:
            busy_for = (
                now - datetime.fromtimestamp(admission.oldest_start_ms / 1000, UTC)
                if admission.oldest_start_ms
                else MIN_SLOT_WAIT
            )
            wait = min(max(busy_for, MIN_SLOT_WAIT), max_slot_wait)
            result.deferred += [(d, now + wait) for d in rest]
    return result


@dataclass(frozen=True)
class Claim:
    rows: list[asyncpg.Record]
    candidates: int
    """Due rows this claim moved on (sent, held or deferred); 0 means nothing was due."""


class Claimer:
    def __init__(
        self, *, pool: asyncpg.Pool, limits: Limits, lease: timedelta, max_slot_wait: timedelta
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._lease = lease
        self._max_slot_wait = max_slot_wait

    async def claim(self, limit: int, *, lease: str) -> Claim:
        async with self._pool.acquire() as connection, connection.transaction():
            candidates = await connection.fetch(sql.CLAIM_CANDIDATES, limit)
            if not candidates:
                return Claim([], 0)
            held = await self._to_hold(connection, candidates)
            waiting: dict[str, list[str]] = {}
            rates: dict[str, int | None] = {}
            for row in candidates:
                if row["id"] not in held:
                    waiting.setdefault(row["endpoint_id"], []).append(row["id"])
                    rates[row["endpoint_id"]] = row["rate_limit"]
            admissions = await self._limits.admit(
                [Wanted(e, ids, rates[e]) for e, ids in waiting.items()]
            )
            decided = plan(
                waiting,
                rates,
                admissions,
                now=datetime.now(UTC),
                max_slot_wait=self._max_slot_wait,
            )
            try:
                rows = await connection.fetch(
                    sql.APPLY_CLAIM,
                    sorted(held),
                    [d for d, _ in decided.deferred],
                    [at for _, at in decided.deferred],
                    decided.leased,
                    lease,
                    self._lease,
                )
            except BaseException:
                await self._limits.release({e: waiting[e] for e in waiting})
                raise
        if decided.rate_limited:
            metrics.rate_limited_waits.inc(decided.rate_limited)
        return Claim(rows, len(candidates))

    async def _to_hold(
        self, connection: asyncpg.Connection, candidates: Sequence[asyncpg.Record]
    ) -> set[str]:
        suspects = [
            row
            for row in candidates
            if must_hold(
                enabled=row["enabled"], circuit_state=row["circuit_state"], trigger=row["trigger"]
            )
        ]
        if not suspects:
            return set()
        # Decide again on the endpoint's committed state under its lock: a circuit that
        # closed meanwhile has released its held rows, and must not miss these.
        states = {
            row["id"]: row
            for row in await connection.fetch(
                sql.LOCK_ENDPOINTS, list({row["endpoint_id"] for row in suspects})
            )
        }
        held = set()
        for row in suspects:
            state = states.get(row["endpoint_id"])
            if state is None or must_hold(
                enabled=state["enabled"],
                circuit_state=state["circuit_state"],
                trigger=row["trigger"],
            ):
                held.add(row["id"])
        return held
