"""The support commands of ``herald`` against the API running in this process.

The API serves from this test's event loop, so every command runs in a worker thread. What a
worker would have written (failed attempts, dead deliveries) is written with SQL.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner, Result

from app.cli import cli
from app.db import create_session_factory
from app.ids import new_id
from app.models import Job
from app.services.jobs import run_batch
from tests.integration.conftest import TenantFactory, free_port
from tests.support import OPERATOR_KEY, eventually

Herald = Callable[..., Coroutine[Any, Any, Result]]
ENDPOINT_URL = "http://127.0.0.1:9/x"


@pytest.fixture
def herald(api_url: str) -> Herald:
    """Runs ``herald ARGS`` in a thread, pointed at the test API with the operator key."""
    runner = CliRunner()

    async def invoke(*args: str, **env: str | None) -> Result:
        environment = {
            "HERALD_API_URL": api_url,
            "HERALD_API_KEY": OPERATOR_KEY,
            "HERALD_OPERATOR_KEY": None,
            **env,
        }

        def run() -> Result:
            return runner.invoke(cli, list(args), env=environment)

        return await asyncio.to_thread(run)

    return invoke


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@dataclass(frozen=True)
class World:
    tenant: str
    endpoints: list[str]  # a, b
    events: dict[str, str]  # type -> event id
    exhausted: str  # dead after a 500 and a timeout (on endpoint a)
    gone: str  # dead after a 410 (on endpoint a)
    attempts: dict[str, str]  # "500" / "timeout" / "410" -> attempt id
    deliveries: list[str]  # all six


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def parsed(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def ids(result: Result) -> list[str]:
    return [str(item["id"]) for item in parsed(result)]


@pytest.fixture
async def world(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, engine: AsyncEngine
) -> World:
    """A tenant, two endpoints, three events (six deliveries), two of them dead with attempts."""
    tenant = str((await make_tenant(f"support-{uuid.uuid4().hex[:8]}"))["id"])
    endpoints = []
    for _ in range(2):
        response = await operator.post(
            "/v1/endpoints", json={"tenant_id": tenant, "url": ENDPOINT_URL}
        )
        assert response.status_code == 201, response.text
        endpoints.append(str(response.json()["id"]))
    events = {}
    for event_type in ("order.created", "order.paid", "invoice.paid"):
        body = {"tenant_id": tenant, "type": event_type, "payload": {"n": 1}}
        response = await operator.post("/v1/events", json=body)
        assert response.status_code == 202, response.text
        assert response.json()["deliveries"] == 2
        events[event_type] = str(response.json()["id"])
    listed = await operator.get("/v1/deliveries", params={"tenant_id": tenant})
    deliveries = [str(d["id"]) for d in listed.json()["data"]]
    assert len(deliveries) == 6

    def delivery_of(event_type: str) -> str:
        return next(
            str(d["id"])
            for d in listed.json()["data"]
            if d["event_id"] == events[event_type] and d["endpoint_id"] == endpoints[0]
        )

    exhausted, gone = delivery_of("order.created"), delivery_of("order.paid")
    now = datetime.now(UTC)
    attempts = {
        "500": (exhausted, 1, 500, "boom\nTraceback: not for the table", None, None),
        "timeout": (exhausted, 2, None, None, "timeout", "no answer within 2s"),
        "410": (gone, 1, 410, "gone for good", "http_status", None),
    }
    attempt_ids = {}
    async with engine.begin() as connection:
        for offset, (name, (delivery, number, code, body_text, error, detail)) in enumerate(
            attempts.items()
        ):
            # Ids order the attempt log: a second apart, so they sort as written.
            at = now + timedelta(seconds=offset)
            attempt_ids[name] = new_id("att", at_ms=int(at.timestamp() * 1000))
            await connection.execute(
                text(
                    "INSERT INTO attempts (id, tenant_id, delivery_id, endpoint_id, number,"
                    " trigger, url, request_headers, response_status, response_body,"
                    " duration_ms, error_class, error_detail, created_at) VALUES (:id, :tenant,"
                    " :delivery, :endpoint, :number, 'scheduled', :url, '{}', :code, :body, 25,"
                    " :error, :detail, :at)"
                ),
                {
                    "id": attempt_ids[name],
                    "tenant": tenant,
                    "delivery": delivery,
                    "endpoint": endpoints[0],
                    "number": number,
                    "url": ENDPOINT_URL,
                    "code": code,
                    "body": body_text,
                    "error": error,
                    "detail": detail,
                    "at": at,
                },
            )
        for delivery, reason, count, dead_at in (
            (exhausted, "exhausted", 2, now - timedelta(minutes=2)),
            (gone, "gone", 1, now - timedelta(minutes=1)),
        ):
            await connection.execute(
                text(
                    "UPDATE deliveries SET status = 'dead', dead_reason = :reason,"
                    " dead_at = :dead_at, attempts = :count, next_attempt_at = NULL"
                    " WHERE id = :id"
                ),
                {"id": delivery, "reason": reason, "count": count, "dead_at": dead_at},
            )
    return World(tenant, endpoints, events, exhausted, gone, attempt_ids, deliveries)


async def test_events_list(herald: Herald, world: World) -> None:
    table = ok(await herald("events", "list", "--tenant", world.tenant)).stdout
    assert "TYPE" in table
    assert "DELIVERIES" in table
    for event_type, event_id in world.events.items():
        assert event_id in table
        assert event_type in table

    paid = parsed(
        await herald("events", "list", "--tenant", world.tenant, "--type", "order.paid", "--json")
    )
    assert [event["id"] for event in paid] == [world.events["order.paid"]]
    assert paid[0]["delivery_count"] == 2

    newest_first = ids(await herald("events", "list", "--tenant", world.tenant, "--json"))
    assert newest_first == list(reversed(world.events.values()))

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        ids(await herald("events", "list", "--tenant", world.tenant, "--since", later, "--json"))
        == []
    )
    assert (
        len(
            ids(
                await herald("events", "list", "--tenant", world.tenant, "--until", later, "--json")
            )
        )
        == 3
    )


async def test_deliveries_list(herald: Herald, world: World) -> None:
    table = ok(await herald("deliveries", "list", "--tenant", world.tenant)).stdout
    assert "STATUS" in table
    assert "dead (exhausted)" in table
    assert "dead (gone)" in table
    assert all(delivery in table for delivery in world.deliveries)

    dead = ids(
        await herald("deliveries", "list", "--tenant", world.tenant, "--status", "dead", "--json")
    )
    assert sorted(dead) == sorted([world.exhausted, world.gone])
    pending = ids(
        await herald(
            "deliveries", "list", "--tenant", world.tenant, "--status", "pending", "--json"
        )
    )
    assert len(pending) == 4

    by_event = parsed(
        await herald("deliveries", "list", "--event", world.events["invoice.paid"], "--json")
    )
    assert {d["endpoint_id"] for d in by_event} == set(world.endpoints)

    on_b = ids(
        await herald(
            "deliveries", "list", "--endpoint", world.endpoints[1], "--type", "order.paid", "--json"
        )
    )
    assert len(on_b) == 1
    assert on_b[0] not in (world.exhausted, world.gone)

    bad = await herald("deliveries", "list", "--status", "lost")
    assert bad.exit_code == 2
    assert "lost" in bad.stderr


async def test_attempts_list(herald: Herald, world: World) -> None:
    table = ok(await herald("attempts", "list", "--tenant", world.tenant)).stdout
    for attempt in world.attempts.values():
        assert attempt in table
    assert "timeout" in table
    assert "500" in table
    assert "25 ms" in table

    every = parsed(await herald("attempts", "list", "--tenant", world.tenant, "--json"))
    assert [a["id"] for a in every] == [world.attempts[n] for n in ("410", "timeout", "500")]

    server_errors = ids(
        await herald("attempts", "list", "--tenant", world.tenant, "--status-code", "500", "--json")
    )
    assert server_errors == [world.attempts["500"]]
    timeouts = ids(
        await herald(
            "attempts", "list", "--tenant", world.tenant, "--error-class", "timeout", "--json"
        )
    )
    assert timeouts == [world.attempts["timeout"]]
    of_delivery = ids(await herald("attempts", "list", "--delivery", world.gone, "--json"))
    assert of_delivery == [world.attempts["410"]]
    on_b = ids(await herald("attempts", "list", "--endpoint", world.endpoints[1], "--json"))
    assert on_b == []


async def test_dlq_list(herald: Herald, world: World) -> None:
    table = ok(await herald("dlq", "list", "--tenant", world.tenant)).stdout
    assert "REASON" in table
    assert "exhausted" in table
    assert world.exhausted in table
    assert world.gone in table

    # The most recently dead first.
    assert ids(await herald("dlq", "list", "--tenant", world.tenant, "--json")) == [
        world.gone,
        world.exhausted,
    ]
    assert ids(
        await herald("dlq", "list", "--tenant", world.tenant, "--reason", "gone", "--json")
    ) == [world.gone]
    assert ids(await herald("dlq", "list", "--endpoint", world.endpoints[1], "--json")) == []
    typed = ids(
        await herald("dlq", "list", "--tenant", world.tenant, "--type", "order.created", "--json")
    )
    assert typed == [world.exhausted]
    recent = (datetime.now(UTC) - timedelta(seconds=90)).isoformat()
    assert ids(
        await herald("dlq", "list", "--tenant", world.tenant, "--since", recent, "--json")
    ) == [world.gone]
    assert ids(
        await herald("dlq", "list", "--tenant", world.tenant, "--until", recent, "--json")
    ) == [world.exhausted]


async def test_all_follows_every_page(herald: Herald, world: World) -> None:
    one = await herald("deliveries", "list", "--tenant", world.tenant, "--limit", "1")
    assert sum(delivery in ok(one).stdout for delivery in world.deliveries) == 1
    assert "--all" in one.stderr

    paged = ids(
        await herald(
            "deliveries", "list", "--tenant", world.tenant, "--limit", "1", "--all", "--json"
        )
    )
    whole = ids(await herald("deliveries", "list", "--tenant", world.tenant, "--json"))
    assert paged == whole
    assert sorted(paged) == sorted(world.deliveries)

    events = ids(
        await herald("events", "list", "--tenant", world.tenant, "--limit", "1", "--all", "--json")
    )
    assert sorted(events) == sorted(world.events.values())
    attempts = ids(
        await herald(
            "attempts", "list", "--tenant", world.tenant, "--limit", "1", "--all", "--json"
        )
    )
    assert sorted(attempts) == sorted(world.attempts.values())
    dead = ids(
        await herald("dlq", "list", "--tenant", world.tenant, "--limit", "1", "--all", "--json")
    )
    assert dead == [world.gone, world.exhausted]

    table = ok(await herald("attempts", "list", "--tenant", world.tenant, "--limit", "1", "--all"))
    assert all(attempt in table.stdout for attempt in world.attempts.values())
    assert table.stderr == ""


async def test_show_delivery_with_attempts(herald: Herald, world: World) -> None:
    shown = ok(await herald("deliveries", "show", world.exhausted)).stdout
    assert world.exhausted in shown
    assert "dead (exhausted)" in shown
    assert world.events["order.created"] in shown
    lines = shown.splitlines()
    first = next(line for line in lines if "boom" in line)
    assert "500" in first
    assert "scheduled" in first
    assert "25 ms" in first
    assert "Traceback" not in shown  # only the first line of the body
    second = next(line for line in lines if "timeout" in line)
    assert "no answer within 2s" in second
    assert lines.index(first) < lines.index(second)  # oldest attempt first

    detail = parsed(await herald("deliveries", "show", world.exhausted, "--json"))
    assert detail["id"] == world.exhausted
    assert [a["number"] for a in detail["attempt_log"]] == [1, 2]

    fresh = next(d for d in world.deliveries if d not in (world.exhausted, world.gone))
    assert "no attempts yet" in ok(await herald("deliveries", "show", fresh)).stdout


async def test_resend(herald: Herald, world: World, operator: httpx.AsyncClient) -> None:
    result = ok(await herald("deliveries", "resend", world.exhausted))
    assert result.stdout.strip() == f"resent {world.exhausted}: pending"

    delivery = (await operator.get(f"/v1/deliveries/{world.exhausted}")).json()
    assert delivery["status"] == "pending"
    assert delivery["dead_reason"] is None
    assert len(delivery["attempt_log"]) == 2  # the log keeps the earlier chain

    again = parsed(await herald("deliveries", "resend", world.gone, "--json"))
    assert again["id"] == world.gone
    assert again["status"] == "pending"


async def test_error_answers_are_one_line_on_stderr(herald: Herald, api_url: str) -> None:
    missing = await herald("deliveries", "show", "dlv_nope")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    assert missing.stderr == "error: 404 Not found: delivery dlv_nope not found\n"

    resend_missing = await herald("deliveries", "resend", "dlv_nope")
    assert resend_missing.exit_code == 1
    assert resend_missing.stderr.startswith("error: 404 Not found: ")

    # A path-like id stays one path segment.
    sneaky = await herald("deliveries", "show", "../events")
    assert sneaky.exit_code == 1
    assert sneaky.stderr.startswith("error: 404 Not found")

    bad_key = await herald("events", "list", HERALD_API_KEY="hrk_wrong")
    assert bad_key.exit_code == 1
    assert bad_key.stderr.startswith("error: 401 Unauthorized: ")
    assert len(bad_key.stderr.splitlines()) == 1

    no_key = await herald("dlq", "list", HERALD_API_KEY=None)
    assert no_key.exit_code == 1
    assert no_key.stderr.startswith("error: 401 Unauthorized: ")

    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = await herald("events", "list", "--api-url", nobody)
    assert unreachable.exit_code == 2
    assert unreachable.stderr.startswith(f"error: cannot reach the Herald API at {nobody}: ")
    assert "Traceback" not in unreachable.output
    assert isinstance(unreachable.exception, SystemExit)


async def test_key_and_url_options(herald: Herald, world: World, api_url: str) -> None:
    # The operator key from the server's own variable is used when HERALD_API_KEY is unset.
    fallback = await herald(
        "dlq",
        "list",
        "--tenant",
        world.tenant,
        "--json",
        HERALD_API_KEY=None,
        HERALD_OPERATOR_KEY=OPERATOR_KEY,
    )
    assert len(parsed(fallback)) == 2
    # Options beat the environment.
    explicit = await herald(
        "dlq",
        "list",
        "--tenant",
        world.tenant,
        "--json",
        "--api-url",
        api_url,
        "--key",
        OPERATOR_KEY,
        HERALD_API_URL="http://127.0.0.1:1",
        HERALD_API_KEY="hrk_wrong",
    )
    assert len(parsed(explicit)) == 2


async def _job_of(engine: AsyncEngine, tenant: str) -> str:
    """The id of the replay job the command started (it prints it only at the end)."""

    async def probe() -> str | None:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT id FROM jobs WHERE tenant_id = :t AND status = 'queued'"),
                {"t": tenant},
            )
            return None if found is None else str(found)

    job_id = await eventually(probe, lambda found: found is not None)
    assert job_id is not None
    return job_id


async def _work_off(engine: AsyncEngine, job_id: str) -> None:
    """What the worker's job runner does, one delivery per batch."""
    sessions = create_session_factory(engine)
    more = True
    while more:
        async with sessions() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            more = await run_batch(session, job=job, batch_size=1)


async def test_dlq_replay_follows_the_job(
    herald: Herald, world: World, engine: AsyncEngine, operator: httpx.AsyncClient
) -> None:
    command = asyncio.create_task(
        herald("dlq", "replay", "--tenant", world.tenant, "--timeout", "60")
    )
    await _work_off(engine, await _job_of(engine, world.tenant))
    result = ok(await command)
    assert result.stdout.startswith("job job_")
    assert result.stdout.strip().endswith("succeeded: 2 replayed, 0 failed of 2")
    assert "2/2" in result.stderr  # the progress bar's last state
    for delivery in (world.exhausted, world.gone):
        assert (await operator.get(f"/v1/deliveries/{delivery}")).json()["status"] == "pending"


async def test_dlq_replay_filters_and_no_wait(
    herald: Herald, world: World, engine: AsyncEngine
) -> None:
    started = parsed(
        await herald(
            "dlq", "replay", "--tenant", world.tenant, "--reason", "gone", "--no-wait", "--json"
        )
    )
    assert started["kind"] == "dlq_replay"
    assert started["status"] == "queued"
    assert started["total"] == 1
    await _work_off(engine, started["id"])

    # Gave up following: the job goes on, the command says so and fails.
    impatient = await herald("dlq", "replay", "--tenant", world.tenant, "--timeout", "0")
    assert impatient.exit_code == 1
    assert "still queued after 0 s" in impatient.stderr
    await _work_off(engine, await _job_of(engine, world.tenant))


async def test_dlq_replay_failed_job_exits_1(
    herald: Herald, world: World, engine: AsyncEngine
) -> None:
    command = asyncio.create_task(
        herald("dlq", "replay", "--tenant", world.tenant, "--endpoint", world.endpoints[0])
    )
    job_id = await _job_of(engine, world.tenant)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE jobs SET status = 'failed', failed = 1, error = 'disk on fire'"
                " WHERE id = :id"
            ),
            {"id": job_id},
        )
    result = await command
    assert result.exit_code == 1
    assert f"job {job_id} failed: 0 replayed, 1 failed of 2" in result.stdout
    assert f"error: job {job_id} failed: disk on fire" in result.stderr


async def test_dlq_replay_rejects_unknown_tenant(herald: Herald) -> None:
    result = await herald("dlq", "replay", "--tenant", "ten_missing")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 404 Not found: ")


async def test_reset_circuit(
    herald: Herald, world: World, operator: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    endpoint = world.endpoints[1]
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE endpoints SET circuit_state = 'open', circuit_failures = 5,"
                " circuit_opened_at = now(), circuit_next_probe_at = now() WHERE id = :id"
            ),
            {"id": endpoint},
        )
    result = ok(await herald("endpoints", "reset-circuit", endpoint))
    assert result.stdout.strip() == f"circuit of {endpoint} is closed"
    circuit = (await operator.get(f"/v1/endpoints/{endpoint}")).json()["circuit"]
    assert (circuit["state"], circuit["failures"]) == ("closed", 0)

    missing = await herald("endpoints", "reset-circuit", "ep_nope")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: 404 Not found: ")
