"""Several workers share the work without sending anything twice; a stopping one loses nothing."""

import signal
from collections import Counter

import httpx

from tests.e2e.conftest import WorkerFactory, make_endpoint, post_event, wait_for_deliveries
from tests.receivers import Receiver, slow

EVENTS = 60


async def test_two_workers_send_each_delivery_once(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/shared")
    start_worker()
    start_worker()
    event_ids = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(EVENTS)]

    await wait_for_deliveries(api, event_ids)
    sent = Counter(request.headers["webhook-id"] for request in receiver.for_path("/shared"))
    assert set(sent) == set(event_ids)
    assert max(sent.values()) == 1, [event for event, count in sent.items() if count > 1]


async def test_sigterm_lets_requests_finish_and_loses_nothing(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/draining", [slow(0.5)] * EVENTS)
    endpoint = await make_endpoint(api, f"{receiver.url}/draining")
    event_ids = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(EVENTS)]
    stopping = start_worker()
    await receiver.wait_for(10, path="/draining")
    stopping.send_signal(signal.SIGTERM)
    assert stopping.wait(timeout=30) == 0
    start_worker()

    await wait_for_deliveries(api, event_ids, timeout=40)
    received = {request.headers["webhook-id"] for request in receiver.for_path("/draining")}
    assert received == set(event_ids)
