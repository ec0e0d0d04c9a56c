"""The arq worker process: owns its database engine, Redis pool and HTTP session."""

import logging
import os
import socket
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func

from app.db import create_engine, create_session_factory
from app.queue import WAKE_JOB
from app.settings import Settings

log = logging.getLogger("herald.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def wake(ctx: dict[str, Any]) -> None:
    """A wake-up call after new work was committed; the delivery loop arrives with the pipeline."""
    log.debug("woken by job %s", ctx.get("job_id"))


def build_worker(settings: Settings, *, burst: bool = False) -> Worker:
    async def startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(settings)
        ctx["engine"] = engine
        ctx["sessions"] = create_session_factory(engine)
        ctx["worker_id"] = worker_id()
        log.info("worker %s started", ctx["worker_id"])

    async def shutdown(ctx: dict[str, Any]) -> None:
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()

    return Worker(
        functions=[func(wake, name=WAKE_JOB)],
        redis_settings=RedisSettings.from_dsn(settings.effective_redis_url),
        queue_name=settings.queue_name,
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        poll_delay=0.05,
        health_check_interval=10,
        handle_signals=True,
    )


def run_worker(settings: Settings) -> None:
    build_worker(settings).run()
