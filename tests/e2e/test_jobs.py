"""Durable bulk jobs: DLQ replay by filter and endpoint recover, surviving a killed worker."""

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from app.db import asyncpg_dsn
from app.ids import new_id
from app.settings import Settings
from tests.e2e.conftest import WorkerFactory, make_endpoint, wait_for_deliveries
from tests.receivers import Receiver


async def bury(settings: Settings, endpoint: dict[str, Any], count: int) -> list[str]:
    """What an outage leaves behind: ``count`` events whose deliveries all died."""
    connection = await asyncpg.connect(asyncpg_dsn(settings.effective_database_url))
    try:
        events = [new_id("evt") for _ in range(count)]
        await connection.copy_records_to_table(
            "events",
            records=[
                (e, endpoint["tenant_id"], "order.paid", json.dumps({"n": n}))
                for n, e in enumerate(events)
            ],
            columns=["id", "tenant_id", "type", "payload"],
        )
        dead_at = datetime.now(UTC) - timedelta(minutes=5)
        await connection.copy_records_to_table(
            "deliveries",
            records=[
                (
                    new_id("dlv"),
                    endpoint["tenant_id"],
                    e,
                    endpoint["id"],
                    "order.paid",
                    "dead",
                    "exhausted",
                    dead_at,
                    None,
                    5,
                    5,
                )
                for e in events
            ],
            columns=[
                "id",
                "tenant_id",
                "event_id",
                "endpoint_id",
                "event_type",
                "status",
                "dead_reason",
                "dead_at",
                "next_attempt_at",
                "attempts",
                "chain_attempts",
            ],
        )
        return events
    finally:
        await connection.close()


async def job_until(
    api: httpx.AsyncClient, job_id: str, done: Any, timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = (await api.get(f"/v1/jobs/{job_id}")).json()
        if done(job):
            return job
        assert job["status"] != "failed", job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.02)


async def test_bulk_replay_survives_a_killed_worker_and_replays_each_once(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory, settings: Settings
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/bulk")
    events = await bury(settings, endpoint, 10_000)
    # Held back while the job runs, so the kill lands in the job, not in HTTP requests:
    # a double replay would then show up as a second request for an event.
    await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"enabled": False})

    job = (await api.post("/v1/dlq/replay", json={"endpoint_id": endpoint["id"]})).json()
    assert (job["kind"], job["status"], job["total"]) == ("dlq_replay", "queued", 10_000)
    doomed = start_worker(HERALD_JOB_BATCH="100")
    midway = await job_until(api, job["id"], lambda j: 0 < j["done"] < j["total"])
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert midway["done"] < 10_000

    start_worker(HERALD_JOB_BATCH="100")
    finished = await job_until(api, job["id"], lambda j: j["status"] == "succeeded")
    assert (finished["done"], finished["failed"]) == (10_000, 0)

    await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"enabled": True})
    await receiver.wait_for(10_000, path="/bulk", timeout=120)
    dlq = await api.get("/v1/dlq", params={"endpoint_id": endpoint["id"]})
    assert dlq.json()["data"] == []
    sent = Counter(r.headers["webhook-id"] for r in receiver.for_path("/bulk"))
    assert set(sent) == set(events)
    assert max(sent.values()) == 1


async def test_recover_redelivers_what_failed_in_the_window(
    api: httpx.AsyncClient, receiver: Receiver, start_worker: WorkerFactory, settings: Settings
) -> None:
    endpoint = await make_endpoint(api, f"{receiver.url}/recovered")
    since = datetime.now(UTC) - timedelta(minutes=1)
    events = await bury(settings, endpoint, 30)
    start_worker()
    response = await api.post(
        f"/v1/endpoints/{endpoint['id']}/recover", json={"since": since.isoformat()}
    )
    assert response.status_code == 202, response.text
    job = await job_until(api, response.json()["id"], lambda j: j["status"] == "succeeded")
    assert (job["kind"], job["total"], job["done"]) == ("recover", 30, 30)
    await wait_for_deliveries(api, events)
    log = (await api.get("/v1/attempts", params={"endpoint_id": endpoint["id"]})).json()["data"]
    assert {a["trigger"] for a in log} == {"manual"}

    later = await api.post(
        f"/v1/endpoints/{endpoint['id']}/recover",
        json={"since": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()},
    )
    assert later.json()["total"] == 0
    backwards = await api.post(
        f"/v1/endpoints/{endpoint['id']}/recover",
        json={"since": since.isoformat(), "until": (since - timedelta(hours=1)).isoformat()},
    )
    assert backwards.status_code == 422
