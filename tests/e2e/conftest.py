"""Herald as its users run it: `herald api` / `herald worker` processes on free ports."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import pytest
from aiohttp.abc import AbstractResolver
from redis.asyncio import Redis

from app.db import asyncpg_dsn
from app.durations import format_duration
from app.settings import Settings
from app.signing_secrets import SecretBox
from tests.integration.conftest import free_port
from tests.receivers import Receiver
from tests.support import OPERATOR_KEY
from worker.dispatcher import Dispatcher
from worker.limits import Limits
from worker.ssrf import AddressPolicy, guarded_connector


def herald_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    environment.update(
        {
            "HERALD_DATABASE_URL": settings.effective_database_url,
            "HERALD_REDIS_URL": settings.effective_redis_url,
            "HERALD_OPERATOR_KEY": settings.operator_key.get_secret_value()
            if settings.operator_key
            else "",
            "HERALD_QUEUE_NAME": settings.queue_name,
            "HERALD_ALLOW_CIDRS": ",".join(settings.allow_cidrs),
            "HERALD_LOG_LEVEL": "WARNING",
            "HERALD_RETRY_SCHEDULE": ",".join(map(format_duration, settings.retry_schedule)),
            "HERALD_REQUEST_TIMEOUT": format_duration(settings.request_timeout),
            "HERALD_WORKER_LEASE": format_duration(settings.worker_lease),
            "HERALD_WORKER_IDLE_POLL": format_duration(settings.worker_idle_poll),
            "HERALD_WORKER_SHUTDOWN_GRACE": format_duration(settings.worker_shutdown_grace),
            "HERALD_CIRCUIT_COOLDOWN": format_duration(settings.circuit_cooldown),
            "HERALD_CIRCUIT_MAX_COOLDOWN": format_duration(settings.circuit_max_cooldown),
            # Tests run several workers at once: no fixed metrics port, private heartbeats.
            "HERALD_WORKER_METRICS_PORT": "0",
            "HERALD_WORKER_HEARTBEAT_FILE": str(
                Path(tempfile.gettempdir()) / f"herald-test-{os.getpid()}.heartbeat"
            ),
        }
    )
    environment.update(overrides)
    return environment


def wait_until_ready(
    url: str, process: "subprocess.Popen[Any]", *, timeout: float = 30, probe: str = "/readyz"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} was not ready within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class RunningApi:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def api_process(settings: Settings) -> Iterator[RunningApi]:
    port = free_port()
    environment = herald_environment(
        settings, HERALD_API_PORT=str(port), HERALD_API_HOST="127.0.0.1"
    )
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "api"], env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield RunningApi(url, process)
    finally:
        stop(process)


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[WorkerFactory]:
    """Starts `herald worker` processes; every one still running is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**overrides: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=herald_environment(settings, **overrides),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process)


@pytest.fixture
async def api(api_process: RunningApi) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    async with httpx.AsyncClient(base_url=api_process.url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


async def wait_for_deliveries(
    api: httpx.AsyncClient,
    event_ids: list[str],
    *,
    statuses: frozenset[str] = frozenset({"succeeded"}),
    timeout: float = 30,
) -> list[dict[str, Any]]:
    """Poll the API until every delivery of these events is in one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        deliveries = []
        for event_id in event_ids:
            event = (await api.get(f"/v1/events/{event_id}")).json()
            deliveries += event["deliveries"]
        if deliveries and all(delivery["status"] in statuses for delivery in deliveries):
            return deliveries
        if time.monotonic() > deadline:
            summary = sorted({delivery["status"] for delivery in deliveries})
            raise TimeoutError(f"deliveries still {summary} after {timeout}s")
        await asyncio.sleep(0.1)


async def make_endpoint(api: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    tenant = await api.post("/v1/tenants", json={"name": "e2e"})
    body = {"tenant_id": tenant.json()["id"], "url": url, **fields}
    created = await api.post("/v1/endpoints", json=body)
    assert created.status_code == 201, created.text
    endpoint: dict[str, Any] = created.json()
    return endpoint


async def post_event(
    api: httpx.AsyncClient, tenant_id: str, payload: dict[str, Any], event_type: str = "order.paid"
) -> str:
    response = await api.post(
        "/v1/events", json={"tenant_id": tenant_id, "type": event_type, "payload": payload}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


@asynccontextmanager
async def in_process_worker(
    settings: Settings, *, resolver: AbstractResolver | None = None
) -> AsyncIterator[Dispatcher]:
    """The delivery loop in this process, for tests that must shape its network (a resolver)."""
    pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.effective_database_url), min_size=1, max_size=2
    )
    connector_options = {"resolver": resolver} if resolver is not None else {}
    http = aiohttp.ClientSession(
        connector=guarded_connector(
            AddressPolicy.from_cidrs(settings.allow_cidrs), **connector_options
        ),
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout.total_seconds()),
    )

    redis = Redis.from_url(settings.effective_redis_url)

    async def no_peers() -> None:
        return None

    dispatcher = Dispatcher(
        settings=settings,
        pool=pool,
        http=http,
        secret_box=SecretBox(settings.secret_key.get_secret_value()),
        limits=Limits(
            redis,
            max_in_flight=settings.endpoint_max_in_flight,
            lease=settings.worker_lease,
            burst=settings.rate_limit_burst,
        ),
        worker_id="test-worker",
        recruit_peer=no_peers,
    )
    loop = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        await loop
        await http.close()
        await pool.close()
        await redis.aclose()
