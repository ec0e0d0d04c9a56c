"""Support staff: "did customer X get event Y, and if not, why, and send it again"."""

import httpx

from tests.e2e.conftest import WorkerFactory, make_endpoint, post_event, wait_for_deliveries
from tests.receivers import Receiver, always

EVENTS = 3


async def test_dead_letters_are_explained_and_replayed(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/broken", [always(500, body=b"schema mismatch in order.paid")] * 5 * EVENTS)
    # The circuit breaker stays out of it: this is about the DLQ.
    endpoint = await make_endpoint(
        api, f"{receiver.url}/broken", circuit_breaker={"enabled": False}
    )
    tenant = endpoint["tenant_id"]
    start_worker()
    event_ids = [await post_event(api, tenant, {"n": n}) for n in range(EVENTS)]
    await wait_for_deliveries(api, event_ids, statuses=frozenset({"dead"}))

    dlq = (await api.get("/v1/dlq", params={"tenant_id": tenant})).json()["data"]
    assert {d["event_id"] for d in dlq} == set(event_ids)
    assert {d["dead_reason"] for d in dlq} == {"exhausted"}
    why = (await api.get("/v1/attempts", params={"delivery_id": dlq[0]["id"]})).json()["data"]
    assert len(why) == 5
    assert {a["response_status"] for a in why} == {500}
    assert why[0]["response_body"] == "schema mismatch in order.paid"

    # The customer fixed their endpoint (the script ran out: it answers 200 now).
    replay = await api.post("/v1/dlq/replay", json={"tenant_id": tenant, "reason": "exhausted"})
    assert replay.status_code == 202, replay.text
    assert replay.json()["total"] == EVENTS
    await wait_for_deliveries(api, event_ids)
    job = (await api.get(f"/v1/jobs/{replay.json()['id']}")).json()
    assert (job["status"], job["done"], job["failed"]) == ("succeeded", EVENTS, 0)

    assert (await api.get("/v1/dlq", params={"tenant_id": tenant})).json()["data"] == []
    log = (await api.get(f"/v1/deliveries/{dlq[0]['id']}")).json()["attempt_log"]
    assert [a["trigger"] for a in log] == ["scheduled"] * 5 + ["replay"]
    assert [a["number"] for a in log] == [1, 2, 3, 4, 5, 6]
    assert log[-1]["response_status"] == 200


async def test_resend_of_a_delivered_event_sends_it_again(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/again")
    start_worker()
    event_id = await post_event(api, endpoint["tenant_id"], {"n": 1})
    [delivery] = await wait_for_deliveries(api, [event_id])

    resent = await api.post(f"/v1/deliveries/{delivery['id']}/resend")
    assert resent.status_code == 202
    requests = await receiver.wait_for(2, path="/again")
    assert {r.headers["webhook-id"] for r in requests} == {event_id}
    await wait_for_deliveries(api, [event_id])
    log = (await api.get(f"/v1/deliveries/{delivery['id']}")).json()["attempt_log"]
    assert [a["trigger"] for a in log] == ["scheduled", "manual"]
    not_dead = await api.post(f"/v1/dlq/{delivery['id']}/replay")
    assert not_dead.status_code == 404


async def test_single_replay_and_discard(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    receiver.script("/once-broken", [always(410)])
    endpoint = await make_endpoint(api, f"{receiver.url}/once-broken")
    start_worker()
    first, second = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(2)]
    # Whichever request came first got the 410; the other went out with it or is held.
    settled = await wait_for_deliveries(
        api, [first, second], statuses=frozenset({"dead", "held", "succeeded"})
    )
    await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"enabled": True})
    [gone] = [d for d in settled if d["status"] == "dead"]

    replayed = await api.post(f"/v1/dlq/{gone['id']}/replay")
    assert replayed.status_code == 202
    await wait_for_deliveries(api, [first, second])
    log = (await api.get(f"/v1/deliveries/{gone['id']}")).json()["attempt_log"]
    assert [a["trigger"] for a in log] == ["scheduled", "replay"]
    assert [a["response_status"] for a in log] == [410, 200]
