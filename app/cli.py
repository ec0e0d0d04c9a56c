"""The ``herald`` command: run the processes, migrate, manage keys."""

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from app import __version__
from app.logs import configure_logging
from app.settings import Settings
from app.support_cli import register as register_support_commands

cli = typer.Typer(help="Herald: self-hosted outbound webhook delivery.", no_args_is_help=True)
keys = typer.Typer(help="API keys.", no_args_is_help=True)
cli.add_typer(keys, name="keys")
register_support_commands(cli)

STATE_DIR = Path(".herald")


def _logging(settings: Settings) -> None:
    configure_logging(level=settings.log_level, json_lines=settings.log_format == "json")


@cli.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@cli.command()
def migrate() -> None:
    """Create the database if needed and apply every migration."""
    from app.db import migrate as run_migrations

    settings = Settings()
    _logging(settings)
    asyncio.run(run_migrations(settings.effective_database_url))
    typer.echo("database is at the newest migration")


@cli.command()
def api(
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the REST API."""
    import uvicorn

    settings = Settings()
    _logging(settings)
    if settings.operator_key is None:
        # Chosen here, once: each uvicorn worker would otherwise invent a key of its own,
        # and a request would be accepted or not depending on the worker it reached.
        operator_key = _dev_operator_key(settings)
        os.environ["HERALD_OPERATOR_KEY"] = operator_key
        logging.getLogger("herald.api").warning(
            "HERALD_OPERATOR_KEY is not set; every worker accepts the development key %s "
            "(kept in %s)",
            operator_key,
            STATE_DIR / "operator_key",
        )
    uvicorn.run(
        "app.api.main:app_from_environment",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=None,  # the root logger set up by configure_logging, JSON or text
        access_log=False,
    )


@cli.command()
def worker() -> None:
    """Run a delivery worker."""
    from worker.main import run_worker

    settings = Settings()
    _logging(settings)
    run_worker(settings)


@cli.command("worker-health")
def worker_health(
    max_age: Annotated[float, typer.Option(help="oldest acceptable heartbeat, seconds")] = 30,
) -> None:
    """Exit 0 if a worker of this queue recorded a heartbeat recently (for liveness probes)."""
    from worker.health import heartbeat_problem

    problem = heartbeat_problem(Settings(), max_age=max_age)
    if problem is not None:
        typer.echo(f"unhealthy: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo("worker healthy")


@keys.command("create")
def create_key(
    tenant: Annotated[str | None, typer.Option(help="tenant id; omit for an operator key")] = None,
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
) -> None:
    """Create an API key directly in the database and print it (shown once)."""
    from app.auth import Principal
    from app.db import create_engine, create_session_factory
    from app.errors import HeraldError
    from app.services.api_keys import create_api_key

    settings = Settings()

    async def create() -> str:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                # Whoever can run this command can read the database: an operator.
                operator = Principal("operator", None, None)
                _, token = await create_api_key(
                    session, principal=operator, tenant_id=tenant, name=name
                )
                return token
        finally:
            await engine.dispose()

    try:
        typer.echo(asyncio.run(create()))
    except HeraldError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _dev_operator_key(settings: Settings) -> str:
    if settings.operator_key is not None:
        return settings.operator_key.get_secret_value()
    stored = STATE_DIR / "operator_key"
    if stored.exists():
        return stored.read_text().strip()
    STATE_DIR.mkdir(exist_ok=True)
    key = "hrk_dev_" + secrets.token_urlsafe(24)
    stored.write_text(key + "\n")
    stored.chmod(0o600)
    return key


@cli.command()
def dev(
    embedded: Annotated[
        bool, typer.Option(help="always start project-local PostgreSQL and Redis")
    ] = False,
) -> None:
    """Run migrations, the API and a worker together (``make run``); Ctrl-C stops all."""
    from app.db import migrate as run_migrations
    from app.embedded import resolve_services

    started_at = time.monotonic()
    settings = Settings()
    _logging(settings)
    operator_key = _dev_operator_key(settings)
    with resolve_services(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        state_dir=STATE_DIR.resolve(),
        force_embedded=embedded,
    ) as services:
        for description in services.started:
            typer.echo(f"started {description}", err=True)
        asyncio.run(run_migrations(services.database_url))
        environment = {
            **os.environ,
            "HERALD_DATABASE_URL": services.database_url,
            "HERALD_REDIS_URL": services.redis_url,
            "HERALD_OPERATOR_KEY": operator_key,
        }
        herald = [sys.executable, "-m", "app.cli"]
        children = [
            subprocess.Popen([*herald, "api"], env=environment),
            subprocess.Popen([*herald, "worker"], env=environment),
        ]
        base = f"http://{settings.api_host}:{settings.api_port}"
        typer.echo(
            f"\nHerald {__version__} is starting ({time.monotonic() - started_at:.1f}s so far)\n"
            f"  API        {base}  (docs at {base}/docs)\n"
            f"  operator   {operator_key}\n"
            f"  try        curl -H 'Authorization: Bearer {operator_key}' {base}/v1/tenants\n"
        )
        _supervise(children)


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait until a child exits or we are told to stop; then stop every child."""
    stopping = False

    def request_stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
