"""Per-endpoint limits shared by every worker, kept in Redis by two scripts.

``admit`` decides which claimed deliveries may go now: no more than the in-flight cap per
endpoint (a sorted set of delivery ids scored by lease expiry, so a crashed worker's entries
fall away by themselves) and, for rate-limited endpoints, no faster than the rate (GCRA: one
"theoretical arrival time" per endpoint). ``settle`` gives back the in-flight entries of
finished attempts and counts their outcomes for the circuit breaker.

Each call covers a whole claim or flush batch, so a batch costs one Redis round trip. Time
is Redis's clock (``TIME``), so workers whose clocks disagree still share one timeline. If
Redis cannot be reached the limits step aside (everything is admitted, nothing trips): they
protect receivers, but PostgreSQL alone decides what is delivered.
"""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.circuit import WINDOW_BUCKETS, BreakerPolicy, counters_key, reset_counters

log = logging.getLogger("herald.worker")

# A Redis that hangs rather than refuses must not hold a claim (and its row locks) with it:
# past this, the limits step aside for that batch. (TimeoutError is an OSError.)
REDIS_TIMEOUT_S = 1.0

# An endpoint whose oldest request in flight has run this long is slow: deliveries waiting for
# one of its slots are deferred to their turn rather than left in everyone's way.
SLOW_ENDPOINT = timedelta(milliseconds=100)
# A consecutive-failure count outlives the window: a receiver that is down but rarely sent to
# still trips its circuit after N failures, however far apart.
COUNTERS_KEPT_MS = 7 * 24 * 3600 * 1000

# KEYS: per endpoint, its in-flight set, its rate key and its queue horizon.
# ARGV: lease_ms, slow_ms, then per endpoint: n, cap, rate (0 = none), burst, the n
# delivery ids in due order.
# Returns per endpoint: how many of the ids were admitted (a prefix), and for the rest when
# the first of them should come back (ms, 0 = leave them due) and the spacing between them
# (microseconds), and why they wait (1 rate limit, 2 in-flight cap).
#
# Waiting deliveries queue behind the ones deferred before them (the horizon), each in its own
# slot: a rate-limited one a rate interval apart, one blocked by a full in-flight set as far
# apart as the endpoint's pace (the oldest request's age over the cap). So each is deferred
# about once, not again on every claim. Deliveries of a fast endpoint whose slots are full
# are left due: a slot frees within milliseconds.
ADMIT = """
local clock = redis.call('TIME')
-- Whole microseconds throughout: exact in a double, so no slot is lost to rounding.
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local lease_ms = tonumber(ARGV[1])
local lease = lease_ms * 1000
local slow = tonumber(ARGV[2]) * 1000
local out = {}
local a = 3
for k = 1, #KEYS, 3 do
    local in_flight, rate_key, horizon_key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    local n, cap = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local rate, burst = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local ids = a + 4
    a = ids + n
    redis.call('ZREMRANGEBYSCORE', in_flight, '-inf', now)
    local admitted = math.min(n, math.max(cap - redis.call('ZCARD', in_flight), 0))
    local base, spacing, reason = 0, 0, 0
    if rate > 0 and admitted > 0 then
        local interval = math.ceil(1000000 / rate)
        local tat = math.max(tonumber(redis.call('GET', rate_key) or now), now)
        local allowed = 0
        while allowed < admitted and tat + interval - now <= burst * interval do
            tat = tat + interval
            allowed = allowed + 1
        end
        redis.call('SET', rate_key, string.format('%.0f', tat), 'PX',
                   math.ceil((tat - now) / 1000) + 1000)
        if allowed < admitted then
            base, spacing, reason = tat + interval - burst * interval, interval, 1
        end
        admitted = allowed
    end
    for i = 0, admitted - 1 do
        redis.call('ZADD', in_flight, now + lease, ARGV[ids + i])
    end
    if admitted > 0 then
        redis.call('PEXPIRE', in_flight, lease_ms)
    end
    if admitted < n and reason == 0 then
        local first = redis.call('ZRANGE', in_flight, 0, 0, 'WITHSCORES')
        local age = first[2] and now - (tonumber(first[2]) - lease) or 0
        if age >= slow then
            spacing = math.floor(age / cap)
            base, reason = now + spacing, 2
        end
    end
    local from = 0
    if spacing > 0 then
        from = math.max(base, tonumber(redis.call('GET', horizon_key) or 0))
        local horizon = from + (n - admitted) * spacing
        redis.call('SET', horizon_key, string.format('%.0f', horizon), 'PX',
                   math.ceil((horizon - now) / 1000) + 1000)
    end
    table.insert(out, admitted)
    table.insert(out, math.ceil(from / 1000))
    table.insert(out, spacing)
    table.insert(out, reason)
end
return out
"""

# KEYS: per endpoint, its in-flight set and its breaker counters.
# ARGV: buckets per window, how long idle counters are kept (ms), then per endpoint: n ids to
# release, the ids, counted (0/1), successes, failures, trailing failures (after the batch's
# last success), window_ms, consecutive limit, failure rate, min requests.
# Returns per endpoint: consecutive failures, 1 if a threshold is reached.
SETTLE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local buckets = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
local out = {}
local a = 3
for k = 1, #KEYS, 2 do
    local in_flight, counters = KEYS[k], KEYS[k + 1]
    local n = tonumber(ARGV[a])
    for i = 1, n do
        redis.call('ZREM', in_flight, ARGV[a + i])
    end
    a = a + n + 1
    local counted, successes, failures = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    local trailing, window = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
    local limit, rate, minimum = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])
    a = a + 8
    local consecutive, trip = 0, 0
    if counted == '1' then
        consecutive = tonumber(redis.call('HGET', counters, 'c') or 0)
        if successes > 0 then
            consecutive = trailing
        else
            consecutive = consecutive + trailing
        end
        local width = math.max(math.floor(window / buckets), 1)
        local bucket = math.floor(now / width)
        redis.call('HINCRBY', counters, 't' .. bucket, successes + failures)
        redis.call('HINCRBY', counters, 'f' .. bucket, failures)
        redis.call('HSET', counters, 'c', consecutive)
        local total, failed = 0, 0
        local fields = redis.call('HGETALL', counters)
        for i = 1, #fields, 2 do
            local name, value = fields[i], tonumber(fields[i + 1])
            local kind, at = string.sub(name, 1, 1), tonumber(string.sub(name, 2))
            if at then
                if at <= bucket - buckets then
                    redis.call('HDEL', counters, name)
                elseif kind == 't' then
                    total = total + value
                else
                    failed = failed + value
                end
            end
        end
        redis.call('PEXPIRE', counters, math.max(window * 2, keep))
        if consecutive >= limit or (total >= minimum and failed >= rate * total) then
            trip = 1
        end
    end
    table.insert(out, consecutive)
    table.insert(out, trip)
end
return out
"""


def in_flight_key(endpoint_id: str) -> str:
    return f"herald:in_flight:{endpoint_id}"


def rate_key(endpoint_id: str) -> str:
    return f"herald:rate:{endpoint_id}"


def horizon_key(endpoint_id: str) -> str:
    return f"herald:horizon:{endpoint_id}"


RATE_LIMITED = 1
SLOTS_FULL = 2


@dataclass(frozen=True)
class Admission:
    admitted: int
    """How many of the endpoint's deliveries (the first ones, in due order) may go now."""
    defer_from_ms: int = 0
    """When the first of the others should come back (epoch ms); 0 leaves them due."""
    spacing_us: int = 0
    """How far apart the others come back (microseconds)."""
    reason: int = 0
    """Why they wait: RATE_LIMITED or SLOTS_FULL (0 when none waits)."""


@dataclass(frozen=True)
class Wanted:
    endpoint_id: str
    delivery_ids: Sequence[str]
    rate_limit: int | None


@dataclass(frozen=True)
class Outcomes:
    """One endpoint's finished attempts in a flush, in the order they finished."""

    endpoint_id: str
    delivery_ids: Sequence[str]
    successes: int = 0
    failures: int = 0
    trailing_failures: int = 0
    policy: BreakerPolicy | None = None
    """The endpoint's breaker; None when these outcomes do not count (breaker off, probes)."""


@dataclass(frozen=True)
class Counted:
    consecutive_failures: int
    trip: bool


class Limits:
    def __init__(
        self,
        redis: Redis,
        *,
        max_in_flight: int,
        lease: timedelta,
        burst: timedelta,
        slow: timedelta = SLOW_ENDPOINT,
    ) -> None:
        self._redis = redis
        self._max_in_flight = max_in_flight
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._slow_ms = int(slow.total_seconds() * 1000)
        self._burst_s = burst.total_seconds()
        self._admit = redis.register_script(ADMIT)
        self._settle = redis.register_script(SETTLE)

    def burst(self, rate: int) -> int:
        return max(1, round(rate * self._burst_s))

    async def admit(self, wanted: Sequence[Wanted]) -> dict[str, Admission]:
        keys: list[str] = []
        args: list[str | int] = [self._lease_ms, self._slow_ms]
        for item in wanted:
            rate = item.rate_limit or 0
            keys += [
                in_flight_key(item.endpoint_id),
                rate_key(item.endpoint_id),
                horizon_key(item.endpoint_id),
            ]
            args += [len(item.delivery_ids), self._max_in_flight, rate, self.burst(rate)]
            args += item.delivery_ids
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                replies = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as error:
            log.warning("limits unavailable, admitting without them: %s", error)
            return {item.endpoint_id: Admission(len(item.delivery_ids)) for item in wanted}
        return {
            item.endpoint_id: Admission(*map(int, replies[4 * i : 4 * i + 4]))
            for i, item in enumerate(wanted)
        }

    async def settle(self, outcomes: Sequence[Outcomes]) -> dict[str, Counted]:
        keys: list[str] = []
        if not outcomes:
            return {}
        args: list[str | int | float] = [WINDOW_BUCKETS, COUNTERS_KEPT_MS]
        for item in outcomes:
            policy = item.policy
            keys += [in_flight_key(item.endpoint_id), counters_key(item.endpoint_id)]
            args += [len(item.delivery_ids), *item.delivery_ids]
            if policy is None:
                args += [0, 0, 0, 0, 0, 0, 0, 0]
                continue
            args += [
                1,
                item.successes,
                item.failures,
                item.trailing_failures,
                int(policy.window.total_seconds() * 1000),
                policy.consecutive_failures,
                policy.failure_rate,
                policy.min_requests,
            ]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                replies = await self._settle(keys=keys, args=args)
        except (RedisError, OSError) as error:
            log.warning("limits unavailable, outcomes not counted: %s", error)
            return {}
        return {
            item.endpoint_id: Counted(int(replies[2 * i]), bool(int(replies[2 * i + 1])))
            for i, item in enumerate(outcomes)
            if item.policy is not None
        }

    async def release(self, delivery_ids: Mapping[str, Sequence[str]]) -> None:
        """Give back in-flight entries of deliveries that will not be sent by this worker."""
        await self.settle([Outcomes(e, ids) for e, ids in delivery_ids.items() if ids])

    async def forget_outcomes(self, endpoint_ids: Sequence[str]) -> None:
        """A circuit closed: its old failures must not open it again."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await reset_counters(self._redis, endpoint_ids)
        except (RedisError, OSError) as error:
            log.warning("could not reset circuit counters: %s", error)
