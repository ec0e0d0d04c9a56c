"""Herald as its users run it: `herald api` / `herald worker` processes on free ports."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.integration.conftest import free_port


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
        }
    )
    environment.update(overrides)
    return environment


def wait_until_ready(url: str, process: "subprocess.Popen[Any]", *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
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
