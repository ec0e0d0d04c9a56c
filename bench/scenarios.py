"""The benchmark's measurements. Each returns a plain dict of figures (JSON-ready).

Every load loop here is bounded twice, by a count and by a time limit, and stops by itself.
Receiver arrival times and client-side times are both ``time.time()`` on this machine.
"""

import asyncio
import contextlib
import json
import logging
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import asyncpg

from app.ids import new_id
from app.signing_secrets import generate_secret
from bench.ceiling import CeilingSpec
from bench.procs import (
    CpuSnapshot,
    cpu_snapshot,
    cpu_usage,
    other_processes,
    pids_named,
    status_kib,
    with_descendants,
)
from bench.stack import BenchError, Stack, finite
from bench.stats import percentile, rate, ratio, summary_ms
from bench.workload import CUSTOM_HEADERS, EVENT_TYPE, event_body, payload
from worker.signing import envelope, request_headers

log = logging.getLogger("bench")

Figures = dict[str, Any]
T = TypeVar("T")


# --- helpers ---------------------------------------------------------------------------


def cpu_groups(stack: Stack) -> dict[str, list[int]]:
    return {
        "workers": [w.pid for w in stack.workers],
        "api": with_descendants(stack.api.pid) if stack.api else [],
        "receiver": [stack.receiver.pid] if stack.receiver else [],
        "postgres": pids_named("postgres"),
        "redis": pids_named("redis-server", "valkey-server"),
        "bench": [os.getpid()],
    }


async def snapshot(stack: Stack) -> CpuSnapshot:
    groups = cpu_groups(stack)
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        # This database's backends and the server's own processes, not other databases'.
        rows = await stack.pool.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() OR backend_type <> 'client backend'"
        )
        groups["postgres"] = [int(row["pid"]) for row in rows]
    return cpu_snapshot(groups)


PG_COUNTERS = ("xact_commit", "xact_rollback", "sessions", "tup_inserted", "tup_updated")


async def pg_counters(stack: Stack) -> dict[str, int]:
    """This database's pg_stat_database counters (flushed by backends about once a second)."""
    text = await stack.pool.fetchval(
        "SELECT to_jsonb(d) FROM pg_stat_database AS d WHERE datname = current_database()"
    )
    document = json.loads(text) if text else {}
    return {key: int(document[key]) for key in PG_COUNTERS if document.get(key) is not None}


def per_unit(before: dict[str, int], after: dict[str, int], units: int) -> dict[str, float]:
    return {
        key: round((after[key] - before.get(key, 0)) / max(units, 1), 3)
        for key in after
        if key in before
    }


class RssSampler:
    """Samples VmRSS of the workers every ``interval`` seconds until stopped."""

    def __init__(self, stack: Stack, interval: float = 0.25) -> None:
        self._stack = stack
        self._interval = interval
        self._started = time.monotonic()
        self.samples: list[tuple[float, list[int]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            rss = [status_kib(w.pid, "VmRSS") or 0 for w in self._stack.workers]
            self.samples.append((round(time.monotonic() - self._started, 2), rss))
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class Backlog:
    tenant_id: str
    endpoints: dict[str, str]  # receiver path -> endpoint id
    counts: dict[str, int]  # receiver path -> deliveries
    event_id: str
    event_created_at: datetime
    payload_text: str  # the stored payload as the worker reads it (jsonb::text)
    insert_s: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def spread(prefix: str, total: int, endpoints: int) -> dict[str, int]:
    """``total`` deliveries spread evenly over ``endpoints`` receiver paths ``{prefix}/{k}``
    (k from 1; the first ``total % endpoints`` paths get one more)."""
    base, extra = divmod(total, endpoints)
    return {f"{prefix}/{k}": base + (1 if k <= extra else 0) for k in range(1, endpoints + 1)}


async def _arrival_times(stack: Stack, paths: list[str]) -> dict[str, list[float]]:
    """Receiver arrival times per path (one request per path: only these paths' arrivals)."""
    return {path: [t for _, t in await stack.arrivals(path)] for path in paths}


def _duplicates(times: dict[str, list[float]], counts: dict[str, int]) -> int:
    """Requests beyond each path's deliveries (every delivery of the backlog shares one event,
    hence one webhook-id, so extra requests are counted per path, not matched by id)."""
    return sum(max(len(times[path]) - counts[path], 0) for path in times)


async def prepare_backlog(stack: Stack, name: str, counts: dict[str, int]) -> Backlog:
    """A tenant, one endpoint per receiver path, one event, and ``counts`` due deliveries per
    path inserted with COPY (workers should be stopped). Paths are interleaved evenly, in a
    fixed order: each row is due a microsecond after the previous one."""
    tenant_id = await stack.create_tenant(name)
    endpoints = {
        path: await stack.create_endpoint(tenant_id, path, headers=CUSTOM_HEADERS)
        for path in counts
    }
    event_id = new_id("evt")
    started = time.perf_counter()
    order = sorted(((i + 0.5) / n, path) for path, n in counts.items() for i in range(n) if n > 0)
    due = datetime.now(UTC) - timedelta(seconds=60)
    records = [
        (
            new_id("dlv"),
            tenant_id,
            event_id,
            endpoints[path],
            EVENT_TYPE,
            due + timedelta(microseconds=position),
        )
        for position, (_, path) in enumerate(order)
    ]
    async with stack.pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "INSERT INTO events (id, tenant_id, type, payload, delivery_count)"
            " VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING created_at, payload::text AS payload",
            event_id,
            tenant_id,
            EVENT_TYPE,
            json.dumps(payload()),
            len(records),
        )
        await connection.copy_records_to_table(
            "deliveries",
            records=records,
            columns=["id", "tenant_id", "event_id", "endpoint_id", "event_type", "next_attempt_at"],
        )
    await stack.pool.execute("ANALYZE deliveries")
    return Backlog(
        tenant_id,
        endpoints,
        dict(counts),
        event_id,
        row["created_at"],
        str(row["payload"]),
        round(time.perf_counter() - started, 3),
    )


async def _start_workers_and_wait(
    stack: Stack, workers: int, paths: list[str], target: int, *, within_s: float
) -> tuple[int, CpuSnapshot, CpuSnapshot, float]:
    """Start workers, wait for the first arrival (steady-state CPU is measured from there),
    then for ``target`` arrivals on ``paths``; returns (arrived, cpu before/after, startup)."""
    started = time.monotonic()
    stack.start_workers(workers)
    first = await stack.wait_for_arrivals(paths, 1, within_s=min(within_s, 60), stall=60)
    if first == 0:
        raise BenchError("no delivery arrived within 60 s of starting the workers")
    startup = time.monotonic() - started
    before = await snapshot(stack)
    arrived = await stack.wait_for_arrivals(
        paths, target, within_s=max(within_s - startup, 1), stall=20
    )
    after = await snapshot(stack)
    return arrived, before, after, startup


# --- 0. the ceiling --------------------------------------------------------------------


async def ceiling(
    stack: Stack,
    backlog: Backlog | None,
    *,
    concurrency: int,
    count: int,
    seconds: float,
    path: str = "/ceiling",
) -> Figures:
    """The bare aiohttp loop, in its own process, sending the body and headers a worker
    would send for the backlog's event (same bytes, a valid signature) to the receiver.
    Without a backlog (its insert failed) it makes up an equivalent event."""
    if backlog is not None:
        event_id, created_at, payload_text = (
            backlog.event_id,
            backlog.event_created_at,
            backlog.payload_text,
        )
        secret = await stack.endpoint_secret(next(iter(backlog.endpoints.values())))
    else:
        event_id, created_at = new_id("evt"), datetime.now(UTC)
        payload_text = json.dumps(payload(), separators=(", ", ": "))  # as jsonb prints it
        secret = generate_secret()
    body = envelope(
        event_id=event_id,
        event_type=EVENT_TYPE,
        created_at=created_at,
        payload_json=payload_text,
    )
    headers = request_headers(
        custom=CUSTOM_HEADERS,
        secrets=(secret,),
        message_id=event_id,
        timestamp=int(time.time()),
        body=body,
    )
    spec = CeilingSpec(f"{stack.receiver_url}{path}", body, headers, concurrency, count, seconds)
    child = stack.children.start(
        "ceiling",
        [sys.executable, "-m", "bench.ceiling"],
        env=dict(os.environ),
        stdin_pipe=True,
        stdout_pipe=True,
    )
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = await snapshot(stack)
    try:
        out, _ = await asyncio.to_thread(
            child.process.communicate, spec.to_json().encode(), seconds + 60
        )
    finally:
        stack.children.stop(child, timeout=5)
    after = await snapshot(stack)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.process.returncode != 0:
        raise BenchError(f"the ceiling loop failed:\n{child.log_tail()}")
    client = json.loads(out)
    times = [t for _, t in await stack.arrivals(path)]
    client_cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    usage = cpu_usage(before, after)
    wall = after.at - before.at
    usage["ceiling_client"] = round(client_cpu / wall, 3)
    usage["others_cores"] = round(max(usage["others_cores"] - client_cpu / wall, 0.0), 3)
    receiver_cpu_s = usage["receiver"] * wall
    received = len(times)
    return {
        "requests_per_s": finite(rate(received, times)),
        "client_requests_per_s": round(client["client_rps"], 1),
        "sent": client["sent"],
        "ok": client["ok"],
        "errors": client["errors"],
        "received": received,
        "concurrency": concurrency,
        "body_bytes": len(body),
        "header_names": sorted(headers),
        "client_cpu_us_per_request": round(client_cpu / max(client["sent"], 1) * 1e6, 1),
        "receiver_cpu_us_per_request": round(receiver_cpu_s / max(received, 1) * 1e6, 1),
        "receiver_capacity_per_s": round(received / receiver_cpu_s) if receiver_cpu_s else None,
        "cpu_cores": usage,
        "other_processes": other_processes(before, after),
    }


# --- 1 and 6. backlog drain ------------------------------------------------------------


async def backlog_drain(
    stack: Stack, backlog: Backlog, *, workers: int, within_s: float, ceiling_rate: float | None
) -> Figures:
    """Scenario 1 (and 6): start the workers on a backlog and time the drain at the receiver.
    The backlog may span several endpoints (paths): the throughput is that of all their
    arrivals together, first to last."""
    paths = list(backlog.endpoints)
    endpoint_ids = list(backlog.endpoints.values())
    sampler = RssSampler(stack)
    counters_before = await pg_counters(stack)
    sampler.start()
    try:
        arrived, before, after, startup = await _start_workers_and_wait(
            stack, workers, paths, backlog.total, within_s=within_s
        )
        statuses = await stack.wait_for_succeeded(endpoint_ids, backlog.total)
        peaks = {w.name: status_kib(w.pid, "VmHWM") for w in stack.workers}
    finally:
        await sampler.stop()
    await asyncio.sleep(2)  # backends report their counters about once a second
    counters_after = await pg_counters(stack)
    by_path = await _arrival_times(stack, paths)
    times = [t for path in paths for t in by_path[path]]
    attempts = await stack.attempt_count(endpoint_ids)
    received = await stack.receiver_stats(arrivals=False)
    body_bytes = sum(received["bytes_by_path"].get(p, 0) for p in paths) / max(
        sum(received["by_path"].get(p, 0) for p in paths), 1
    )
    throughput = rate(len(times), times)
    usage = cpu_usage(before, after)
    span = after.at - before.at
    return {
        "deliveries": backlog.total,
        "endpoints": len(paths),
        "arrived": arrived,
        "duplicates": _duplicates(by_path, backlog.counts),
        "deliveries_per_s": finite(throughput),
        "ratio_to_ceiling": finite(ratio(throughput, ceiling_rate or math.nan)),
        "drain_s": round(max(times) - min(times), 3) if times else None,
        "worker_startup_to_first_arrival_s": round(startup, 2),
        "insert_s": backlog.insert_s,
        "statuses": statuses,
        "all_succeeded": statuses.get("succeeded", 0) == backlog.total and len(statuses) == 1,
        "attempts_logged": attempts,
        "mean_body_bytes": round(body_bytes, 1),
        "per_endpoint": [
            {
                "path": path,
                "deliveries": backlog.counts[path],
                "arrived": len(by_path[path]),
                "deliveries_per_s": finite(rate(len(by_path[path]), by_path[path])),
                "last_arrival_s": round(max(by_path[path]) - min(times), 3)
                if by_path[path]
                else None,
            }
            for path in paths
        ],
        "worker_cpu_us_per_delivery": round(usage["workers"] * span / max(arrived, 1) * 1e6, 1),
        "postgres_cpu_us_per_delivery": round(usage["postgres"] * span / max(arrived, 1) * 1e6, 1),
        "postgres_per_delivery": per_unit(counters_before, counters_after, backlog.total),
        "cpu_cores": usage,
        "other_processes": other_processes(before, after),
        "rss": {
            "peak_kib": peaks,
            "samples_kib": sampler.samples,
        },
    }


async def single_endpoint(
    stack: Stack,
    backlog: Backlog,
    *,
    within_s: float,
    backlog_rate: float | None,
    ceiling_rate: float | None,
) -> Figures:
    """Beside scenario 1: a backlog of one endpoint, inserted while the workers already run
    (they find it on their idle poll), timed first to last arrival. What one endpoint gets
    under the per-endpoint in-flight cap, against scenario 1's several endpoints."""
    (path,) = backlog.endpoints
    endpoint_id = backlog.endpoints[path]
    arrived = await stack.wait_for_arrivals([path], backlog.total, within_s=within_s, stall=10)
    times = [t for _, t in await stack.arrivals(path)]
    statuses = await stack.wait_for_succeeded([endpoint_id], backlog.total)
    throughput = rate(len(times), times)
    return {
        "endpoints": 1,
        "deliveries": backlog.total,
        "arrived": arrived,
        "duplicates": max(len(times) - backlog.total, 0),
        "deliveries_per_s": finite(throughput),
        "ratio_to_backlog_throughput": finite(ratio(throughput, backlog_rate or math.nan)),
        "ratio_to_ceiling": finite(ratio(throughput, ceiling_rate or math.nan)),
        "drain_s": round(max(times) - min(times), 3) if times else None,
        "insert_s": backlog.insert_s,
        "statuses": statuses,
        "all_succeeded": statuses.get("succeeded", 0) == backlog.total and len(statuses) == 1,
    }


# --- 5. a slow receiver beside a fast one ------------------------------------------------


def is_slow(path: str) -> bool:
    """The receiver answers paths starting with ``/slow`` after its slow delay."""
    return path.startswith("/slow")


async def slow_neighbour(
    stack: Stack,
    backlog: Backlog,
    *,
    workers: int,
    within_s: float,
    baseline_rate: float | None,
    ceiling_rate: float | None,
) -> Figures:
    """Scenario 5: a fast backlog (shaped as scenario 1's, several endpoints) beside slow
    endpoints; the fast side's throughput, all its endpoints together, against scenario 1's."""
    fast_paths = [p for p in backlog.endpoints if not is_slow(p)]
    slow_paths = [p for p in backlog.endpoints if is_slow(p)]
    arrived, before, after, startup = await _start_workers_and_wait(
        stack, workers, list(backlog.endpoints), backlog.total, within_s=within_s
    )
    by_path = await _arrival_times(stack, list(backlog.endpoints))
    fast = [t for p in fast_paths for t in by_path[p]]
    slow = [t for p in slow_paths for t in by_path[p]]
    statuses = await stack.wait_for_succeeded(list(backlog.endpoints.values()), backlog.total)
    fast_rate = rate(len(fast), fast)
    return {
        "fast_deliveries": sum(backlog.counts[p] for p in fast_paths),
        "slow_deliveries": sum(backlog.counts[p] for p in slow_paths),
        "fast_endpoints": len(fast_paths),
        "slow_endpoints": len(slow_paths),
        "slow_delay_s": 1.0,
        "fast_arrived": len(fast),
        "slow_arrived": len(slow),
        "duplicates": _duplicates(by_path, backlog.counts),
        "fast_deliveries_per_s": finite(fast_rate),
        "ratio_to_backlog_throughput": finite(ratio(fast_rate, baseline_rate or math.nan)),
        "ratio_to_ceiling": finite(ratio(fast_rate, ceiling_rate or math.nan)),
        "fast_drain_s": round(max(fast) - min(fast), 3) if fast else None,
        "slow_drain_s": round(max(slow) - min(slow), 3) if slow else None,
        "statuses": statuses,
        "all_succeeded": statuses.get("succeeded", 0) == backlog.total and len(statuses) == 1,
        "cpu_cores": cpu_usage(before, after),
        "other_processes": other_processes(before, after),
        "worker_startup_to_first_arrival_s": round(startup, 2),
        "arrived": arrived,
    }


# --- 2. ingest -----------------------------------------------------------------------


async def ingest(
    stack: Stack,
    *,
    clients: int,
    count: int,
    seconds: float,
    ceiling_rate: float | None,
) -> Figures:
    """Scenario 2: ``clients`` concurrent closed-loop clients POST /v1/events."""
    path = "/s2"
    tenant_id = await stack.create_tenant("bench ingest")
    endpoint_id = await stack.create_endpoint(tenant_id, path, headers=CUSTOM_HEADERS)
    body = event_body(tenant_id)
    headers = {
        "Authorization": f"Bearer {stack.operator_key}",
        "Content-Type": "application/json",
    }
    url = f"{stack.api_url}/v1/events"
    latencies: list[float] = []
    failures: dict[str, int] = {}
    issued = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def client() -> None:
            nonlocal issued
            while issued < count and time.perf_counter() < deadline:
                issued += 1
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    status = type(error).__name__
                if status == "202":
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures[status] = failures.get(status, 0) + 1

        before = await snapshot(stack)
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        after = await snapshot(stack)
    accepted = len(latencies)
    accepted_rate = accepted / elapsed if elapsed > 0 else math.nan
    delivered = await stack.wait_for_arrivals([path], accepted, within_s=90, stall=15)
    times = [t for _, t in await stack.arrivals(path)]
    statuses = await stack.wait_for_succeeded([endpoint_id], accepted, within_s=10)
    usage = cpu_usage(before, after)
    return {
        "clients": clients,
        "issued": issued,
        "accepted": accepted,
        "failures": failures,
        "elapsed_s": round(elapsed, 3),
        "accepted_per_s": round(accepted_rate, 1),
        "ratio_to_ceiling": finite(ratio(accepted_rate, ceiling_rate or math.nan)),
        "latency": summary_ms(latencies),
        "api_cpu_us_per_event": round(usage["api"] * elapsed / max(accepted, 1) * 1e6, 1),
        "cpu_cores": usage,
        "other_processes": other_processes(before, after),
        "delivered": delivered,
        "delivered_per_s_while_ingesting": finite(rate(len(times), times)),
        "statuses": statuses,
    }


# --- 3. end-to-end latency ------------------------------------------------------------


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    rate_per_s: float,
    total: int,
    on_answer: Callable[[int, float, float, int, str | None], None],
    wait_s: float = 30.0,
) -> float:
    """Send ``total`` requests at fixed intervals without waiting for answers; returns the
    largest lag behind schedule (seconds)."""

    async def fire(index: int) -> None:
        sent = time.time()
        event_id: str | None = None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                text = await response.read()
                answered = time.time()
                status = response.status
                if status == 202:
                    event_id = str(json.loads(text)["id"])
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError):
            answered, status = time.time(), 0
        on_answer(index, sent, answered, status, event_id)

    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    start = loop.time() + 0.05
    lag = 0.0
    for index in range(total):
        target = start + index / rate_per_s
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, loop.time() - target)
        tasks.append(asyncio.create_task(fire(index)))
    _, pending = await asyncio.wait(tasks, timeout=wait_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return lag


async def end_to_end(
    stack: Stack,
    *,
    rate_per_s: float,
    seconds: float,
    warmup_s: float = 2.0,
    drain_s: float = 15.0,
) -> Figures:
    """Scenario 3: events at a steady rate; latency = receiver arrival - 202 received.

    The first ``warmup_s`` seconds of events are sent at the same rate but left out of the
    figures (their ingest latency is reported on its own): an API that just started opens
    its database connections on the first requests, which is a start-up cost, not a
    steady-state one. After the last send, answers and deliveries get ``drain_s`` seconds
    together (plus at most 5 s to see them succeeded in PostgreSQL)."""
    path = "/s3"
    tenant_id = await stack.create_tenant("bench latency")
    endpoint_id = await stack.create_endpoint(tenant_id, path, headers=CUSTOM_HEADERS)
    body = event_body(tenant_id)
    headers = {
        "Authorization": f"Bearer {stack.operator_key}",
        "Content-Type": "application/json",
    }
    warmup = int(rate_per_s * warmup_s)
    total = warmup + int(rate_per_s * seconds)
    answers: dict[int, tuple[float, float, int, str | None]] = {}

    def on_answer(index: int, sent: float, answered: float, status: int, eid: str | None) -> None:
        answers[index] = (sent, answered, status, eid)

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512),
        timeout=aiohttp.ClientTimeout(total=10),
    ) as session:
        before = await snapshot(stack)
        deadline = time.monotonic() + total / rate_per_s + drain_s
        lag = await open_loop(
            session,
            f"{stack.api_url}/v1/events",
            body,
            headers,
            rate_per_s=rate_per_s,
            total=total,
            on_answer=on_answer,
            wait_s=drain_s,
        )
        after = await snapshot(stack)
    accepted = {i: a for i, a in answers.items() if a[2] == 202 and a[3] is not None}
    await stack.wait_for_arrivals(
        [path], len(accepted), within_s=max(deadline - time.monotonic(), 1), stall=5
    )
    first_arrival: dict[str, float] = {}
    received = 0
    for webhook_id, t in await stack.arrivals(path):
        received += 1
        if webhook_id not in first_arrival or t < first_arrival[webhook_id]:
            first_arrival[webhook_id] = t
    measured = [a for i, a in accepted.items() if i >= warmup]
    latencies: list[float] = []
    from_send: list[float] = []
    lost = []
    start = min((sent for sent, _, _, _ in measured), default=0.0)
    # Per second of sending, warm-up included (negative seconds), to see transients.
    windows: dict[int, tuple[list[float], list[float]]] = {}
    for sent, answered, _, event_id in accepted.values():
        window = windows.setdefault(math.floor(sent - start), ([], []))
        window[0].append(answered - sent)
        if event_id in first_arrival:
            window[1].append(first_arrival[event_id] - answered)
    for sent, answered, _, event_id in measured:
        assert event_id is not None
        if event_id in first_arrival:
            latencies.append(first_arrival[event_id] - answered)
            from_send.append(first_arrival[event_id] - sent)
        else:
            lost.append(event_id)
    ingest_latencies = [answered - sent for sent, answered, _, _ in measured]
    warmup_latencies = [a[1] - a[0] for i, a in accepted.items() if i < warmup]
    statuses = await stack.wait_for_succeeded([endpoint_id], len(accepted), within_s=5)
    return {
        "rate_per_s": rate_per_s,
        "seconds": seconds,
        "warmup_events": warmup,
        "sent": total,
        "accepted": len(accepted),
        "failed_requests": total - len(accepted),
        "measured_events": len(measured),
        "received": received,
        "duplicates": received - len(first_arrival),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "latency": summary_ms(latencies),
        "negative_latencies": sum(1 for v in latencies if v < 0),
        "latency_from_send": summary_ms(from_send),
        "by_second": [
            {
                "second": second,
                "ingest_p50_ms": round(percentile(ingest, 50) * 1000, 1),
                "ingest_max_ms": round(max(ingest) * 1000, 1),
                "e2e_p50_ms": finite(round(percentile(e2e, 50) * 1000, 1)),
                "e2e_max_ms": round(max(e2e) * 1000, 1) if e2e else None,
            }
            for second, (ingest, e2e) in sorted(windows.items())
        ],
        "ingest_latency": summary_ms(ingest_latencies),
        "warmup_ingest_latency": summary_ms(warmup_latencies),
        "sender_max_lag_ms": round(lag * 1000, 2),
        "api_cpu_us_per_event": round(
            cpu_usage(before, after)["api"] * (after.at - before.at) / max(total, 1) * 1e6, 1
        ),
        "statuses": statuses,
        "cpu_cores": cpu_usage(before, after),
        "other_processes": other_processes(before, after),
    }


# --- 4. fan-out ----------------------------------------------------------------------


async def fan_out(
    stack: Stack, *, endpoints: int, repetitions: int, within_s: float, ceiling_rate: float | None
) -> Figures:
    """Scenario 4: one event to ``endpoints`` endpoints of one tenant, ``repetitions`` times."""
    path = "/s4"
    tenant_id = await stack.create_tenant("bench fan-out")
    semaphore = asyncio.Semaphore(16)

    async def create() -> str:
        async with semaphore:
            return await stack.create_endpoint(tenant_id, path, headers=CUSTOM_HEADERS)

    created_at = time.perf_counter()
    endpoint_ids = await asyncio.wait_for(
        asyncio.gather(*(create() for _ in range(endpoints))), timeout=120
    )
    create_s = time.perf_counter() - created_at
    runs = []
    for repetition in range(repetitions):
        sent = time.time()
        accepted = await stack.api_call(
            "POST",
            "/v1/events",
            json_body={"tenant_id": tenant_id, "type": EVENT_TYPE, "payload": payload()},
            expect=202,
        )
        answered = time.time()
        event_id = str(accepted["id"])
        await stack.wait_for_arrivals(
            [path], endpoints * (repetition + 1), within_s=within_s, stall=15
        )
        times = [t for wid, t in await stack.arrivals(path) if wid == event_id]
        runs.append(
            {
                "event_id": event_id,
                "deliveries": accepted["deliveries"],
                "accept_ms": round((answered - sent) * 1000, 2),
                "arrived": len(times),
                "first_arrival_after_202_ms": round((min(times) - answered) * 1000, 2)
                if times
                else None,
                "last_arrival_after_202_ms": round((max(times) - answered) * 1000, 2)
                if times
                else None,
                "deliveries_per_s": finite(rate(len(times), times)),
            }
        )
    statuses = await stack.wait_for_succeeded(endpoint_ids, endpoints * repetitions, within_s=15)

    def median(key: str) -> float | None:
        values = [float(r[key]) for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    fan_rate = median("deliveries_per_s")
    return {
        "endpoints": endpoints,
        "repetitions": repetitions,
        "endpoint_creation_s": round(create_s, 2),
        "accept_ms": median("accept_ms"),
        "last_arrival_after_202_ms": median("last_arrival_after_202_ms"),
        "deliveries_per_s": fan_rate,
        "ratio_to_ceiling": finite(ratio(fan_rate or math.nan, ceiling_rate or math.nan)),
        "runs": runs,
        "statuses": statuses,
    }


async def guarded(name: str, errors: dict[str, str], work: Awaitable[T]) -> T | None:
    """Run one scenario; an error is recorded (and shown) rather than ending the benchmark."""
    try:
        return await work
    except Exception as error:  # any failure of one scenario; Ctrl-C still ends the run
        log.error("scenario %s failed: %s", name, error)
        errors[name] = f"{type(error).__name__}: {error}"
        return None
