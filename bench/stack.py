"""The system under test, on 127.0.0.1: receiver, `herald api`, `herald worker` processes.

``Stack`` starts and stops them (through ``Children``), and gives the scenarios what they
need to drive and observe them: an API client, the receiver's record, and SQL.
"""

import asyncio
import json
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from app.db import asyncpg_dsn
from bench.procs import Child, Children

HOST = "127.0.0.1"
HERALD = [sys.executable, "-m", "app.cli"]


class BenchError(RuntimeError):
    """Something in the stack did not behave; the message says what."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    database_url: str  # postgresql+asyncpg://…/herald_bench_…
    redis_url: str
    queue_name: str
    children: Children
    operator_key: str = field(default_factory=lambda: "hrk_bench_" + secrets.token_urlsafe(24))
    api_port: int = field(default_factory=free_port)
    receiver_url: str = ""
    receiver: Child | None = None
    api: Child | None = None
    workers: list[Child] = field(default_factory=list)
    _http: aiohttp.ClientSession | None = None
    _pool: asyncpg.Pool | None = None
    _worker_serial: int = 0

    # --- environment ----------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    def herald_env(self) -> dict[str, str]:
        """The caller's environment (HERALD_* tuning included), plus the bench's own settings."""
        environment = dict(os.environ)
        environment.update(
            {
                "HERALD_DATABASE_URL": self.database_url,
                "HERALD_REDIS_URL": self.redis_url,
                "HERALD_QUEUE_NAME": self.queue_name,
                "HERALD_OPERATOR_KEY": self.operator_key,
                "HERALD_ALLOW_CIDRS": f"{HOST}/32",
                "HERALD_LOG_LEVEL": "WARNING",
                "HERALD_API_HOST": HOST,
                "HERALD_API_PORT": str(self.api_port),
            }
        )
        return environment

    # --- lifecycle ------------------------------------------------------------------

    async def open(self) -> None:
        self._http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.operator_key}"},
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(limit=64),
        )
        self._pool = await asyncpg.create_pool(
            asyncpg_dsn(self.database_url), min_size=1, max_size=4
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._pool is not None:
            await self._pool.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None, "Stack.open() first"
        return self._http

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "Stack.open() first"
        return self._pool

    async def start_receiver(self, *, slow_delay: float = 1.0) -> None:
        child = self.children.start(
            "receiver",
            [sys.executable, "-m", "bench.receiver", "--slow-delay", str(slow_delay)],
            env=dict(os.environ),
            stdout_pipe=True,
        )
        self.receiver = child
        stdout = child.process.stdout
        assert stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout=15)
            port = int(json.loads(line)["port"])
        except BaseException as error:
            # Stopping it also ends the thread blocked on its stdout.
            self.children.stop(child, timeout=5)
            if isinstance(error, TimeoutError | ValueError | KeyError):
                raise BenchError(f"the receiver did not start: {child.log_tail()}") from error
            raise
        self.receiver_url = f"http://{HOST}:{port}"

    async def start_api(self, *, processes: int = 1, within_s: float = 60) -> None:
        argv = [*HERALD, "api", "--workers", str(processes)]
        self.api = self.children.start("api", argv, env=self.herald_env())
        deadline = time.monotonic() + within_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as probe:
            while time.monotonic() < deadline:
                if not self.api.alive():
                    raise BenchError(f"herald api exited:\n{self.api.log_tail()}")
                try:
                    async with probe.get(f"{self.api_url}/readyz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise BenchError(f"herald api not ready within {within_s}s:\n{self.api.log_tail()}")

    def start_workers(self, count: int) -> list[Child]:
        started = []
        for _ in range(count):
            self._worker_serial += 1
            started.append(
                self.children.start(
                    f"worker-{self._worker_serial}", [*HERALD, "worker"], env=self.herald_env()
                )
            )
        self.workers.extend(started)
        return started

    async def stop_workers(self) -> None:
        workers, self.workers = self.workers, []
        await asyncio.to_thread(self.children.stop_many, workers, timeout=30)

    def check_workers(self) -> None:
        for worker in self.workers:
            if not worker.alive():
                raise BenchError(f"{worker.name} exited:\n{worker.log_tail()}")

    # --- the API --------------------------------------------------------------------

    async def api_call(
        self, method: str, path: str, *, json_body: Any = None, expect: int = 200
    ) -> Any:
        async with self.http.request(method, f"{self.api_url}{path}", json=json_body) as response:
            text = await response.text()
            if response.status != expect:
                raise BenchError(f"{method} {path} answered {response.status}: {text[:500]}")
            return json.loads(text) if text else None

    async def create_tenant(self, name: str) -> str:
        tenant = await self.api_call("POST", "/v1/tenants", json_body={"name": name}, expect=201)
        return str(tenant["id"])

    async def create_endpoint(
        self, tenant_id: str, path: str, *, headers: Mapping[str, str] | None = None
    ) -> str:
        body = {
            "tenant_id": tenant_id,
            "url": f"{self.receiver_url}{path}",
            "headers": dict(headers or {}),
        }
        endpoint = await self.api_call("POST", "/v1/endpoints", json_body=body, expect=201)
        return str(endpoint["id"])

    async def endpoint_secret(self, endpoint_id: str) -> str:
        secret = await self.api_call("GET", f"/v1/endpoints/{endpoint_id}/secret")
        return str(secret["secret"])

    # --- the receiver ---------------------------------------------------------------

    async def receiver_stats(self, path: str | None = None, *, arrivals: bool) -> dict[str, Any]:
        params = {"arrivals": "1" if arrivals else "0"}
        if path is not None:
            params["path"] = path
        async with self.http.get(f"{self.receiver_url}/_stats", params=params) as response:
            stats: dict[str, Any] = await response.json()
            return stats

    async def arrivals(self, path: str) -> list[tuple[str, float]]:
        stats = await self.receiver_stats(path, arrivals=True)
        return [(str(webhook_id), float(t)) for webhook_id, t in stats["arrivals"]]

    async def received(self, path: str) -> int:
        stats = await self.receiver_stats(path, arrivals=False)
        return int(stats["by_path"].get(path, 0))

    async def reset_receiver(self) -> None:
        async with self.http.post(f"{self.receiver_url}/_reset") as response:
            await response.read()

    async def wait_for_arrivals(
        self, paths: Iterable[str], target: int, *, within_s: float, stall: float = 20.0
    ) -> int:
        """Until ``target`` requests reached ``paths`` together, ``within_s`` passed, or no
        new request came for ``stall`` seconds; returns how many arrived."""
        paths = list(paths)
        deadline = time.monotonic() + within_s
        last_count, last_progress = -1, time.monotonic()
        while True:
            stats = await self.receiver_stats(arrivals=False)
            count = sum(int(stats["by_path"].get(p, 0)) for p in paths)
            now = time.monotonic()
            if count != last_count:
                last_count, last_progress = count, now
            if count >= target or now > deadline or now - last_progress > stall:
                return count
            self.check_workers()
            await asyncio.sleep(0.05)

    # --- PostgreSQL -----------------------------------------------------------------

    async def status_counts(self, endpoint_ids: list[str]) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT status, count(*) AS n FROM deliveries WHERE endpoint_id = ANY($1::text[])"
            " GROUP BY status",
            endpoint_ids,
        )
        return {str(row["status"]): int(row["n"]) for row in rows}

    async def wait_for_succeeded(
        self, endpoint_ids: list[str], expected: int, *, within_s: float = 20.0
    ) -> dict[str, int]:
        """Poll until ``expected`` deliveries of these endpoints are ``succeeded`` (bounded)."""
        deadline = time.monotonic() + within_s
        while True:
            counts = await self.status_counts(endpoint_ids)
            if counts.get("succeeded", 0) >= expected or time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.1)

    async def attempt_count(self, endpoint_ids: list[str]) -> int:
        count = await self.pool.fetchval(
            "SELECT count(*) FROM attempts WHERE endpoint_id = ANY($1::text[])", endpoint_ids
        )
        return int(count)


def finite(value: float) -> float | None:
    """JSON has no NaN: None stands for 'not measured'."""
    return None if math.isnan(value) or math.isinf(value) else value
