"""A tenant key that names another tenant's object gets 404 on every route, and nothing changes."""

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.api.main import create_app
from app.ids import new_id
from app.settings import Settings
from tests.integration.conftest import KeyFactory, TenantFactory

# Routes that address nothing owned by a tenant (the shared catalogue, health), or list the
# caller's own objects without naming anyone else's.
NOT_TENANT_OWNED = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/tenants"),
    ("GET", "/v1/tenants"),
    ("POST", "/v1/event-types"),
    ("GET", "/v1/event-types"),
    ("GET", "/v1/event-types/{name}"),
    ("PATCH", "/v1/event-types/{name}"),
    ("DELETE", "/v1/event-types/{name}"),
}

Request = tuple[str, str, str, dict[str, Any] | None]


def foreign_requests(victim: dict[str, str]) -> list[Request]:
    """(method, route template, concrete path, body) for every route naming the victim's objects."""
    tenant, key, endpoint = victim["tenant"], victim["key"], victim["endpoint"]
    event, delivery, dead, attempt = (
        victim["event"],
        victim["delivery"],
        victim["dead"],
        victim["attempt"],
    )
    evil = "https://evil.example/"
    return [
        ("GET", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", None),
        ("PATCH", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", {"name": "pwned"}),
        ("DELETE", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", None),
        ("POST", "/v1/tenants/{tenant_id}/api-keys", f"/v1/tenants/{tenant}/api-keys", {}),
        ("GET", "/v1/tenants/{tenant_id}/api-keys", f"/v1/tenants/{tenant}/api-keys", None),
        ("DELETE", "/v1/api-keys/{key_id}", f"/v1/api-keys/{key}", None),
        ("POST", "/v1/endpoints", "/v1/endpoints", {"tenant_id": tenant, "url": evil}),
        ("GET", "/v1/endpoints", f"/v1/endpoints?tenant_id={tenant}", None),
        ("GET", "/v1/endpoints/{endpoint_id}", f"/v1/endpoints/{endpoint}", None),
        ("PATCH", "/v1/endpoints/{endpoint_id}", f"/v1/endpoints/{endpoint}", {"url": evil}),
        ("DELETE", "/v1/endpoints/{endpoint_id}", f"/v1/endpoints/{endpoint}", None),
        ("GET", "/v1/endpoints/{endpoint_id}/secret", f"/v1/endpoints/{endpoint}/secret", None),
        (
            "POST",
            "/v1/endpoints/{endpoint_id}/secret/rotate",
            f"/v1/endpoints/{endpoint}/secret/rotate",
            {},
        ),
        ("POST", "/v1/endpoints/{endpoint_id}/test", f"/v1/endpoints/{endpoint}/test", None),
        (
            "POST",
            "/v1/endpoints/{endpoint_id}/circuit/reset",
            f"/v1/endpoints/{endpoint}/circuit/reset",
            None,
        ),
        (
            "POST",
            "/v1/events",
            "/v1/events",
            {"tenant_id": tenant, "type": "a.b", "payload": {}},
        ),
        ("GET", "/v1/events", f"/v1/events?tenant_id={tenant}", None),
        ("GET", "/v1/events/{event_id}", f"/v1/events/{event}", None),
        ("GET", "/v1/deliveries", f"/v1/deliveries?tenant_id={tenant}", None),
        ("GET", "/v1/deliveries/{delivery_id}", f"/v1/deliveries/{delivery}", None),
        (
            "POST",
            "/v1/deliveries/{delivery_id}/resend",
            f"/v1/deliveries/{delivery}/resend",
            None,
        ),
        ("GET", "/v1/attempts", f"/v1/attempts?tenant_id={tenant}", None),
        ("GET", "/v1/attempts/{attempt_id}", f"/v1/attempts/{attempt}", None),
        ("GET", "/v1/dlq", f"/v1/dlq?tenant_id={tenant}", None),
        ("POST", "/v1/dlq/{delivery_id}/replay", f"/v1/dlq/{dead}/replay", None),
        ("DELETE", "/v1/dlq/{delivery_id}", f"/v1/dlq/{dead}", None),
        ("POST", "/v1/dlq/replay", "/v1/dlq/replay", {"tenant_id": tenant}),
        ("GET", "/v1/jobs/{job_id}", f"/v1/jobs/{victim['job']}", None),
        ("GET", "/v1/endpoints/{endpoint_id}/stats", f"/v1/endpoints/{endpoint}/stats", None),
        (
            "POST",
            "/v1/endpoints/{endpoint_id}/recover",
            f"/v1/endpoints/{endpoint}/recover",
            {"since": "2026-01-01T00:00:00Z"},
        ),
    ]


async def snapshot(operator: httpx.AsyncClient, victim: dict[str, str]) -> list[Any]:
    tenant, endpoint = victim["tenant"], victim["endpoint"]
    paths = [
        f"/v1/tenants/{tenant}",
        f"/v1/tenants/{tenant}/api-keys",
        f"/v1/endpoints?tenant_id={tenant}",
        f"/v1/endpoints/{endpoint}",
        f"/v1/endpoints/{endpoint}/secret",
        f"/v1/events?tenant_id={tenant}",
        f"/v1/deliveries?tenant_id={tenant}",
        f"/v1/attempts?tenant_id={tenant}",
        f"/v1/dlq?tenant_id={tenant}",
        f"/v1/jobs/{victim['job']}",
        f"/v1/endpoints/{endpoint}/stats?until=2100-01-01T00:00:00Z",
    ]
    return [(await operator.get(path)).json() for path in paths]


async def make_victim(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> dict[str, str]:
    tenant = str((await make_tenant("victim"))["id"])
    key = await operator.post(f"/v1/tenants/{tenant}/api-keys", json={})
    endpoint = await operator.post(
        "/v1/endpoints", json={"tenant_id": tenant, "url": "https://victim.example/"}
    )
    events = [
        await operator.post("/v1/events", json={"tenant_id": tenant, "type": "a.b", "payload": {}})
        for _ in range(2)
    ]
    deliveries = [
        (await operator.get(f"/v1/events/{event.json()['id']}")).json()["deliveries"][0]["id"]
        for event in events
    ]
    attempt = new_id("att")
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        # What a worker would have written: one failed attempt, one dead delivery.
        await connection.execute(
            text(
                "INSERT INTO attempts (id, tenant_id, delivery_id, endpoint_id, number, trigger,"
                " url, request_headers, duration_ms) VALUES (:id, :tenant, :delivery,"
                " :endpoint, 1, 'scheduled', 'https://victim.example/', '{}', 5)"
            ),
            {
                "id": attempt,
                "tenant": tenant,
                "delivery": deliveries[0],
                "endpoint": endpoint.json()["id"],
            },
        )
        await connection.execute(
            text(
                "UPDATE deliveries SET status = 'dead', dead_reason = 'exhausted',"
                " dead_at = now(), next_attempt_at = NULL WHERE id = :id"
            ),
            {"id": deliveries[1]},
        )
    await engine.dispose()
    job = await operator.post("/v1/dlq/replay", json={"tenant_id": tenant})
    return {
        "job": job.json()["id"],
        "tenant": tenant,
        "key": key.json()["id"],
        "endpoint": endpoint.json()["id"],
        "event": events[0].json()["id"],
        "delivery": deliveries[0],
        "dead": deliveries[1],
        "attempt": attempt,
    }


async def test_every_route_hides_other_tenants(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    tenant_client: KeyFactory,
    settings: Settings,
    database_url: str,
) -> None:
    victim = await make_victim(operator, make_tenant, database_url)
    attacker = await tenant_client(str((await make_tenant("attacker"))["id"]))
    before = await snapshot(operator, victim)

    requests = foreign_requests(victim)
    for method, _, path, body in requests:
        response = await attacker.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"

    assert await snapshot(operator, victim) == before

    # Enumerated from the OpenAPI document, so a route added without a case here fails.
    documented = {
        (method.upper(), path)
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
    }
    covered = {(method, template) for method, template, _, _ in requests}
    assert documented - covered - NOT_TENANT_OWNED == set(), "a new route needs an isolation case"
    assert covered <= documented
