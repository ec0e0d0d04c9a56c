"""Circuit breakers as a receiver sees them, and the operator's notifications about them."""

import itertools
import json
from dataclasses import dataclass
from typing import Any

import httpx
from standardwebhooks import Webhook

from app.operational import OPERATIONS_ENDPOINT_ID, OPERATIONS_TENANT_ID
from tests.e2e.conftest import WorkerFactory, make_endpoint, post_event, wait_for_deliveries
from tests.receivers import ReceivedRequest, Receiver, Reply, always
from tests.support import eventually

OPS_SECRET = "whsec_" + "b3BlcmF0aW9ucy1zZWNyZXQtZm9yLXRlc3Rz"  # "operations-secret-for-tests"


@dataclass
class Switch:
    """A receiver that fails until it is told to recover."""

    healthy: bool = False

    async def __call__(self, _: ReceivedRequest) -> Reply:
        return always(200) if self.healthy else always(503)


async def endpoint_state(api: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    circuit: dict[str, Any] = (await api.get(f"/v1/endpoints/{endpoint_id}")).json()["circuit"]
    return circuit


async def test_an_open_circuit_lets_one_probe_through_per_cooldown_and_loses_nothing(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    switch = Switch()
    receiver.script("/flaky", [switch] * 1000)
    endpoint = await make_endpoint(
        api,
        f"{receiver.url}/flaky",
        circuit_breaker={"consecutive_failures": 3, "cooldown_s": 1, "max_cooldown_s": 2},
    )
    start_worker()
    events = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(10)]

    opened = await eventually(
        lambda: endpoint_state(api, endpoint["id"]), lambda c: c["state"] != "closed"
    )
    assert opened["failures"] >= 3
    assert opened["opened_at"] is not None
    before_trip = len(receiver.for_path("/flaky"))

    # While open: only probes, one per cool-down (1 s, then doubled to the 2 s cap).
    probes = (await receiver.wait_for(before_trip + 3, path="/flaky", timeout=15))[before_trip:]
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(probes)]
    assert all(gap >= 1.8 for gap in gaps), gaps
    deliveries = (
        await api.get("/v1/deliveries", params={"endpoint_id": endpoint["id"], "limit": 100})
    ).json()["data"]
    assert "held" in {d["status"] for d in deliveries}

    switch.healthy = True
    await wait_for_deliveries(api, events, timeout=30)
    assert (await endpoint_state(api, endpoint["id"]))["state"] == "closed"

    received = receiver.for_path("/flaky")
    assert {r.headers["webhook-id"] for r in received} == set(events)
    # Every attempt is a request the receiver got: none was spent while held.
    attempts = (
        await api.get("/v1/attempts", params={"endpoint_id": endpoint["id"], "limit": 100})
    ).json()["data"]
    assert len(attempts) == len(received)
    after_trip = sorted(attempts, key=lambda a: a["id"])[before_trip:]
    assert [a["trigger"] for a in after_trip[:3]] == ["probe"] * 3


async def test_operational_notifications_arrive_signed(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory
) -> None:
    switch = Switch()
    receiver.script("/recovering", [switch] * 1000)
    receiver.script("/gone", [always(410)])
    receiver.script("/broken", [always(500)] * 1000)
    recovering = await make_endpoint(
        api,
        f"{receiver.url}/recovering",
        circuit_breaker={"consecutive_failures": 2, "cooldown_s": 1},
    )
    gone = await make_endpoint(api, f"{receiver.url}/gone")
    broken = await make_endpoint(api, f"{receiver.url}/broken", circuit_breaker={"enabled": False})
    start_worker(
        HERALD_OPERATIONAL_WEBHOOK_URL=f"{receiver.url}/ops",
        HERALD_OPERATIONAL_WEBHOOK_SECRET=OPS_SECRET,
    )
    try:
        for endpoint in (recovering, recovering, gone, broken):
            await post_event(api, endpoint["tenant_id"], {"endpoint": endpoint["id"]})
        await eventually(
            lambda: endpoint_state(api, recovering["id"]), lambda c: c["state"] != "closed"
        )
        switch.healthy = True

        def notified(kind: str, endpoint_id: str) -> dict[str, Any] | None:
            for request in receiver.for_path("/ops"):
                body = json.loads(request.body)
                if body["type"] == kind and body["data"]["endpoint_id"] == endpoint_id:
                    # Signed like every webhook, with the operations secret.
                    Webhook(OPS_SECRET).verify(request.body, dict(request.headers))
                    data: dict[str, Any] = body["data"]
                    return data
            return None

        async def arrived(kind: str, endpoint_id: str) -> dict[str, Any]:
            async def probe() -> dict[str, Any] | None:
                return notified(kind, endpoint_id)

            found = await eventually(probe, lambda data: data is not None, timeout=20)
            assert found is not None
            return found

        opened = await arrived("endpoint.circuit_opened", recovering["id"])
        assert opened["tenant_id"] == recovering["tenant_id"]
        assert opened["failures"] >= 2
        closed = await arrived("endpoint.circuit_closed", recovering["id"])
        assert closed["reason"] == "probe_succeeded"
        disabled = await arrived("endpoint.disabled", gone["id"])
        assert disabled["reason"] == "gone"
        dead_gone = await arrived("delivery.dead_lettered", gone["id"])
        assert dead_gone["reason"] == "gone"
        dead_broken = await arrived("delivery.dead_lettered", broken["id"])
        assert (dead_broken["reason"], dead_broken["attempts"]) == ("exhausted", 5)
        # Nothing about the operations endpoint itself is ever reported.
        assert all(
            json.loads(r.body)["data"]["tenant_id"] != OPERATIONS_TENANT_ID
            for r in receiver.for_path("/ops")
        )
    finally:
        # Leave nothing addressed to this test's receiver for later tests' workers.
        await api.patch(f"/v1/endpoints/{OPERATIONS_ENDPOINT_ID}", json={"enabled": False})
