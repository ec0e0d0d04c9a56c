"""The delivery loop: claim due deliveries in batches, send them concurrently, record in batches.

One loop per worker process. It claims only as many rows as it has free request slots, so a
slow receiver occupies slots, never the loop; finished attempts are written by a separate
flusher that takes everything finished since its last write in one transaction.
PostgreSQL stays the record: the loop wakes on arq wake-ups, and on its own when the next
retry falls due or after an idle poll, so a lost wake-up only delays work.
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from opentelemetry.trace import SpanKind

from app import endpoint_state, metrics, operational
from app.headers import redact
from app.ids import new_id
from app.operational import Notification, dead_lettered, endpoint_notification
from app.settings import Settings
from app.signing_secrets import SecretBox
from app.tracing import context_from, recording, tracer
from worker import circuits, sql
from worker.claim import Claim, Claimer
from worker.limits import Limits
from worker.retry import Decision, decide
from worker.sender import AttemptResult, send
from worker.signing import envelope, request_headers

log = logging.getLogger("herald.worker")

RECRUIT_INTERVAL_S = 0.25
# How long a claim that found only deliveries waiting for a busy endpoint's slots pauses,
# unless this worker frees some of those slots first.
SLOT_POLL_S = 0.01


def _log_recruit_failure(task: asyncio.Task[None]) -> None:
    # A lost wake-up only delays a peer; it never stops this worker's own claiming.
    if not task.cancelled() and (error := task.exception()) is not None:
        log.debug("could not wake a peer: %s", error)


@dataclass(frozen=True)
class Claimed:
    lease: str
    row: asyncpg.Record
    secrets: tuple[str, ...]
    body: bytes
    custom_headers: dict[str, str]


@dataclass(frozen=True)
class Finished:
    claimed: Claimed
    sent_headers: dict[str, str]
    result: AttemptResult
    decision: Decision
    at: datetime


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        http: aiohttp.ClientSession,
        secret_box: SecretBox,
        limits: Limits,
        worker_id: str,
        recruit_peer: Callable[[], Coroutine[Any, Any, None]],
        on_held: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._http = http
        self._secret_box = secret_box
        self._limits = limits
        self._claimer = Claimer(
            pool=pool,
            limits=limits,
            lease=settings.worker_lease,
            per_endpoint=settings.endpoint_max_in_flight,
        )
        self._worker_id = worker_id
        self._recruit_peer = recruit_peer
        self._on_held = on_held
        self._leases = (f"{worker_id}:{n}" for n in itertools.count())
        self._in_flight: dict[asyncio.Task[None], Claimed] = {}
        self._finished: list[Finished] = []
        self._woken = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._finished_ready = asyncio.Event()
        self._to_release: dict[str, list[str]] = {}
        self._release_ready = asyncio.Event()
        self._released = asyncio.Event()
        self._stopping = False
        self._recruited_at = 0.0

    def wake(self) -> None:
        self._woken.set()

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush_forever(), name="herald-flusher")
        releaser = asyncio.create_task(self._release_forever(), name="herald-releaser")
        try:
            await self._claim_forever()
        finally:
            await self._drain()
            flusher.cancel()
            releaser.cancel()
            await asyncio.gather(flusher, releaser, return_exceptions=True)
            await self._release()
            await self._flush()

    def stop(self) -> None:
        self._stopping = True
        self._woken.set()
        self._slot_freed.set()
        self._released.set()

    async def _claim_forever(self) -> None:
        batch = self._settings.worker_claim_batch
        concurrency = self._settings.worker_concurrency
        # Under load, refill in sizeable batches: a claim per freed slot would cost a
        # PostgreSQL round trip per delivery. When idle, free is large and claims go at once.
        refill_at = max(1, min(batch, concurrency // 2))
        while not self._stopping:
            free = concurrency - len(self._in_flight)
            if free < refill_at and self._in_flight:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            self._woken.clear()
            try:
                claimed, claim = await self._claim(min(free, batch))
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("claiming failed, retrying: %s", error)
                await self._sleep(self._settings.worker_idle_poll.total_seconds())
                continue
            for item in claimed:
                task = asyncio.create_task(self._deliver(item))
                self._in_flight[task] = item
                task.add_done_callback(self._on_done)
            if not claim.candidates:
                await self._sleep(await self._seconds_until_due())
            elif claim.moved < claim.candidates:
                # Some of what is due waits for a slot of a busy endpoint: claiming again
                # before one frees (within milliseconds, here or in a peer) finds the same.
                await self._wait_for_slot()
            elif claim.candidates == min(free, batch):
                self._recruit()

    async def _wait_for_slot(self) -> None:
        self._released.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), timeout=SLOT_POLL_S)

    async def _claim(self, limit: int) -> tuple[list[Claimed], Claim]:
        """The deliveries to send now, and what the claim saw."""
        lease = next(self._leases)
        claim = await self._claimer.claim(limit, lease=lease)
        if claim.held:
            self._on_held()
        rows = claim.rows
        if not rows:
            return [], claim
        secrets: dict[str, tuple[str, ...]] = {}
        for row in rows:
            if row["endpoint_id"] not in secrets:
                secrets[row["endpoint_id"]] = tuple(
                    self._secret_box.open(sealed, associated=row["endpoint_id"])
                    for sealed in row["sealed_secrets"]
                )
        # A fan-out claims many deliveries of one event and many events of one endpoint:
        # build each body and header set once per batch.
        bodies: dict[str, bytes] = {}
        headers: dict[str, dict[str, str]] = {}
        claimed = []
        for row in rows:
            body = bodies.get(row["event_id"])
            if body is None:
                body = bodies[row["event_id"]] = envelope(
                    event_id=row["event_id"],
                    event_type=row["event_type"],
                    created_at=row["event_created_at"],
                    payload_json=row["payload"],
                )
            custom = headers.get(row["endpoint_id"])
            if custom is None:
                custom = headers[row["endpoint_id"]] = orjson.loads(row["headers"])
            claimed.append(Claimed(lease, row, secrets[row["endpoint_id"]], body, custom))
        return claimed, claim

    async def _seconds_until_due(self) -> float:
        idle = self._settings.worker_idle_poll.total_seconds()
        try:
            async with self._pool.acquire() as connection:
                due_at: datetime | None = await connection.fetchval(sql.NEXT_DUE_AT)
        except (OSError, asyncpg.PostgresError):
            return idle
        if due_at is None:
            return idle
        # Rows due now but skipped (locked by a peer's claim) get a short, not a busy, wait.
        return min(max((due_at - datetime.now(UTC)).total_seconds(), 0.02), idle)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout=seconds)

    def _recruit(self) -> None:
        """A full batch means a backlog: wake another worker to share it (at most 4/s)."""
        now = time.monotonic()
        if now - self._recruited_at < RECRUIT_INTERVAL_S:
            return
        self._recruited_at = now
        task = asyncio.create_task(self._recruit_peer())
        task.add_done_callback(_log_recruit_failure)

    async def _deliver(self, claimed: Claimed) -> None:
        row = claimed.row
        headers = request_headers(
            custom=claimed.custom_headers,
            secrets=claimed.secrets,
            message_id=row["event_id"],
            timestamp=int(time.time()),
            body=claimed.body,
        )
        if recording():
            result = await self._send_traced(claimed, headers)
        else:
            result = await send(self._http, url=row["url"], headers=headers, body=claimed.body)
        now = datetime.now(UTC)
        decision = decide(
            result.outcome,
            attempts_made=row["chain_attempts"] + 1,
            schedule=self._settings.retry_schedule,
            now=now,
        )
        self._finished.append(Finished(claimed, headers, result, decision, now))
        self._finished_ready.set()

    async def _send_traced(self, claimed: Claimed, headers: dict[str, str]) -> AttemptResult:
        """The attempt as a child span of the event's ingest span, in the caller's trace."""
        row = claimed.row
        with tracer.start_as_current_span(
            "herald.attempt",
            context=context_from(row["trace_context"]),
            kind=SpanKind.CLIENT,
            attributes={
                "herald.event_id": row["event_id"],
                "herald.delivery_id": row["id"],
                "herald.endpoint_id": row["endpoint_id"],
                "herald.attempt": row["attempts"] + 1,
            },
        ) as span:
            result = await send(self._http, url=row["url"], headers=headers, body=claimed.body)
            span.set_attribute("herald.outcome", result.outcome.error_class or "success")
            if result.outcome.status is not None:
                span.set_attribute("http.response.status_code", result.outcome.status)
            return result

    def _on_done(self, task: asyncio.Task[None]) -> None:
        claimed = self._in_flight.pop(task, None)
        if claimed is not None:
            row = claimed.row
            self._to_release.setdefault(row["endpoint_id"], []).append(row["id"])
            self._release_ready.set()
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def _release_forever(self) -> None:
        while True:
            await self._release_ready.wait()
            self._release_ready.clear()
            await self._release()

    async def _release(self) -> None:
        """Free the endpoints' in-flight slots as soon as the responses are in, in batches:
        waiting for the attempts to be recorded would idle a busy endpoint's slots."""
        if not self._to_release:
            return
        batch, self._to_release = self._to_release, {}
        await self._limits.release(batch)
        self._released.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._finished_ready.wait()
            self._finished_ready.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        results = [circuits.Result(f.claimed.row, f.result.outcome.succeeded) for f in batch]
        while True:
            try:
                closed = await self._record(batch, results)
                break
            except (OSError, asyncpg.PostgresError) as error:
                # The requests went out; keep their results until PostgreSQL takes them.
                log.warning("recording %d attempts failed, retrying: %s", len(batch), error)
                await asyncio.sleep(0.5)
            except Exception:
                # A bug, not an outage: retrying cannot help. The deliveries stay leased and
                # fall due again when the lease ends, so they are sent again, not lost.
                log.exception("could not record %d attempts; they will be retried", len(batch))
                return
        _report(batch)
        try:
            await self._limits.forget_outcomes(closed)
            await self._count(results)
        except (OSError, asyncpg.PostgresError) as error:
            # Only the breaker's bookkeeping is lost: the next failures count again.
            log.warning("could not update circuits: %s", error)

    async def _record(self, batch: list[Finished], results: list[circuits.Result]) -> list[str]:
        """Attempts, delivery transitions and probe verdicts in one transaction.

        Returns the endpoints whose circuit a probe closed.
        """
        attempts = _attempt_columns(batch)
        gone = sorted({f.claimed.row["endpoint_id"] for f in batch if f.decision.disable_endpoint})
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                sql.RECORD_ATTEMPTS, *attempts[:14], self._worker_id, attempts[14]
            )
            moved = {
                row["id"]
                for row in await connection.fetch(
                    sql.FINISH_DELIVERIES,
                    [f.claimed.row["id"] for f in batch],
                    [f.claimed.lease for f in batch],
                    [f.decision.status for f in batch],
                    [f.decision.next_attempt_at for f in batch],
                    [f.decision.dead_reason for f in batch],
                )
            }
            # A delivery whose lease was taken over is the new holder's to report.
            notifications: list[Notification] = [
                dead_lettered(_subject(f), reason=f.decision.dead_reason or "exhausted")
                for f in batch
                if f.decision.status == "dead" and f.claimed.row["id"] in moved
            ]
            if gone:
                disabled = await connection.fetch(endpoint_state.DISABLE, gone, "gone")
                await connection.execute(
                    endpoint_state.HOLD_WAITING, [row["id"] for row in disabled]
                )
                notifications += [
                    endpoint_notification("endpoint.disabled", row, reason="gone")
                    for row in disabled
                ]
            closed, closing = await circuits.settle_probes(
                connection, [r for r in results if r.row["id"] in moved], self._settings
            )
            notifications += closing
            await operational.record(connection, notifications, settings=self._settings)
        return closed

    async def _count(self, results: list[circuits.Result]) -> None:
        """Count outcomes for the breakers; open what tripped."""
        outcomes = circuits.count_outcomes(results, self._settings)
        if not outcomes:
            return
        counted = await self._limits.settle(outcomes)
        if not counted:
            return
        shown = {r.row["endpoint_id"]: r.row["circuit_failures"] for r in results}
        policies = {o.endpoint_id: o.policy for o in outcomes if o.policy is not None}
        opened = await circuits.open_tripped(
            self._pool, counted=counted, shown=shown, policies=policies, settings=self._settings
        )
        if opened:
            self._on_held()

    async def _drain(self) -> None:
        """Let in-flight requests finish within the grace period; hand back the rest."""
        if not self._in_flight:
            return
        grace = self._settings.worker_shutdown_grace.total_seconds()
        _, pending = await asyncio.wait(set(self._in_flight), timeout=grace)
        unfinished = [self._in_flight[task] for task in pending if task in self._in_flight]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if unfinished:
            async with self._pool.acquire() as connection:
                await connection.execute(
                    sql.RELEASE_LEASES,
                    [c.row["id"] for c in unfinished],
                    list({c.lease for c in unfinished}),
                )


def _subject(item: Finished) -> dict[str, object]:
    row = item.claimed.row
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "endpoint_id": row["endpoint_id"],
        "tenant_id": row["tenant_id"],
        "attempts": row["attempts"] + 1,
    }


def _attempt_columns(batch: list[Finished]) -> list[list[object]]:
    """Column arrays for RECORD_ATTEMPTS ($1..$14, then $16 created_at; $15 is the worker)."""
    columns: list[list[object]] = [[] for _ in range(15)]
    for item in batch:
        row, result = item.claimed.row, item.result
        values: tuple[object, ...] = (
            new_id("att"),
            row["tenant_id"],
            row["id"],
            row["endpoint_id"],
            row["attempts"] + 1,
            row["trigger"],
            row["url"],
            orjson.dumps(redact(item.sent_headers)).decode(),
            result.outcome.status,
            orjson.dumps(result.response_headers).decode()
            if result.response_headers is not None
            else None,
            result.response_body,
            result.duration_ms,
            result.outcome.error_class,
            result.error_detail,
            item.at,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


OUTCOMES = {"succeeded": "succeeded", "pending": "retry", "dead": "dead"}


def _report(batch: list[Finished]) -> None:
    """Metrics and a log line per recorded attempt (failures at info, the rest at debug)."""
    attempt_counts: Counter[tuple[str, str]] = Counter()
    outcome_counts: Counter[str] = Counter()
    for item in batch:
        row, outcome = item.claimed.row, item.result.outcome
        attempt_counts[outcome.error_class or "none", metrics.status_class(outcome.status)] += 1
        outcome_counts[OUTCOMES[item.decision.status]] += 1
        metrics.attempt_duration.observe(item.result.duration_ms / 1000)
        if item.decision.status == "succeeded":
            metrics.end_to_end.observe((item.at - row["event_created_at"]).total_seconds())
        level = logging.DEBUG if outcome.succeeded else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "attempt %s %s",
                row["attempts"] + 1,
                "succeeded" if outcome.succeeded else f"failed ({outcome.error_class})",
                extra={
                    "delivery_id": row["id"],
                    "event_id": row["event_id"],
                    "endpoint_id": row["endpoint_id"],
                    "tenant_id": row["tenant_id"],
                    "status": outcome.status,
                    "duration_ms": item.result.duration_ms,
                    "next": item.decision.status,
                },
            )
    for (error_class, status_class), count in attempt_counts.items():
        metrics.attempts.labels(error_class, status_class).inc(count)
    for outcome_name, count in outcome_counts.items():
        metrics.deliveries.labels(outcome_name).inc(count)
