"""``python -m bench.run [--quick] [--workers N]``: Herald against this machine's ceiling.

Starts everything on 127.0.0.1 (PostgreSQL and Redis via ``app.embedded.resolve_services``,
a fresh ``herald_bench_<timestamp>`` database, a receiver, ``herald api``, ``herald worker``),
measures the bare-aiohttp ceiling and the scenarios of PRODUCT.md §9, prints a table, writes
``bench/results/<timestamp>.json`` and ``.png``, and removes every process and the database
it made, also on Ctrl-C and on errors. Worker tuning comes from the caller's ``HERALD_*``
environment (e.g. ``HERALD_WORKER_CONCURRENCY``), as for ``herald worker`` itself.

``--quick`` (≤ 60 s) runs a small backlog (1) and the latency scenario (3) only and ends its
output with exactly two lines: ``throughput_ratio=<x>`` and ``e2e_p99_ms=<y>``.
Exit status: 0 when every scenario ran and nothing was lost or left undelivered, 1 otherwise,
130 when interrupted. Targets missed do not change the exit status; the table shows them.
"""

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url

from app.db import drop_database, migrate
from app.embedded import resolve_services
from app.settings import Settings
from bench import report, scenarios
from bench.procs import Children
from bench.stack import Stack

log = logging.getLogger("bench")

STATE_DIR = Path(".herald/bench")
E2E_WARMUP_S = 2.0
# Scenario 1's backlog (and scenario 5's fast side) is spread evenly over this many endpoints
# of one tenant: Herald caps each endpoint's requests in flight
# (HERALD_ENDPOINT_MAX_IN_FLIGHT), so one endpoint alone would measure that cap, not the
# platform's throughput. One endpoint's share, alone, is measured beside it for comparison.
BACKLOG_ENDPOINTS = 10
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "herald",
    "aiohttp",
    "asyncpg",
    "fastapi",
    "uvicorn",
    "arq",
    "uvloop",
    "sqlalchemy",
    "redis",
    "pydantic",
)


@dataclass(frozen=True)
class Plan:
    """Sizes and time limits of one run."""

    mode: str
    workers: int
    api_workers: int
    rounds: int
    ceiling_count: int
    ceiling_seconds: float
    backlog: int
    backlog_endpoints: int
    backlog_timeout: float
    slow_fast: int
    slow_slow: int
    slow_timeout: float
    ingest_clients: int
    ingest_count: int
    ingest_seconds: float
    e2e_rate: float
    e2e_seconds: float
    fan_out_endpoints: int
    fan_out_repetitions: int
    budget_s: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> "Plan":
        quick: bool = args.quick
        return cls(
            mode="quick" if quick else "full",
            workers=args.workers,
            api_workers=args.api_workers,
            rounds=args.rounds or (1 if quick else 3),
            ceiling_count=10_000 if quick else 30_000,
            ceiling_seconds=5 if quick else 15,
            backlog=args.backlog or (10_000 if quick else 50_000),
            backlog_endpoints=BACKLOG_ENDPOINTS,
            backlog_timeout=20 if quick else 150,
            slow_fast=0 if quick else 20_000,
            # The slow endpoint drains at its in-flight cap (20 per second at 1 s each): enough
            # to outlast the fast drain, not so many that the scenario waits minutes for them.
            slow_slow=0 if quick else 400,
            slow_timeout=120,
            ingest_clients=64,
            ingest_count=0 if quick else 10_000,
            ingest_seconds=20,
            e2e_rate=200,
            e2e_seconds=5 if quick else 10,
            fan_out_endpoints=0 if quick else 1_000,
            fan_out_repetitions=3,
            budget_s=55 if quick else 570,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="Benchmark Herald against a bare-client ceiling."
    )
    parser.add_argument("--quick", action="store_true", help="scenarios 1 and 3, small, ≤ 60 s")
    parser.add_argument("--workers", type=int, default=1, help="herald worker processes")
    parser.add_argument(
        "--api-workers", type=int, default=1, help="processes of herald api (uvicorn workers)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="ceiling + scenario 1 rounds, median reported (default: 3, quick: 1)",
    )
    parser.add_argument("--backlog", type=int, default=0, help="override scenario 1's size")
    parser.add_argument(
        "--redis-db", type=int, default=15, help="Redis database for the bench's queue"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="where results go")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.api_workers < 1:
        parser.error("--workers and --api-workers must be at least 1")
    return args


# --- facts about the machine -----------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def _git() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{'-dirty' if dirty else ''}" if head else None


def _package(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


async def _redis_version(redis_url: str) -> str | None:
    parts = urlsplit(redis_url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379), 2
        )
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        header = await asyncio.wait_for(reader.readline(), 2)
        if not header.startswith(b"$"):
            return None
        text = (await asyncio.wait_for(reader.readexactly(int(header[1:]) + 2), 2)).decode()
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        found[key] = value.strip()
    if "valkey_version" in found:
        return f"valkey {found['valkey_version']}"
    return found.get("redis_version")


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mib": _memory_mib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: _package(name) for name in PACKAGES},
        "git": _git(),
        "loadavg_start": list(os.getloadavg()),
    }


def settings_info(settings: Settings, plan: Plan, stack: Stack, redis_db: str) -> dict[str, Any]:
    return {
        "workers": plan.workers,
        "api_workers": plan.api_workers,
        "worker_concurrency": settings.worker_concurrency,
        "worker_claim_batch": settings.worker_claim_batch,
        "endpoint_max_in_flight": settings.endpoint_max_in_flight,
        "worker_poll_delay_s": settings.worker_poll_delay.total_seconds(),
        "worker_idle_poll_s": settings.worker_idle_poll.total_seconds(),
        "worker_lease_s": settings.worker_lease.total_seconds(),
        "request_timeout_s": settings.request_timeout.total_seconds(),
        "db_pool_size": settings.db_pool_size,
        "queue_name": stack.queue_name,
        "redis_db": redis_db,
        "database": make_url(stack.database_url).database,
        "herald_env_overrides": sorted(
            key
            for key in os.environ
            if key.startswith("HERALD_") and key not in ("HERALD_DATABASE_URL", "HERALD_REDIS_URL")
        ),
        "plan": asdict(plan),
    }


# --- the run ---------------------------------------------------------------------------


class Clock:
    def __init__(self, budget_s: float) -> None:
        self.started = time.monotonic()
        self.budget_s = budget_s

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed


async def bench(
    plan: Plan,
    settings: Settings,
    stack: Stack,
    timestamp: str,
    redis_db: str,
) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    clock = Clock(plan.budget_s)
    errors: dict[str, str] = {}
    figures: dict[str, Any] = {}
    results: dict[str, Any] = {
        "timestamp": timestamp,
        "mode": plan.mode,
        "machine": machine_info(),
        "settings": settings_info(settings, plan, stack, redis_db),
        "scenarios": figures,
        "errors": errors,
    }

    def step(message: str) -> None:
        log.info("[%5.1fs] %s", clock.elapsed, message)

    def affordable(name: str, needs_s: float) -> bool:
        if clock.left() >= needs_s:
            return True
        errors[name] = f"skipped: {clock.left():.0f}s of the time budget left, needs {needs_s:.0f}"
        return False

    step(f"database {make_url(stack.database_url).database}: create and migrate")
    await migrate(stack.database_url)
    step("starting the receiver and herald api")
    await stack.start_receiver()
    await stack.start_api(processes=plan.api_workers)
    await stack.open()
    try:
        results["machine"]["postgresql"] = await stack.pool.fetchval("SHOW server_version")
        results["machine"]["redis"] = await _redis_version(stack.redis_url)
        concurrency = settings.worker_concurrency

        # The ceiling and scenario 1 are measured in rounds, back to back, so each ratio
        # compares figures taken under the same conditions; the median round is reported.
        rounds: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for number in range(1, plan.rounds + 1):
            if number > 1 and not affordable(f"round_{number}", 60):
                break
            label = f"round {number}/{plan.rounds}: " if plan.rounds > 1 else ""
            if stack.workers:
                await stack.stop_workers()
            step(
                f"{label}inserting a backlog of {plan.backlog:,} deliveries over"
                f" {plan.backlog_endpoints} endpoints (workers stopped)"
            )
            prepared = await scenarios.guarded(
                "backlog_insert",
                errors,
                scenarios.prepare_backlog(
                    stack,
                    f"bench backlog {number}",
                    scenarios.spread(f"/s1/{number}", plan.backlog, plan.backlog_endpoints),
                ),
            )
            step(
                f"{label}ceiling: bare aiohttp, {concurrency} in flight,"
                f" {plan.ceiling_count:,} requests or {plan.ceiling_seconds:.0f}s"
            )
            ceiling = await scenarios.guarded(
                "ceiling",
                errors,
                scenarios.ceiling(
                    stack,
                    prepared,
                    concurrency=concurrency,
                    count=plan.ceiling_count,
                    seconds=plan.ceiling_seconds,
                    path=f"/ceiling/{number}",
                ),
            )
            if ceiling is None:
                break
            step(f"{label}ceiling: {_fmt(ceiling['requests_per_s'])} req/s")
            drained = None
            if prepared is not None:
                step(f"{label}starting {plan.workers} worker(s), draining the backlog")
                drained = await scenarios.guarded(
                    "backlog",
                    errors,
                    scenarios.backlog_drain(
                        stack,
                        prepared,
                        workers=plan.workers,
                        within_s=min(plan.backlog_timeout, max(clock.left() - 15, 5)),
                        ceiling_rate=ceiling["requests_per_s"],
                    ),
                )
                if drained:
                    step(
                        f"{label}{_fmt(drained['deliveries_per_s'])} deliveries/s"
                        f" ({_fmt(drained['ratio_to_ceiling'], 2)}x ceiling)"
                    )
            rounds.append((ceiling, drained))
            if drained is None:
                break
        figures["ceiling"], figures["backlog"] = _median_round(rounds)
        ceiling_rate = (figures.get("ceiling") or {}).get("requests_per_s")
        backlog_rate = (figures.get("backlog") or {}).get("deliveries_per_s")

        # One endpoint's share of the backlog, alone, with the workers still running: what
        # the per-endpoint cap allows one endpoint (a few seconds, once per run).
        single = max(plan.backlog // plan.backlog_endpoints, 1)
        single_needs = E2E_WARMUP_S + plan.e2e_seconds + 8 + 10 + single / 500
        if figures["backlog"] and stack.workers and clock.left() >= single_needs:
            step(f"backlog of {single:,} deliveries on one endpoint (workers running)")
            alone = await scenarios.guarded(
                "backlog_single_insert",
                errors,
                scenarios.prepare_backlog(stack, "bench backlog single", {"/s1/single": single}),
            )
            if alone is not None:
                figures["backlog"]["single_endpoint"] = await scenarios.guarded(
                    "backlog_single",
                    errors,
                    scenarios.single_endpoint(
                        stack,
                        alone,
                        within_s=min(30, max(clock.left() - 15, 5)),
                        backlog_rate=backlog_rate,
                        ceiling_rate=ceiling_rate,
                    ),
                )
                one = figures["backlog"]["single_endpoint"]
                if one:
                    step(
                        f"one endpoint: {_fmt(one['deliveries_per_s'])} deliveries/s"
                        f" ({_fmt(one['ratio_to_backlog_throughput'], 2)}x"
                        f" {plan.backlog_endpoints} endpoints)"
                    )
        elif figures["backlog"]:
            step("one-endpoint comparison skipped: not enough of the time budget left")

        if not stack.workers:
            stack.start_workers(plan.workers)
            await asyncio.sleep(2)  # let them connect before latency is measured

        if affordable("e2e", E2E_WARMUP_S + plan.e2e_seconds + 8):
            step(f"scenario 3: {plan.e2e_rate:.0f} events/s for {plan.e2e_seconds:.0f}s")
            figures["e2e"] = await scenarios.guarded(
                "e2e",
                errors,
                scenarios.end_to_end(
                    stack,
                    rate_per_s=plan.e2e_rate,
                    seconds=plan.e2e_seconds,
                    warmup_s=E2E_WARMUP_S,
                    drain_s=max(3, min(15, clock.left() - E2E_WARMUP_S - plan.e2e_seconds - 5)),
                ),
            )

        if plan.slow_fast and affordable("slow", 60):
            step(
                f"scenario 5: stopping workers, inserting a fast backlog over"
                f" {plan.backlog_endpoints} endpoints + one slow endpoint"
            )
            await stack.stop_workers()
            counts = {
                **scenarios.spread("/s5", plan.slow_fast, plan.backlog_endpoints),
                "/slow/s5": plan.slow_slow,
            }
            slow_backlog = await scenarios.guarded(
                "slow_insert", errors, scenarios.prepare_backlog(stack, "bench slow", counts)
            )
            if slow_backlog:
                step("scenario 5: starting workers")
                figures["slow"] = await scenarios.guarded(
                    "slow",
                    errors,
                    scenarios.slow_neighbour(
                        stack,
                        slow_backlog,
                        workers=plan.workers,
                        within_s=min(plan.slow_timeout, max(clock.left() - 60, 10)),
                        baseline_rate=backlog_rate,
                        ceiling_rate=ceiling_rate,
                    ),
                )

        if not stack.workers:
            stack.start_workers(plan.workers)
            await asyncio.sleep(2)  # let them connect before ingest is measured

        if plan.ingest_count and affordable("ingest", plan.ingest_seconds + 30):
            step(
                f"scenario 2: ingest, {plan.ingest_clients} clients,"
                f" {plan.ingest_count:,} events or {plan.ingest_seconds:.0f}s"
            )
            figures["ingest"] = await scenarios.guarded(
                "ingest",
                errors,
                scenarios.ingest(
                    stack,
                    clients=plan.ingest_clients,
                    count=plan.ingest_count,
                    seconds=plan.ingest_seconds,
                    ceiling_rate=ceiling_rate,
                ),
            )

        if plan.fan_out_endpoints and affordable("fan_out", 40):
            step(f"scenario 4: fan-out to {plan.fan_out_endpoints:,} endpoints")
            figures["fan_out"] = await scenarios.guarded(
                "fan_out",
                errors,
                scenarios.fan_out(
                    stack,
                    endpoints=plan.fan_out_endpoints,
                    repetitions=plan.fan_out_repetitions,
                    within_s=60,
                    ceiling_rate=ceiling_rate,
                ),
            )
    finally:
        await stack.close()
    results["herald_log_warnings"] = _log_warnings(stack.children.log_dir)
    results["machine"]["loadavg_end"] = list(os.getloadavg())
    results["elapsed_s"] = round(clock.elapsed, 1)
    step("done")
    return results


_LOG_LINE = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL)\s+(\S+): ([^:(]{0,70})")


def _log_warnings(log_dir: Path) -> dict[str, dict[str, int]]:
    """Warnings and errors the Herald processes logged, counted by kind, per process."""
    found: dict[str, dict[str, int]] = {}
    for path in sorted(log_dir.glob("*.log")):
        counts: dict[str, int] = {}
        with contextlib.suppress(OSError), path.open(errors="replace") as lines:
            for line in lines:
                if match := _LOG_LINE.match(line):
                    key = f"{match[1]} {match[2]}: {match[3].strip()}"
                    counts[key] = counts.get(key, 0) + 1
        if counts:
            found[path.stem] = counts
    return found


def _median_round(
    rounds: list[tuple[dict[str, Any], dict[str, Any] | None]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The round with the median ratio, its rates replaced by the medians over all rounds."""
    if not rounds:
        return None, None
    ceilings = [c["requests_per_s"] for c, _ in rounds if c.get("requests_per_s")]
    complete = [(c, d) for c, d in rounds if d and d.get("ratio_to_ceiling") is not None]
    ceiling = dict(rounds[0][0])
    if ceilings:
        ceiling["requests_per_s"] = statistics.median(ceilings)
    ceiling["rounds_requests_per_s"] = [round(v, 1) for v in ceilings]
    if not complete:
        return ceiling, rounds[-1][1]
    ranked = sorted(complete, key=lambda pair: float((pair[1] or {})["ratio_to_ceiling"]))
    middle_ceiling, middle = ranked[(len(ranked) - 1) // 2]
    backlog = dict(middle)
    backlog["deliveries_per_s"] = statistics.median(d["deliveries_per_s"] for _, d in complete)
    backlog["ratio_to_ceiling"] = statistics.median(d["ratio_to_ceiling"] for _, d in complete)
    backlog["rounds"] = [
        {
            "ceiling_requests_per_s": round(c["requests_per_s"], 1),
            "deliveries_per_s": round(d["deliveries_per_s"], 1),
            "ratio_to_ceiling": round(d["ratio_to_ceiling"], 3),
            "all_succeeded": d["all_succeeded"],
        }
        for c, d in complete
    ]
    # Correctness must hold in every round, not just the median one.
    backlog["all_succeeded"] = all(d["all_succeeded"] for _, d in complete)
    backlog["duplicates"] = sum(d["duplicates"] for _, d in complete)
    ceiling["median_round_requests_per_s"] = middle_ceiling["requests_per_s"]
    return ceiling, backlog


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _failed(results: dict[str, Any]) -> bool:
    if results["errors"]:
        return True
    s = results["scenarios"]
    checks = [
        (s.get("backlog") or {}).get("all_succeeded", True),
        ((s.get("backlog") or {}).get("single_endpoint") or {}).get("all_succeeded", True),
        (s.get("slow") or {}).get("all_succeeded", True),
        (s.get("e2e") or {}).get("lost", 0) == 0,
    ]
    return not all(checks)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.of(args)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    log.setLevel(logging.INFO)
    try:
        settings = Settings()
    except ValidationError as error:
        log.error("the HERALD_* settings are not valid:\n%s", error)
        return 2
    now = datetime.now(UTC)
    timestamp = now.strftime("%Y%m%dT%H%M%SZ")
    children = Children(STATE_DIR.resolve() / "logs" / timestamp)
    results: dict[str, Any] | None = None
    interrupted = False
    with resolve_services(
        database_url=os.environ.get("HERALD_DATABASE_URL") or None,
        redis_url=os.environ.get("HERALD_REDIS_URL") or None,
        state_dir=STATE_DIR,
    ) as services:
        for description in services.started:
            log.info("started %s", description)
        database = f"herald_bench_{now.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
        database_url = make_url(services.database_url).set(database=database)
        redis_url, redis_db = services.redis_url, "as given"
        if not os.environ.get("HERALD_REDIS_URL"):
            redis_db = str(args.redis_db)
            redis_url = services.redis_url.rsplit("/", 1)[0] + "/" + redis_db
        stack = Stack(
            database_url=database_url.render_as_string(hide_password=False),
            redis_url=redis_url,
            queue_name=f"herald:bench:{timestamp}:{os.getpid()}",
            children=children,
        )
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(bench(plan, settings, stack, timestamp, redis_db))
        except (KeyboardInterrupt, asyncio.CancelledError):
            interrupted = True
            log.warning("interrupted: cleaning up")
        except Exception:
            log.exception("the benchmark failed; cleaning up (child logs in %s)", children.log_dir)
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                children.stop_all()
                try:
                    asyncio.run(drop_database(stack.database_url))
                except Exception as error:  # report, never hide the original failure
                    log.error("could not drop %s: %s", database, error)
            finally:
                signal.signal(signal.SIGINT, previous)
    if interrupted:
        return 130
    if results is None:
        return 1
    return _publish(results, args.out, plan)


def _shown(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _publish(results: dict[str, Any], out: Path, plan: Plan) -> int:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{results['timestamp']}.json"
    png_path = out / f"{results['timestamp']}.png"
    report.write_json(results, json_path)
    try:
        report.write_chart(results, png_path)
    except Exception as error:  # a chart problem must not hide the figures
        log.error("could not draw the chart: %s", error)
    console = Console(width=160)
    report.print_table(results, console)
    print(f"results: {_shown(json_path)}")
    print(f"chart:   {_shown(png_path)}")
    if plan.mode == "quick":
        backlog = results["scenarios"].get("backlog") or {}
        e2e = results["scenarios"].get("e2e") or {}
        ratio = backlog.get("ratio_to_ceiling")
        p99 = (e2e.get("latency") or {}).get("p99_ms")
        print(f"throughput_ratio={'nan' if ratio is None else f'{ratio:.3f}'}")
        print(f"e2e_p99_ms={'nan' if p99 is None else f'{p99:.1f}'}", flush=True)
    return 1 if _failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
