"""Per-endpoint limits: a hanging receiver takes no one else's capacity; rate limits hold
across worker processes."""

import asyncio
import statistics
import time

import httpx

from tests.e2e.conftest import WorkerFactory, make_endpoint, post_event, wait_for_deliveries
from tests.receivers import Receiver, slow

EVENTS = 300
RATE = 100  # events per second offered to the healthy endpoint


async def offer(api: httpx.AsyncClient, tenant_id: str, path: str) -> dict[str, float]:
    """Post EVENTS at RATE/s; returns when each event was accepted (monotonic), by event id."""
    accepted: dict[str, float] = {}
    start = time.monotonic()
    for n in range(EVENTS):
        await asyncio.sleep(max(0.0, start + n / RATE - time.monotonic()))
        accepted[await post_event(api, tenant_id, {"path": path, "n": n})] = time.monotonic()
    return accepted


async def healthy_figures(
    api: httpx.AsyncClient, receiver: Receiver, tenant_id: str, path: str
) -> tuple[float, float, float]:
    """Latency p50 and p95 (s) to the healthy receiver, and its delivery rate (per s)."""
    accepted = await offer(api, tenant_id, path)
    requests = await receiver.wait_for(EVENTS, path=path, timeout=60)
    arrived = {r.headers["webhook-id"]: r.received_at for r in requests}
    latencies = sorted(arrived[event] - at for event, at in accepted.items())
    span = max(arrived.values()) - min(accepted.values())
    return (
        statistics.median(latencies),
        latencies[int(len(latencies) * 0.95)],
        EVENTS / span,
    )


async def test_a_hanging_endpoint_does_not_slow_a_healthy_one(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/hanging", [slow(30)] * (2 * EVENTS))
    start_worker(HERALD_REQUEST_TIMEOUT="30s", HERALD_WORKER_LEASE="60s")
    alone = await make_endpoint(api, f"{receiver.url}/alone")
    # Measure a running worker, not its start.
    await wait_for_deliveries(api, [await post_event(api, alone["tenant_id"], {"warm": 1})])
    receiver.requests.clear()

    p50_alone, p95_alone, rate_alone = await healthy_figures(
        api, receiver, alone["tenant_id"], "/alone"
    )

    beside = await make_endpoint(api, f"{receiver.url}/beside")
    tenant = beside["tenant_id"]
    await api.post("/v1/endpoints", json={"tenant_id": tenant, "url": f"{receiver.url}/hanging"})
    p50_beside, p95_beside, rate_beside = await healthy_figures(api, receiver, tenant, "/beside")

    print(
        f"healthy alone: p50 {p50_alone * 1000:.1f} ms, p95 {p95_alone * 1000:.1f} ms, "
        f"{rate_alone:.0f}/s; beside a hanging endpoint: p50 {p50_beside * 1000:.1f} ms, "
        f"p95 {p95_beside * 1000:.1f} ms, {rate_beside:.0f}/s; "
        f"hanging requests in flight: {len(receiver.for_path('/hanging'))}"
    )
    # The hanging endpoint got its share of requests, no more: the in-flight cap.
    assert len(receiver.for_path("/hanging")) == 20
    # Generous bounds, for a busy shared machine (the closing note has quiet-machine figures).
    # Without the in-flight cap the hanging endpoint takes every worker slot within 2 s, and
    # healthy deliveries then wait for 30 s timeouts: seconds, not milliseconds.
    assert rate_beside >= 0.5 * rate_alone
    assert p50_beside <= max(3 * p50_alone, p50_alone + 0.1)
    assert p95_beside <= max(3 * p95_alone, p95_alone + 0.25)


async def test_a_rate_limit_holds_across_two_workers(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    limit, burst = 20, 2  # burst: 100 ms worth of the rate (HERALD_RATE_LIMIT_BURST)
    start_worker()
    start_worker()
    # Warm the workers up first: their first claims and connections are slow, which delays
    # the first requests and bunches them up at the receiver.
    warm = await make_endpoint(api, f"{receiver.url}/warm")
    await wait_for_deliveries(
        api, [await post_event(api, warm["tenant_id"], {"n": n}) for n in range(40)]
    )
    endpoint = await make_endpoint(api, f"{receiver.url}/limited", rate_limit=limit)
    # Posted one after another (about 1 s): far faster than the limit lets them out.
    events = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(150)]

    requests = await receiver.wait_for(150, path="/limited", timeout=30)
    first = min(r.received_at for r in requests)
    per_second = [0] * 5
    for request in requests:
        second = int(request.received_at - first)
        if second < len(per_second):
            per_second[second] += 1
    print(f"rate limit {limit}/s with 2 workers, requests in each second: {per_second}")
    # The limiter's own bound (GCRA) is the rate times the window plus one burst, for
    # admissions. Arrivals also carry the scheduling delay between a worker's admission and
    # the request reaching the receiver, which a busy test machine stretches and bunches: the
    # window (it starts at a late first arrival) may take in one or two more, a second a few.
    assert sum(per_second) <= len(per_second) * limit + burst + 2
    assert max(per_second) <= limit + burst + 3
    # Limited, not starved.
    assert sum(per_second) >= len(per_second) * limit * 0.9

    deliveries = await wait_for_deliveries(api, events)
    # Waiting for the limit spends no attempt.
    assert {d["attempts"] for d in deliveries} == {1}
