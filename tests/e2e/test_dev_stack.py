"""`make run` (= `herald dev`): migrations, API and worker up from one command, down on Ctrl-C."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from app.settings import Settings
from tests.e2e.conftest import herald_environment, wait_until_ready
from tests.integration.conftest import free_port

STARTUP_BUDGET_S = 60


def worker_heartbeat(redis_url: str, queue_name: str, *, timeout: float) -> bytes:
    """arq workers record a health line in Redis as soon as they poll."""
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = client.get(f"{queue_name}:health-check")
            if isinstance(line, bytes):
                return line
            time.sleep(0.1)
    finally:
        client.close()
    raise TimeoutError("no worker reported to Redis")


def interrupt(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_dev_runs_api_and_worker_and_stops_cleanly(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    queue = f"{settings.queue_name}:dev"
    environment = herald_environment(settings, HERALD_API_PORT=str(port), HERALD_QUEUE_NAME=queue)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dev"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=STARTUP_BUDGET_S)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        remaining = STARTUP_BUDGET_S - (time.monotonic() - started)
        assert b"j_complete" in worker_heartbeat(
            settings.effective_redis_url, queue, timeout=remaining
        )
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
    assert port_closed(port)


def test_dev_starts_its_own_servers_when_asked(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    environment |= {"HERALD_API_PORT": str(port), "HERALD_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dev", "--embedded"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=STARTUP_BUDGET_S)
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
    server_ports = [int(found) for found in re.findall(r"started .* on 127\.0\.0\.1:(\d+)", output)]
    assert len(server_ports) == 2, output
    assert all(port_closed(server_port) for server_port in server_ports)
    assert "operator" in output
