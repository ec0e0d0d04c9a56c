"""The arq worker process: owns its database pool, HTTP session and delivery loop.

arq carries wake-up calls only (``app.queue``); the delivery loop claims the actual work
from PostgreSQL, so a wake-up lost in Redis never loses a delivery.
"""

import asyncio
import logging
import os
import socket
from typing import Any

import aiohttp
import asyncpg
import uvloop
from arq.connections import RedisSettings
from arq.worker import Worker, func
from prometheus_client import start_http_server

from app import operational
from app.db import asyncpg_dsn, create_engine, create_session_factory
from app.queue import WAKE_JOB, wake_workers
from app.settings import Settings
from app.signing_secrets import SecretBox
from app.tracing import configure_tracing
from worker.circuits import CircuitKeeper
from worker.dispatcher import Dispatcher
from worker.health import Heartbeat
from worker.jobs import JobRunner
from worker.limits import Limits
from worker.retention import RetentionLoop
from worker.ssrf import AddressPolicy, guarded_connector

log = logging.getLogger("herald.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def wake(ctx: dict[str, Any]) -> None:
    """New work was committed: claim it now rather than at the next poll."""
    dispatcher: Dispatcher = ctx["dispatcher"]
    dispatcher.wake()
    job_runner: JobRunner = ctx["job_runner"]
    job_runner.wake()


def http_session(settings: Settings) -> aiohttp.ClientSession:
    connector = guarded_connector(
        AddressPolicy.from_cidrs(settings.allow_cidrs),
        limit=settings.worker_concurrency,
        limit_per_host=0,
        ttl_dns_cache=60,
        enable_cleanup_closed=True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout.total_seconds()),
        auto_decompress=False,
        trust_env=False,
    )


def serve_metrics(settings: Settings) -> None:
    if not settings.worker_metrics_port:
        return
    try:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    except OSError as error:
        # Metrics are for watching; a busy port must not stop deliveries.
        log.error("cannot serve metrics on port %s: %s", settings.worker_metrics_port, error)


def build_worker(settings: Settings, *, burst: bool = False) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        identity = worker_id()
        pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.effective_database_url), min_size=2, max_size=6
        )
        http = http_session(settings)

        async def recruit_peer() -> None:
            await wake_workers(ctx["redis"])

        secret_box = SecretBox(settings.secret_key.get_secret_value())
        async with pool.acquire() as connection:
            await operational.provision(connection, settings=settings, secret_box=secret_box)
        limits = Limits(
            ctx["redis"],
            max_in_flight=settings.endpoint_max_in_flight,
            lease=settings.worker_lease,
            burst=settings.rate_limit_burst,
        )
        # Each wakes the other: a hold may make a probe due, a probe is a delivery to claim.
        keeper = CircuitKeeper(pool=pool, settings=settings, on_probe=lambda: dispatcher.wake())
        dispatcher = Dispatcher(
            settings=settings,
            pool=pool,
            http=http,
            secret_box=secret_box,
            limits=limits,
            worker_id=identity,
            recruit_peer=recruit_peer,
            on_held=keeper.wake,
        )
        engine = create_engine(settings)
        job_runner = JobRunner(
            sessions=create_session_factory(engine),
            worker_id=identity,
            lease=settings.worker_lease,
            idle_poll=settings.worker_idle_poll,
            batch_size=settings.job_batch,
            on_progress=dispatcher.wake,
        )
        retention = RetentionLoop(
            engine=engine,
            interval=settings.retention_interval,
            dlq_retention=settings.dlq_retention,
            retention=settings.retention,
            batch=settings.retention_batch,
        )
        heartbeat = Heartbeat(path=settings.worker_heartbeat_file, pool=pool, redis=ctx["redis"])
        ctx.update(
            heartbeat=heartbeat,
            heartbeat_task=asyncio.create_task(heartbeat.run(), name="herald-heartbeat"),
            retention=retention,
            retention_task=asyncio.create_task(retention.run(), name="herald-retention"),
            pool=pool,
            http=http,
            engine=engine,
            dispatcher=dispatcher,
            job_runner=job_runner,
            loop_task=asyncio.create_task(dispatcher.run(), name="herald-dispatcher"),
            jobs_task=asyncio.create_task(job_runner.run(), name="herald-jobs"),
            keeper=keeper,
            keeper_task=asyncio.create_task(keeper.run(), name="herald-circuits"),
        )
        serve_metrics(settings)
        log.info("worker %s started", identity)

    async def shutdown(ctx: dict[str, Any]) -> None:
        dispatcher: Dispatcher | None = ctx.get("dispatcher")
        if dispatcher is not None:
            ctx["job_runner"].stop()
            ctx["retention"].stop()
            ctx["heartbeat"].stop()
            ctx["keeper"].stop()
            dispatcher.stop()
            await asyncio.gather(
                ctx["loop_task"],
                ctx["jobs_task"],
                ctx["retention_task"],
                ctx["heartbeat_task"],
                ctx["keeper_task"],
            )
            await ctx["http"].close()
            await ctx["pool"].close()
            await ctx["engine"].dispose()
        log.info("worker stopped")

    return Worker(
        functions=[func(wake, name=WAKE_JOB, keep_result=0, max_tries=1)],
        redis_settings=RedisSettings.from_dsn(settings.effective_redis_url),
        queue_name=settings.queue_name,
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=settings.worker_poll_delay.total_seconds(),
        health_check_interval=10,
        handle_signals=True,
        # On SIGTERM let a running wake-up job finish instead of cancelling it: arq's close()
        # re-raises a cancelled job, which would skip on_shutdown (our drain) and exit 1.
        job_completion_wait=5,
        keep_result=0,
    )


def run_worker(settings: Settings) -> None:
    configure_tracing(settings, service="herald-worker")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    build_worker(settings).run()
