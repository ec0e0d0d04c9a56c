"""API + worker processes + real receivers: what a receiver actually gets, and when."""

import json
from itertools import pairwise

import httpx
from standardwebhooks import Webhook

from tests.e2e.conftest import (
    WorkerFactory,
    make_endpoint,
    post_event,
    wait_for_deliveries,
)
from tests.receivers import Receiver, always
from tests.support import eventually

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_receiver_gets_a_signed_standard_webhook(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    endpoint = await make_endpoint(
        api, f"{receiver.url}/signed", secret=SECRET, headers={"X-Team": "billing"}
    )
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"amount": 42, "note": "héllo"})

    [request] = await receiver.wait_for(1, path="/signed")
    verified = Webhook(SECRET).verify(request.body, dict(request.headers))
    assert verified["id"] == event_id
    assert verified["type"] == "order.paid"
    assert verified["data"] == {"amount": 42, "note": "héllo"}
    assert verified["timestamp"].endswith("Z")
    assert request.headers["webhook-id"] == event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Herald/")
    assert request.headers["x-team"] == "billing"

    [delivery] = await wait_for_deliveries(api, [event_id])
    log = (await api.get(f"/v1/deliveries/{delivery['id']}")).json()
    [attempt] = log["attempt_log"]
    assert attempt["response_status"] == 200
    assert attempt["trigger"] == "scheduled"
    assert attempt["error_class"] is None
    assert attempt["request_headers"]["webhook-id"] == event_id


async def test_both_secrets_verify_during_a_rotation(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/rotating", secret=SECRET)
    rotated = await api.post(f"/v1/endpoints/{endpoint['id']}/secret/rotate", json={})
    new_secret = rotated.json()["secret"]
    start_worker()
    await post_event(api, endpoint["tenant_id"], {"n": 1})

    [request] = await receiver.wait_for(1, path="/rotating")
    headers = dict(request.headers)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, new_secret):
        assert json.loads(request.body) == Webhook(secret).verify(request.body, headers)


async def test_retries_follow_the_schedule_until_success(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/flaky", [always(500), always(500), always(503)])
    endpoint = await make_endpoint(api, f"{receiver.url}/flaky")
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})

    requests = await receiver.wait_for(4, path="/flaky", timeout=20)
    [delivery] = await wait_for_deliveries(api, [event_id])
    gaps = [later.received_at - earlier.received_at for earlier, later in pairwise(requests)]
    # Schedule 0.5s, 1s, 1.5s (tests/conftest.py): never early, and late only by a poll or so.
    for gap, step in zip(gaps, (0.5, 1.0, 1.5), strict=True):
        assert step - 0.05 <= gap <= step + 0.6, gaps
    log = (await api.get(f"/v1/deliveries/{delivery['id']}")).json()
    assert [a["number"] for a in log["attempt_log"]] == [1, 2, 3, 4]
    assert [a["response_status"] for a in log["attempt_log"]] == [500, 500, 503, 200]
    assert [a["error_class"] for a in log["attempt_log"]] == ["http_status"] * 3 + [None]
    assert len(receiver.for_path("/flaky")) == 4


async def test_exhausted_schedule_dead_letters(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/down", [], then=always(500, body=b"database on fire"))
    endpoint = await make_endpoint(api, f"{receiver.url}/down")
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})

    [delivery] = await wait_for_deliveries(api, [event_id], statuses=frozenset({"dead"}))
    assert delivery["attempts"] == 5
    log = (await api.get(f"/v1/deliveries/{delivery['id']}")).json()
    assert log["dead_reason"] == "exhausted"
    assert log["dead_at"] is not None
    assert len(log["attempt_log"]) == 5
    assert log["attempt_log"][-1]["response_body"] == "database on fire"
    assert len(receiver.for_path("/down")) == 5


async def test_gone_disables_the_endpoint(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/gone", [], then=always(410))
    endpoint = await make_endpoint(api, f"{receiver.url}/gone")
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})

    [delivery] = await wait_for_deliveries(api, [event_id], statuses=frozenset({"dead"}))
    assert (await api.get(f"/v1/deliveries/{delivery['id']}")).json()["dead_reason"] == "gone"
    after = (await api.get(f"/v1/endpoints/{endpoint['id']}")).json()
    assert after["enabled"] is False
    assert after["disabled_reason"] == "gone"
    later = await api.post(
        "/v1/events",
        json={"tenant_id": endpoint["tenant_id"], "type": "order.paid", "payload": {}},
    )
    assert later.json()["deliveries"] == 0
    assert len(receiver.for_path("/gone")) == 1


async def test_connection_failures_are_classified(
    api: httpx.AsyncClient, start_worker: WorkerFactory
) -> None:
    async with Receiver() as closed:
        url = f"{closed.url}/nobody"
    endpoint = await make_endpoint(api, url)
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})
    [delivery] = (await api.get(f"/v1/events/{event_id}")).json()["deliveries"]
    response = await eventually(
        lambda: api.get(f"/v1/deliveries/{delivery['id']}"),
        lambda response: bool(response.json()["attempt_log"]),
    )
    log = response.json()
    assert log["attempt_log"][0]["error_class"] == "connect"
    assert log["attempt_log"][0]["response_status"] is None
    assert "Connect" in log["attempt_log"][0]["error_detail"]


async def test_endpoint_test_event_arrives(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/test", secret=SECRET)
    start_worker()
    accepted = await api.post(f"/v1/endpoints/{endpoint['id']}/test")
    assert accepted.status_code == 202
    [request] = await receiver.wait_for(1, path="/test")
    assert Webhook(SECRET).verify(request.body, dict(request.headers))["type"] == "test.webhook"
