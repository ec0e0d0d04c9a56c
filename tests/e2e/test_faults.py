"""Faults: a killed worker, a flushed Redis, a lost wake-up. No delivery may be lost."""

import signal
import subprocess
import sys

import httpx
import redis.asyncio as redis

from app.settings import Settings
from tests.e2e.conftest import (
    WorkerFactory,
    herald_environment,
    make_endpoint,
    post_event,
    stop,
    wait_for_deliveries,
    wait_until_ready,
)
from tests.integration.conftest import free_port
from tests.receivers import Receiver, always, slow
from tests.support import OPERATOR_KEY, eventually

EVENTS = 20


def event_ids_received(receiver: Receiver, path: str) -> set[str]:
    return {request.headers["webhook-id"] for request in receiver.for_path(path)}


async def test_worker_killed_mid_request_loses_nothing(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/slow", [slow(1.0)] * EVENTS)
    endpoint = await make_endpoint(api, f"{receiver.url}/slow")
    event_ids = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(EVENTS)]

    doomed = start_worker()
    await receiver.wait_for(5, path="/slow")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    start_worker()

    deliveries = await wait_for_deliveries(api, event_ids, timeout=40)
    assert len(deliveries) == EVENTS
    assert event_ids_received(receiver, "/slow") == set(event_ids)


async def test_flushed_redis_loses_nothing(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory, settings: Settings
) -> None:
    receiver.script("/after-flush", [always(500)] * EVENTS)
    endpoint = await make_endpoint(api, f"{receiver.url}/after-flush")
    queued = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(EVENTS)]
    client = redis.Redis.from_url(settings.effective_redis_url)
    try:
        # Wake-ups queued with no worker running, then everything in Redis gone.
        # The API sends its wake-up just after answering: wait until it is in Redis.
        await eventually(client.dbsize, lambda size: size > 0, timeout=10)
        await client.flushdb()
        start_worker()
        # Every delivery fails once, so all sit pending with a retry due; flush again then.
        await receiver.wait_for(EVENTS, path="/after-flush", timeout=20)
        await client.flushdb()
    finally:
        await client.aclose()

    deliveries = await wait_for_deliveries(api, queued)
    assert len(deliveries) == EVENTS
    assert event_ids_received(receiver, "/after-flush") == set(queued)


async def test_events_accepted_while_redis_is_unreachable_are_delivered(
    receiver: Receiver, start_worker: WorkerFactory, settings: Settings
) -> None:
    """Every wake-up fails after commit (the API's Redis is gone); the worker still delivers."""
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    environment = herald_environment(
        settings, HERALD_API_PORT=str(port), HERALD_REDIS_URL=dead_redis
    )
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "api"], env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, probe="/healthz")
        with_redis_down = httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}, timeout=30
        )
        async with with_redis_down as api:
            ready = await api.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"].startswith("unreachable")
            endpoint = await make_endpoint(api, f"{receiver.url}/no-wake")
            event_ids = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(5)]
            start_worker()
            await wait_for_deliveries(api, event_ids)
    finally:
        stop(process)
    assert event_ids_received(receiver, "/no-wake") == set(event_ids)
