"""Claiming due deliveries: which may go now, which wait, which are held.

One transaction per claim: lock the earliest due rows (at most the in-flight cap's worth per
endpoint, skipping rows a peer has locked), decide, apply. A delivery whose endpoint is
disabled or whose circuit is open is held (no attempt spent, no worker slot taken). One that
would exceed its endpoint's rate limit, or the in-flight cap of a slow endpoint, is deferred
to its turn (``worker.limits``); one waiting for a slot of a fast endpoint stays due. The
rest are leased and sent.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from app import metrics
from worker import sql
from worker.limits import RATE_LIMITED, Admission, Limits, Wanted

log = logging.getLogger("herald.worker")

# A claim looks at this many times more due rows than it takes, so that it can pass over an
# endpoint that already has its share.
SCAN_FACTOR = 4


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


def plan(waiting: Mapping[str, Sequence[str]], admissions: Mapping[str, Admission]) -> Plan:
    """Per endpoint, lease the admitted deliveries and give each of the others its turn."""
    result = Plan()
    for endpoint_id, delivery_ids in waiting.items():
        admission = admissions[endpoint_id]
        result.leased += delivery_ids[: admission.admitted]
        rest = delivery_ids[admission.admitted :]
        if not rest or not admission.defer_from_ms:
            continue
        first = datetime.fromtimestamp(admission.defer_from_ms / 1000, UTC)
        spacing = timedelta(microseconds=admission.spacing_us)
        result.deferred += [(d, first + spacing * i) for i, d in enumerate(rest)]
        if admission.reason == RATE_LIMITED:
            result.rate_limited += len(rest)
    return result


@dataclass(frozen=True)
class Claim:
    rows: list[asyncpg.Record]
    """The deliveries leased to this worker, to send now."""
    candidates: int
    """Due rows the claim looked at; 0 means nothing was due."""
    moved: int
    """Of those, how many it leased, held or deferred; the rest wait for a free slot."""
    held: int
    """Of those, how many it held (an open circuit or a disabled endpoint)."""


class Claimer:
    def __init__(
        self, *, pool: asyncpg.Pool, limits: Limits, lease: timedelta, per_endpoint: int
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._lease = lease
        self._per_endpoint = per_endpoint

    async def claim(self, limit: int, *, lease: str) -> Claim:
        async with self._pool.acquire() as connection, connection.transaction():
            candidates = await connection.fetch(
                sql.CLAIM_CANDIDATES, limit, limit * SCAN_FACTOR, self._per_endpoint
            )
            if not candidates:
                return Claim([], 0, 0, 0)
            held, unsettled = await self._to_hold(connection, candidates)
            waiting: dict[str, list[str]] = {}
            rates: dict[str, int | None] = {}
            for row in candidates:
                if row["id"] not in held and row["id"] not in unsettled:
                    waiting.setdefault(row["endpoint_id"], []).append(row["id"])
                    rates[row["endpoint_id"]] = row["rate_limit"]
            admissions = await self._limits.admit(
                [Wanted(e, ids, rates[e]) for e, ids in waiting.items()]
            )
            decided = plan(waiting, admissions)
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
        return Claim(
            rows, len(candidates), len(held) + len(decided.deferred) + len(rows), len(held)
        )

    async def _to_hold(
        self, connection: asyncpg.Connection, candidates: Sequence[asyncpg.Record]
    ) -> tuple[set[str], set[str]]:
        """The deliveries to hold, and those left as they are (their endpoint is changing)."""
        suspects = [
            row
            for row in candidates
            if must_hold(
                enabled=row["enabled"], circuit_state=row["circuit_state"], trigger=row["trigger"]
            )
        ]
        if not suspects:
            return set(), set()
        # Decide again on the endpoint's committed state under its lock: a circuit that
        # closed meanwhile has released its held rows, and must not miss these.
        states = {
            row["id"]: row
            for row in await connection.fetch(
                sql.LOCK_ENDPOINTS, list({row["endpoint_id"] for row in suspects})
            )
        }
        held, unsettled = set(), set()
        for row in suspects:
            state = states.get(row["endpoint_id"])
            if state is None:
                unsettled.add(row["id"])
            elif must_hold(
                enabled=state["enabled"],
                circuit_state=state["circuit_state"],
                trigger=row["trigger"],
            ):
                held.add(row["id"])
        return held, unsettled
