"""What operators watch: Prometheus counters that move, and the worker's health command."""

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.db import asyncpg_dsn
from app.settings import Settings
from tests.e2e.conftest import (
    RunningApi,
    WorkerFactory,
    herald_environment,
    make_endpoint,
    post_event,
    stop,
    wait_for_deliveries,
)
from tests.integration.conftest import free_port
from tests.receivers import Receiver, always


async def quiesce(settings: Settings) -> None:
    """Counters are per process: park what earlier tests left due, so only this test counts.

    Tests in one xdist process run one after another on their own database, so nothing else
    is using those endpoints any more.
    """
    connection = await asyncpg.connect(asyncpg_dsn(settings.effective_database_url))
    try:
        await connection.execute("UPDATE endpoints SET enabled = false WHERE enabled")
    finally:
        await connection.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 20
        while True:
            try:
                return samples((await client.get(url)).text)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def test_metrics_move_with_deliveries(
    api: httpx.AsyncClient,
    api_process: RunningApi,
    receiver: Receiver,
    start_worker: WorkerFactory,
    settings: Settings,
) -> None:
    await quiesce(settings)
    port = free_port()
    start_worker(HERALD_WORKER_METRICS_PORT=str(port))
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    before_api = await scrape(f"{api_process.url}/metrics")
    before = await scrape(worker_metrics)

    receiver.script("/watched", [always(503)])
    endpoint = await make_endpoint(api, f"{receiver.url}/watched")
    event_ids = [await post_event(api, endpoint["tenant_id"], {"n": n}) for n in range(3)]
    await wait_for_deliveries(api, event_ids)

    after = await scrape(worker_metrics)
    after_api = await scrape(f"{api_process.url}/metrics")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("herald_deliveries_total", outcome="succeeded") == 3
    assert delta("herald_deliveries_total", outcome="retry") == 1
    assert delta("herald_attempts_total", error_class="none", status_class="2xx") == 3
    assert delta("herald_attempts_total", error_class="http_status", status_class="5xx") == 1
    assert delta("herald_attempt_duration_seconds_count") == 4
    assert delta("herald_end_to_end_seconds_count") == 3
    ingested = value(after_api, "herald_events_ingested_total", duplicate="false") - value(
        before_api, "herald_events_ingested_total", duplicate="false"
    )
    assert ingested == 3
    assert (
        value(
            after_api, "herald_http_requests_total", method="POST", route="/v1/events", status="202"
        )
        >= 3
    )
    assert ("herald_dlq_size", ()) in after_api
    assert ("herald_due_backlog", ()) in after_api


def health(settings: Settings, heartbeat: Path, max_age: str) -> int:
    environment = herald_environment(settings, HERALD_WORKER_HEARTBEAT_FILE=str(heartbeat))
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "worker-health", "--max-age", max_age],
        env=environment,
        capture_output=True,
        check=False,
    ).returncode


async def test_worker_health_follows_the_worker(
    settings: Settings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "heartbeat"
    assert health(settings, heartbeat, "30") == 1
    worker = start_worker(HERALD_WORKER_HEARTBEAT_FILE=str(heartbeat))
    deadline = time.monotonic() + 30
    while health(settings, heartbeat, "30") != 0:
        assert time.monotonic() < deadline, "the worker never reported healthy"
        await asyncio.sleep(0.2)
    stop(worker)
    deadline = time.monotonic() + 30
    while health(settings, heartbeat, "1") != 1:
        assert time.monotonic() < deadline, "a stopped worker still looks healthy"
        await asyncio.sleep(0.2)
