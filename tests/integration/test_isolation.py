"""A tenant key that names another tenant's object gets 404 on every route, and nothing changes."""

from typing import Any

import httpx
from fastapi.routing import APIRoute

from app.api.main import create_app
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


def foreign_requests(victim: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(method, route template, concrete path, body) for every route naming the victim's objects."""
    tenant, key, endpoint = victim["tenant"], victim["key"], victim["endpoint"]
    return [
        ("GET", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", None),
        ("PATCH", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", {"name": "pwned"}),
        ("DELETE", "/v1/tenants/{tenant_id}", f"/v1/tenants/{tenant}", None),
        ("POST", "/v1/tenants/{tenant_id}/api-keys", f"/v1/tenants/{tenant}/api-keys", {}),
        ("GET", "/v1/tenants/{tenant_id}/api-keys", f"/v1/tenants/{tenant}/api-keys", None),
        ("DELETE", "/v1/api-keys/{key_id}", f"/v1/api-keys/{key}", None),
        (
            "POST",
            "/v1/endpoints",
            "/v1/endpoints",
            {"tenant_id": tenant, "url": "https://evil.example/"},
        ),
        ("GET", "/v1/endpoints", f"/v1/endpoints?tenant_id={tenant}", None),
        ("GET", "/v1/endpoints/{endpoint_id}", f"/v1/endpoints/{endpoint}", None),
        (
            "PATCH",
            "/v1/endpoints/{endpoint_id}",
            f"/v1/endpoints/{endpoint}",
            {"url": "https://evil.example/"},
        ),
        ("DELETE", "/v1/endpoints/{endpoint_id}", f"/v1/endpoints/{endpoint}", None),
        ("GET", "/v1/endpoints/{endpoint_id}/secret", f"/v1/endpoints/{endpoint}/secret", None),
        (
            "POST",
            "/v1/endpoints/{endpoint_id}/secret/rotate",
            f"/v1/endpoints/{endpoint}/secret/rotate",
            {},
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
    ]
    return [(await operator.get(path)).json() for path in paths]


async def test_every_route_hides_other_tenants(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    tenant_client: KeyFactory,
    settings: Settings,
) -> None:
    victim_tenant = str((await make_tenant("victim"))["id"])
    victim_key = await operator.post(f"/v1/tenants/{victim_tenant}/api-keys", json={})
    victim_endpoint = await operator.post(
        "/v1/endpoints", json={"tenant_id": victim_tenant, "url": "https://victim.example/"}
    )
    victim = {
        "tenant": victim_tenant,
        "key": victim_key.json()["id"],
        "endpoint": victim_endpoint.json()["id"],
    }
    attacker = await tenant_client(str((await make_tenant("attacker"))["id"]))
    before = await snapshot(operator, victim)

    requests = foreign_requests(victim)
    for method, _, path, body in requests:
        response = await attacker.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"

    assert await snapshot(operator, victim) == before

    routes = {
        (method, route.path)
        for route in create_app(settings).routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    covered = {(method, template) for method, template, _, _ in requests}
    assert routes - covered - NOT_TENANT_OWNED == set(), "a new route needs an isolation case"
