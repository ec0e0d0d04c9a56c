"""worker.limits against a real Redis: in-flight caps, rate limits and queue horizons, breakers.

Each test makes its own clients (one per simulated worker) and its own endpoint ids, so tests
share nothing but the per-xdist-worker Redis database. The limits run on Redis's clock, so
the tests read it too (``redis_ms``) when they bound a time the scripts computed.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from redis.asyncio import Redis

from app.circuit import BreakerPolicy, counters_key
from app.ids import new_id
from app.settings import Settings
from tests.integration.conftest import free_port
from worker.claim import plan
from worker.limits import (
    COUNTERS_KEPT_MS,
    RATE_LIMITED,
    SLOTS_FULL,
    Admission,
    Counted,
    Limits,
    Outcomes,
    Wanted,
)

LONG_LEASE = timedelta(seconds=30)
BURST = timedelta(milliseconds=100)
# A poll never waits longer than this for what it expects, so a regression fails, not hangs.
DEADLINE_S = 2.0
POLL_S = 0.02
# A short "slow endpoint" threshold, so a test can watch an endpoint become slow.
SLOW = timedelta(milliseconds=50)
SLOW_MS = 50

LimitsFactory = Callable[..., Limits]


def deliveries(count: int) -> list[str]:
    return [new_id("dlv") for _ in range(count)]


def breaker(
    *,
    consecutive_failures: int = 5,
    failure_rate: float = 0.5,
    window: timedelta = timedelta(seconds=60),
    min_requests: int = 10,
) -> BreakerPolicy:
    return BreakerPolicy(
        enabled=True,
        consecutive_failures=consecutive_failures,
        failure_rate=failure_rate,
        window=window,
        min_requests=min_requests,
        cooldown=timedelta(seconds=30),
        max_cooldown=timedelta(minutes=10),
    )


def failed(endpoint_id: str, policy: BreakerPolicy, count: int = 1) -> Outcomes:
    return Outcomes(endpoint_id, [], failures=count, trailing_failures=count, policy=policy)


def succeeded(endpoint_id: str, policy: BreakerPolicy, count: int = 1) -> Outcomes:
    return Outcomes(endpoint_id, [], successes=count, policy=policy)


@pytest.fixture
async def make_limits(settings: Settings) -> AsyncIterator[LimitsFactory]:
    """Makes a ``Limits`` on a Redis client of its own: each one stands for a worker."""
    clients: list[Redis] = []

    def make(
        *,
        max_in_flight: int = 100,
        lease: timedelta = LONG_LEASE,
        burst: timedelta = BURST,
        slow: timedelta | None = None,
        url: str | None = None,
    ) -> Limits:
        client = Redis.from_url(url or settings.effective_redis_url, socket_connect_timeout=2)
        clients.append(client)
        if slow is None:
            return Limits(client, max_in_flight=max_in_flight, lease=lease, burst=burst)
        return Limits(client, max_in_flight=max_in_flight, lease=lease, burst=burst, slow=slow)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the test's own, to read Redis's clock and the limits' keys."""
    client = Redis.from_url(settings.effective_redis_url, socket_connect_timeout=2)
    yield client
    await client.aclose()


async def redis_ms(redis: Redis) -> int:
    """Redis's clock in epoch ms, computed as the scripts compute ``now``."""
    seconds, microseconds = await redis.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


async def admit_one(
    limits: Limits, endpoint_id: str, ids: Sequence[str], rate: int | None = None
) -> Admission:
    return (await limits.admit([Wanted(endpoint_id, ids, rate)]))[endpoint_id]


async def settle_one(limits: Limits, outcomes: Outcomes) -> Counted:
    return (await limits.settle([outcomes]))[outcomes.endpoint_id]


def turns(endpoint_id: str, ids: Sequence[str], admission: Admission) -> list[datetime]:
    """When ``worker.claim.plan`` brings back the deliveries an admission deferred."""
    return [at for _, at in plan({endpoint_id: ids}, {endpoint_id: admission}).deferred]


def at_ms(epoch_ms: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)


# In-flight cap


async def test_cap_admits_at_most_n_across_workers(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    first, second = make_limits(max_in_flight=3), make_limits(max_in_flight=3)

    claims = [first if i % 2 else second for i in range(10)]
    admissions = await asyncio.gather(
        *(admit_one(limits, endpoint, deliveries(2)) for limits in claims)
    )

    assert sum(a.admitted for a in admissions) == 3
    assert (await admit_one(first, endpoint, deliveries(1))).admitted == 0
    assert (await admit_one(second, endpoint, deliveries(1))).admitted == 0


async def test_release_frees_slots_for_another_worker(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    first, second = make_limits(max_in_flight=3), make_limits(max_in_flight=3)
    sent = deliveries(3)
    assert (await admit_one(first, endpoint, sent)).admitted == 3
    assert (await admit_one(second, endpoint, deliveries(2))).admitted == 0

    await first.release({endpoint: sent[:2], new_id("ep"): []})

    waiting = deliveries(3)
    assert (await admit_one(second, endpoint, waiting)).admitted == 2
    assert (await admit_one(first, endpoint, deliveries(1))).admitted == 0


async def test_cap_is_per_endpoint(make_limits: LimitsFactory) -> None:
    busy, idle = new_id("ep"), new_id("ep")
    limits = make_limits(max_in_flight=2)

    admissions = await limits.admit(
        [Wanted(busy, deliveries(5), None), Wanted(idle, deliveries(1), None)]
    )

    # The busy endpoint's requests have only just started: the other three are left due.
    assert admissions == {busy: Admission(2, 0, 0, 0), idle: Admission(1, 0, 0, 0)}


async def test_full_slots_leave_the_rest_due_until_the_endpoint_is_slow(
    make_limits: LimitsFactory, redis: Redis
) -> None:
    cap = 2
    limits = make_limits(max_in_flight=cap, slow=SLOW)
    held = deliveries(cap)
    waiting = deliveries(4)
    # Until the oldest request in flight has run SLOW, the waiting ones stay due: a slot of
    # a fast endpoint frees within milliseconds. (Tried again on a fresh endpoint should
    # Redis answer too late to see one while it is fast.)
    for _ in range(3):
        endpoint = new_id("ep")
        held_from = await redis_ms(redis)
        assert await admit_one(limits, endpoint, held) == Admission(cap, 0, 0, 0)
        held_by = await redis_ms(redis)
        early = await admit_one(limits, endpoint, waiting)
        if await redis_ms(redis) - held_from < SLOW_MS:
            break
    else:
        pytest.fail("Redis never answered within SLOW of a request starting")
    assert early == Admission(0, 0, 0, 0)
    assert plan({endpoint: waiting}, {endpoint: early}).deferred == []

    deadline = time.monotonic() + DEADLINE_S
    while True:
        polled_from = await redis_ms(redis)
        admission = await admit_one(limits, endpoint, waiting)
        polled_by = await redis_ms(redis)
        if admission.defer_from_ms:
            break
        assert admission == Admission(0, 0, 0, 0)
        # Left due only while the request was younger than SLOW when the script looked.
        assert polled_from - held_by < SLOW_MS
        assert time.monotonic() < deadline, "the endpoint never counted as slow"
        await asyncio.sleep(POLL_S)

    # Now it is slow: each waiting delivery gets a turn, oldest age / cap apart.
    assert (admission.admitted, admission.reason) == (0, SLOTS_FULL)
    spacing_ms = admission.spacing_us / 1000
    age_ms = spacing_ms * cap
    assert age_ms >= SLOW_MS
    # Redis measures in microseconds, these brackets in milliseconds: 1 ms either way.
    assert polled_from - held_by - 1 <= age_ms <= polled_by - held_from + 1
    # The first turn is one spacing from now (no queue before it).
    assert polled_from + spacing_ms <= admission.defer_from_ms <= polled_by + spacing_ms + 2
    first_turn = at_ms(admission.defer_from_ms)
    assert turns(endpoint, waiting, admission) == [
        first_turn + i * timedelta(microseconds=admission.spacing_us) for i in range(4)
    ]
    assert plan({endpoint: waiting}, {endpoint: admission}).rate_limited == 0

    # The next claim's deliveries queue behind those four.
    later = await admit_one(limits, endpoint, deliveries(3))
    assert (later.admitted, later.reason) == (0, SLOTS_FULL)
    assert later.spacing_us >= admission.spacing_us
    queue_end = admission.defer_from_ms + 4 * spacing_ms
    assert abs(later.defer_from_ms - queue_end) <= 1

    # Freed slots admit again.
    await limits.release({endpoint: held})
    assert await admit_one(limits, endpoint, waiting) == Admission(2, 0, 0, 0)


async def test_crashed_workers_entries_stop_counting_after_the_lease(
    make_limits: LimitsFactory,
) -> None:
    endpoint = new_id("ep")
    lease = timedelta(milliseconds=200)
    crashed = make_limits(max_in_flight=3, lease=lease)
    survivor = make_limits(max_in_flight=3, lease=lease)
    started = time.monotonic()
    assert (await admit_one(crashed, endpoint, deliveries(3))).admitted == 3
    # The crashed worker never settles nor releases its three deliveries.

    admitted = 0
    polls = 0
    deadline = started + DEADLINE_S
    while time.monotonic() < deadline:
        admitted = (await admit_one(survivor, endpoint, deliveries(3))).admitted
        polls += 1
        if admitted:
            break
        await asyncio.sleep(POLL_S)
    waited = time.monotonic() - started

    assert admitted == 3, "the crashed worker's entries never expired"
    assert polls > 1, "the crashed worker's entries did not count at all"
    assert waited >= lease.total_seconds() - 0.01


# Rate limit (GCRA) and the queue horizon


async def test_rate_limit_admits_the_burst_and_defers_the_rest_from_the_next_slot(
    make_limits: LimitsFactory, redis: Redis
) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    assert limits.burst(20) == 2

    waiting = deliveries(10)
    before = await redis_ms(redis)
    first = await admit_one(limits, endpoint, waiting, 20)
    after = await redis_ms(redis)

    assert (first.admitted, first.spacing_us, first.reason) == (2, 50_000, RATE_LIMITED)
    # One interval (1000 ms / 20) after the batch: the burst is spent.
    assert before + 50 <= first.defer_from_ms <= after + 51  # rounded up to the ms
    decided = plan({endpoint: waiting}, {endpoint: first})
    assert decided.leased == waiting[:2]
    assert decided.deferred == [
        (d, at_ms(first.defer_from_ms + 50 * i)) for i, d in enumerate(waiting[2:])
    ]
    assert decided.rate_limited == 8

    # The next claim queues behind those eight, not on top of them.
    again = await admit_one(limits, endpoint, deliveries(10), 20)
    assert again == Admission(0, first.defer_from_ms + 8 * 50, 50_000, RATE_LIMITED)

    # From the first slot one more goes per interval: the rate, not a new burst.
    deadline = time.monotonic() + DEADLINE_S
    while True:
        polled_from = await redis_ms(redis)
        later = await admit_one(limits, endpoint, deliveries(10), 20)
        polled_by = await redis_ms(redis)
        if later.admitted:
            break
        # Refused only before the slot it named.
        assert polled_from < first.defer_from_ms
        assert time.monotonic() < deadline, "the named slot never came"
        await asyncio.sleep(0.005)
    assert polled_by >= first.defer_from_ms
    # (one, unless this poll came a whole interval late)
    assert 1 <= later.admitted <= 1 + (polled_by - first.defer_from_ms) // 50


async def test_two_workers_deferrals_take_consecutive_slots(
    make_limits: LimitsFactory, redis: Redis
) -> None:
    endpoint = new_id("ep")
    rate, interval = 5, timedelta(milliseconds=200)
    workers = [make_limits(), make_limits()]
    assert workers[0].burst(rate) == 1

    async def claim(limits: Limits, ids: list[str]) -> tuple[list[str], Admission]:
        return ids, await admit_one(limits, endpoint, ids, rate)

    before = await redis_ms(redis)
    first_round = await asyncio.gather(*(claim(w, deliveries(5)) for w in workers))
    after = await redis_ms(redis)

    assert sum(a.admitted for _, a in first_round) == 1
    for _, admission in first_round:
        assert (admission.spacing_us, admission.reason) == (200_000, RATE_LIMITED)
    first_turns = [turns(endpoint, ids, a) for ids, a in first_round]
    # Each worker's deliveries are a run of consecutive slots, the runs do not overlap...
    for run in first_turns:
        assert run == [run[0] + i * interval for i in range(len(run))]
    queue = sorted(at for run in first_turns for at in run)
    assert len(set(queue)) == 9
    # ...and together they fill the slots from when the rate allows the next one.
    assert at_ms(before + 200) <= queue[0] <= at_ms(after + 201)  # rounded up to the ms
    assert queue == [queue[0] + i * interval for i in range(9)]

    # A second batch from both workers starts where the first ended.
    second_round = await asyncio.gather(*(claim(w, deliveries(3)) for w in workers))

    assert [a.admitted for _, a in second_round] == [0, 0]
    second_turns = sorted(at for ids, a in second_round for at in turns(endpoint, ids, a))
    assert second_turns == [queue[-1] + i * interval for i in range(1, 7)]


async def test_rate_limit_holds_across_workers_over_time(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    rate = 20
    workers = [make_limits(max_in_flight=10_000), make_limits(max_in_flight=10_000)]
    burst = workers[0].burst(rate)
    # (wall clock before the call, after it, admitted) for every claim of either worker
    claims: list[tuple[float, float, int]] = []
    stop = time.monotonic() + 1.6

    async def worker(limits: Limits) -> None:
        while time.monotonic() < stop:
            start = time.time()
            admission = await admit_one(limits, endpoint, deliveries(5), rate)
            claims.append((start, time.time(), admission.admitted))
            await asyncio.sleep(0.003)

    await asyncio.gather(*(worker(limits) for limits in workers))

    latency = max(end - start for start, end, _ in claims)
    # The limiter decides at some instant inside each call, so a window of one second of
    # call starts spans at most 1 s + the slowest call of real time.
    # (rate + burst as long as every call took less than one interval, 50 ms)
    allowed = int((1 + latency) * rate) + burst
    for start, _, _ in claims:
        in_window = sum(n for s, _, n in claims if start <= s < start + 1)
        assert in_window <= allowed
    total = sum(n for _, _, n in claims)
    elapsed = claims[-1][1] - claims[0][0]
    assert total <= int(elapsed * rate) + burst
    # ...while still letting the rate through (not starved by the two workers' contention).
    assert total >= 0.75 * elapsed * rate


async def test_rate_limit_is_per_endpoint(make_limits: LimitsFactory) -> None:
    limited, other = new_id("ep"), new_id("ep")
    limits = make_limits()

    admissions = await limits.admit(
        [Wanted(limited, deliveries(10), 20), Wanted(other, deliveries(10), 1000)]
    )

    assert admissions[limited].admitted == 2
    assert admissions[limited].reason == RATE_LIMITED
    assert admissions[other] == Admission(10, 0, 0, 0)  # burst of round(1000 * 0.1)


@pytest.mark.parametrize(
    "rate",
    [
        1,
        3,
        5,
        10,
        20,
        25,
        40,
        1000,
        # Rates whose interval is not a binary fraction of a millisecond.
        6,
        7,
        11,
        13,
        18,
        99,
    ],
)
async def test_a_fresh_endpoint_admits_its_whole_burst(
    make_limits: LimitsFactory, rate: int
) -> None:
    endpoint = new_id("ep")
    limits = make_limits(max_in_flight=10_000)
    burst = limits.burst(rate)

    admission = await admit_one(limits, endpoint, deliveries(burst + 1), rate)

    assert (admission.admitted, admission.reason) == (burst, RATE_LIMITED)


async def test_a_low_rate_lets_its_deliveries_through(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    rate = 7  # a burst of 1, one every 142.857 ms
    assert limits.burst(rate) == 1

    admitted = 0
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline and admitted < 2:
        admitted += (await admit_one(limits, endpoint, deliveries(1), rate)).admitted
        await asyncio.sleep(POLL_S)

    assert admitted >= 2


async def test_limits_keep_redis_time_not_the_workers(
    make_limits: LimitsFactory, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    policy = breaker(window=timedelta(seconds=10))
    # This worker's clock is a day ahead of Redis's.
    skew_ns = 86_400 * 10**9
    real_time, real_time_ns = time.time, time.time_ns

    before = await redis_ms(redis)
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: real_time() + skew_ns / 10**9)
        patched.setattr(time, "time_ns", lambda: real_time_ns() + skew_ns)
        admission = await admit_one(limits, endpoint, deliveries(3), 10)
        await settle_one(limits, failed(endpoint, policy))
    after = await redis_ms(redis)

    assert admission.admitted == 1
    assert before + 100 <= admission.defer_from_ms <= after + 101  # rounded up to the ms
    # The breaker's window buckets (1 s wide here) are on Redis's clock too.
    fields = await cast(Awaitable[list[bytes]], redis.hkeys(counters_key(endpoint)))
    buckets = {field.decode() for field in fields}
    assert buckets - {"c"} <= {
        f"{kind}{s}" for kind in "tf" for s in (before // 1000, after // 1000)
    }
    assert f"t{after // 1000}" in buckets or f"t{before // 1000}" in buckets


# Circuit breaker counters


async def test_five_consecutive_failures_trip(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    policy = breaker(consecutive_failures=5)

    counts = [await settle_one(limits, failed(endpoint, policy)) for _ in range(5)]

    assert counts == [Counted(n, n == 5) for n in range(1, 6)]


async def test_consecutive_failures_are_counted_across_workers(
    make_limits: LimitsFactory,
) -> None:
    endpoint = new_id("ep")
    first, second = make_limits(), make_limits()
    policy = breaker(consecutive_failures=5)

    assert await settle_one(first, failed(endpoint, policy, 3)) == Counted(3, False)
    assert await settle_one(second, failed(endpoint, policy, 2)) == Counted(5, True)


async def test_a_success_resets_the_consecutive_count(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    policy = breaker(consecutive_failures=5, min_requests=1000)

    assert await settle_one(limits, failed(endpoint, policy, 4)) == Counted(4, False)
    assert await settle_one(limits, succeeded(endpoint, policy)) == Counted(0, False)
    assert await settle_one(limits, failed(endpoint, policy, 4)) == Counted(4, False)
    # A batch that ends F, S, F, F: only the failures after its last success count.
    batch = Outcomes(endpoint, [], successes=1, failures=3, trailing_failures=2, policy=policy)
    assert await settle_one(limits, batch) == Counted(2, False)
    assert await settle_one(limits, failed(endpoint, policy, 3)) == Counted(5, True)


async def test_failure_rate_trips_only_once_min_requests_is_reached(
    make_limits: LimitsFactory,
) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    policy = breaker(consecutive_failures=5, failure_rate=0.5, min_requests=10)
    # 6 failures and 4 successes, never more than two failures in a row.
    sequence = "FFSFFSFFSS"

    counts = []
    for outcome in sequence:
        result = failed if outcome == "F" else succeeded
        counts.append(await settle_one(limits, result(endpoint, policy)))

    assert [c.trip for c in counts] == [False] * 9 + [True]
    assert max(c.consecutive_failures for c in counts) == 2


async def test_failure_rate_below_the_threshold_does_not_trip(
    make_limits: LimitsFactory,
) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    policy = breaker(consecutive_failures=5, failure_rate=0.5, min_requests=10)

    for outcome in "FSSFSFSSFSSS":  # 4 failures in 12
        result = failed if outcome == "F" else succeeded
        assert not (await settle_one(limits, result(endpoint, policy))).trip
    # One more failure in a batch of its own: 5 of 13 is still below half.
    assert await settle_one(limits, failed(endpoint, policy)) == Counted(1, False)


async def test_outcomes_leave_the_window(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits()
    window = timedelta(seconds=1)
    policy = breaker(consecutive_failures=1000, min_requests=10, window=window)
    started = time.monotonic()
    assert await settle_one(limits, failed(endpoint, policy, 10)) == Counted(10, True)

    # An empty batch re-evaluates the window without adding to it.
    idle = Outcomes(endpoint, [], policy=policy)
    counted = Counted(10, True)
    deadline = started + DEADLINE_S
    while time.monotonic() < deadline:
        counted = await settle_one(limits, idle)
        if not counted.trip:
            break
        await asyncio.sleep(POLL_S)
    waited = time.monotonic() - started

    assert counted == Counted(10, False), "the failures never left the window"
    # The window is kept in tenths, so the failures leave it between 0.9 s and 1 s later.
    assert waited >= 0.85 * window.total_seconds()
    # Nine new failures are fewer than min_requests on their own.
    assert not (await settle_one(limits, failed(endpoint, policy, 9))).trip


async def test_consecutive_failures_outlive_twice_the_window(
    make_limits: LimitsFactory, redis: Redis
) -> None:
    # A receiver that is down but rarely sent to still trips after N failures, however far
    # apart; its window, though, forgets them.
    by_count, by_rate = new_id("ep"), new_id("ep")
    limits = make_limits()
    window = timedelta(milliseconds=150)
    count_rule = breaker(consecutive_failures=4, min_requests=1000, window=window)
    rate_rule = breaker(consecutive_failures=1000, failure_rate=0.5, min_requests=4, window=window)
    assert await settle_one(limits, failed(by_count, count_rule, 3)) == Counted(3, False)
    assert await settle_one(limits, failed(by_rate, rate_rule, 3)) == Counted(3, False)
    settled_by = await redis_ms(redis)

    # Wait (on Redis's clock) until twice the window has passed.
    deadline = time.monotonic() + DEADLINE_S
    while await redis_ms(redis) <= settled_by + 2 * 150 + 20:
        assert time.monotonic() < deadline, "Redis's clock did not move"
        await asyncio.sleep(POLL_S)

    assert await settle_one(limits, failed(by_count, count_rule)) == Counted(4, True)
    # Four failures in a row, but only one of them in the window: fewer than min_requests.
    assert await settle_one(limits, failed(by_rate, rate_rule)) == Counted(4, False)
    # Kept for days, not for two windows.
    for endpoint in (by_count, by_rate):
        assert await redis.pttl(counters_key(endpoint)) > COUNTERS_KEPT_MS - 60_000


async def test_settling_nothing_counts_nothing(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits(max_in_flight=1)
    policy = breaker(consecutive_failures=2)
    assert await settle_one(limits, failed(endpoint, policy)) == Counted(1, False)

    assert await limits.settle([]) == {}
    await limits.release({})
    await limits.release({endpoint: []})

    assert await settle_one(limits, failed(endpoint, policy)) == Counted(2, True)


async def test_forget_outcomes_starts_the_count_afresh(make_limits: LimitsFactory) -> None:
    endpoint, other = new_id("ep"), new_id("ep")
    limits = make_limits()
    policy = breaker(consecutive_failures=5, min_requests=10)
    await settle_one(limits, failed(endpoint, policy, 4))
    await settle_one(limits, failed(other, policy, 4))
    await settle_one(limits, succeeded(endpoint, policy, 5))
    # 8 failures in 13 outcomes: the failure rate trips.
    assert await settle_one(limits, failed(endpoint, policy, 4)) == Counted(4, True)

    await limits.forget_outcomes([endpoint])
    await limits.forget_outcomes([])

    # Without the reset this would be 5 in a row and 9 of 14: both rules would trip.
    assert await settle_one(limits, failed(endpoint, policy)) == Counted(1, False)
    # Other endpoints keep their count.
    assert await settle_one(limits, failed(other, policy)) == Counted(5, True)


async def test_uncounted_outcomes_release_but_do_not_count(make_limits: LimitsFactory) -> None:
    endpoint, counted_endpoint = new_id("ep"), new_id("ep")
    limits = make_limits(max_in_flight=2)
    policy = breaker(consecutive_failures=5)
    sent = deliveries(2)
    assert (await admit_one(limits, endpoint, sent)).admitted == 2
    assert (await admit_one(limits, endpoint, deliveries(1))).admitted == 0

    uncounted = Outcomes(endpoint, sent, failures=10, trailing_failures=10, policy=None)
    assert await limits.settle([uncounted]) == {}
    mixed = await limits.settle([uncounted, failed(counted_endpoint, policy)])
    assert mixed == {counted_endpoint: Counted(1, False)}

    assert (await admit_one(limits, endpoint, deliveries(2))).admitted == 2
    assert await settle_one(limits, failed(endpoint, policy)) == Counted(1, False)


async def test_settle_releases_in_flight_entries(make_limits: LimitsFactory) -> None:
    endpoint = new_id("ep")
    limits = make_limits(max_in_flight=2)
    sent = deliveries(2)
    assert (await admit_one(limits, endpoint, sent)).admitted == 2

    outcomes = Outcomes(endpoint, sent, successes=2, policy=breaker())
    assert await limits.settle([outcomes]) == {endpoint: Counted(0, False)}

    assert (await admit_one(limits, endpoint, deliveries(3))).admitted == 2


# Redis unreachable


async def test_without_redis_everything_is_admitted_and_nothing_counts(
    make_limits: LimitsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, other = new_id("ep"), new_id("ep")
    limits = make_limits(max_in_flight=1, url=f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.WARNING, logger="herald.worker")

    admissions = await limits.admit(
        [Wanted(endpoint, deliveries(5), 1), Wanted(other, deliveries(3), None)]
    )
    assert admissions == {endpoint: Admission(5), other: Admission(3)}

    policy = breaker(consecutive_failures=1)
    assert await limits.settle([failed(endpoint, policy, 5)]) == {}
    await limits.release({endpoint: deliveries(1)})
    await limits.forget_outcomes([endpoint])

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("admitting without them" in m for m in warnings)
    assert any("outcomes not counted" in m for m in warnings)
    assert any("could not reset circuit counters" in m for m in warnings)


async def test_nothing_to_settle_or_forget_does_not_call_redis(
    make_limits: LimitsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    limits = make_limits(url=f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.WARNING, logger="herald.worker")

    assert await limits.settle([]) == {}
    await limits.release({new_id("ep"): []})
    await limits.forget_outcomes([])

    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
