from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Tenant
from app.services.tenants import find_tenant
from tests.integration.conftest import KeyFactory, TenantFactory

SUPPLIED_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def new_endpoint(
    client: httpx.AsyncClient, tenant_id: str | None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": "https://example.com/hook", **fields}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    response = await client.post("/v1/endpoints", json=body)
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def test_endpoint_defaults_and_shape(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant_id)
    assert endpoint["id"].startswith("ep_")
    assert endpoint["subscriptions"] == ["*"]
    assert endpoint["enabled"] is True
    assert endpoint["disabled_reason"] is None
    assert endpoint["circuit"] == {
        "state": "closed",
        "failures": 0,
        "opened_at": None,
        "next_probe_at": None,
    }
    assert "secret" not in endpoint


async def test_endpoint_update_replaces_only_sent_fields(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    endpoint = await new_endpoint(
        operator,
        tenant_id,
        description="orders",
        subscriptions=["invoice.*", "order.created"],
        filter={"status": {"$in": ["rejected", "flagged"]}, "confidence": {"$gte": 0.8}},
        rate_limit=20,
        circuit_breaker={"consecutive_failures": 3},
        metadata={"team": "billing"},
    )
    path = f"/v1/endpoints/{endpoint['id']}"
    patched = await operator.patch(path, json={"filter": None, "enabled": False})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["filter"] is None
    assert body["enabled"] is False
    assert body["disabled_reason"] == "manual"
    assert body["description"] == "orders"
    assert body["subscriptions"] == ["invoice.*", "order.created"]
    assert body["rate_limit"] == 20
    assert body["circuit_breaker"]["consecutive_failures"] == 3
    assert body["metadata"] == {"team": "billing"}

    enabled = (await operator.patch(path, json={"enabled": True})).json()
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None

    assert (await operator.delete(path)).status_code == 204
    assert (await operator.get(path)).status_code == 404


async def test_tenant_key_creates_for_its_own_tenant(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, tenant_client: KeyFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    client = await tenant_client(tenant_id)
    endpoint = await new_endpoint(client, None)
    assert endpoint["tenant_id"] == tenant_id
    listed = (await client.get("/v1/endpoints")).json()["data"]
    assert [item["id"] for item in listed] == [endpoint["id"]]
    by_operator = await operator.get("/v1/endpoints", params={"tenant_id": tenant_id})
    assert [item["id"] for item in by_operator.json()["data"]] == [endpoint["id"]]


async def test_operator_must_name_an_existing_tenant(operator: httpx.AsyncClient) -> None:
    missing = await operator.post("/v1/endpoints", json={"url": "https://example.com/"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["pointer"] == "/tenant_id"
    unknown = await operator.post(
        "/v1/endpoints", json={"url": "https://example.com/", "tenant_id": "ten_nobody"}
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("fields", "pointer", "fragment"),
    [
        ({"url": "ftp://example.com/"}, "/url", "http"),
        ({"url": "https://"}, "/url", "host"),
        ({"url": "https://user:pw@example.com/"}, "/url", "credentials"),
        ({"url": "https://example.com:99999/"}, "/url", "URL"),
        ({"url": "not a url"}, "/url", ""),
        ({"url": "https://example.com/" + "a" * 2100}, "/url", ""),
        ({"subscriptions": []}, "/subscriptions", ""),
        ({"subscriptions": ["*.paid"]}, "/subscriptions/0", ""),
        ({"subscriptions": ["ok.type", "bad type"]}, "/subscriptions/1", ""),
        ({"filter": {"status": {"$foo": 1}}}, "/filter/status/$foo", "unknown operator"),
        ({"filter": {"status": {"$in": "x"}}}, "/filter/status/$in", "array"),
        ({"filter": {"a": {"$regex": "("}}}, "/filter/a/$regex", "regular expression"),
        ({"headers": {"Webhook-Id": "x"}}, "/headers/Webhook-Id", "reserved"),
        ({"headers": {"Content-Type": "text/plain"}}, "/headers/Content-Type", "reserved"),
        ({"headers": {"bad name": "x"}}, "/headers/bad name", "header name"),
        ({"headers": {"X-Ok": "a\r\nInjected: 1"}}, "/headers/X-Ok", "control"),
        ({"secret": "nope"}, "/secret", "whsec_"),
        ({"secret": "whsec_c2hvcnQ="}, "/secret", "bytes"),
        ({"secret": "whsec_!!!notbase64!!!"}, "/secret", "base64"),
        ({"rate_limit": 0}, "/rate_limit", ""),
        ({"circuit_breaker": {"failure_rate": 2}}, "/circuit_breaker/failure_rate", ""),
        ({"unknown": True}, "/unknown", ""),
        # JSON booleans are not numbers, nor numbers booleans.
        ({"rate_limit": True}, "/rate_limit", "integer"),
        ({"rate_limit": 2.5}, "/rate_limit", "integer"),
        ({"circuit_breaker": {"window_s": True}}, "/circuit_breaker/window_s", "integer"),
        ({"circuit_breaker": {"failure_rate": True}}, "/circuit_breaker/failure_rate", "number"),
        ({"enabled": "yes"}, "/enabled", "boolean"),
        ({"enabled": 1}, "/enabled", "boolean"),
        ({"url": "https://" + "a" * 60 + ("." + "a" * 60) * 4 + "/"}, "/url", "253"),
        ({"url": "https://" + "a" * 64 + ".example/"}, "/url", "label"),
        ({"headers": {"Authorization": "[REDACTED]"}}, "/headers/Authorization", "redaction"),
        ({"description": "a\x00"}, "/description", "NUL"),
        ({"metadata": {"k": "\x00"}}, "/metadata/k", "NUL"),
        ({"filter": {"a\x00": 1}}, "/filter/a\x00", "NUL"),
        ({"filter": {"a": {"$in": ["ok", "x\x00"]}}}, "/filter/a/$in/1", "NUL"),
    ],
)
async def test_invalid_endpoints_are_precise_422(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    fields: dict[str, Any],
    pointer: str,
    fragment: str,
) -> None:
    tenant_id = str((await make_tenant())["id"])
    body = {"tenant_id": tenant_id, "url": "https://example.com/hook", **fields}
    response = await operator.post("/v1/endpoints", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert error["pointer"] == pointer
    assert fragment.lower() in error["message"].lower()
    listed = await operator.get("/v1/endpoints", params={"tenant_id": tenant_id})
    assert listed.json()["data"] == []


async def test_sensitive_headers_are_redacted_and_survive_a_round_trip(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant_id = str((await make_tenant())["id"])
    headers = {"Authorization": "Bearer s3cr3t", "X-Team": "billing"}
    endpoint = await new_endpoint(operator, tenant_id, headers=headers)
    assert endpoint["headers"] == {"Authorization": "[REDACTED]", "X-Team": "billing"}

    shown = endpoint["headers"] | {"X-Team": "payments"}
    patched = await operator.patch(f"/v1/endpoints/{endpoint['id']}", json={"headers": shown})
    assert patched.json()["headers"] == {"Authorization": "[REDACTED]", "X-Team": "payments"}

    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT headers FROM endpoints WHERE id = :id"), {"id": endpoint["id"]}
        )
    await engine.dispose()
    assert stored == {"Authorization": "Bearer s3cr3t", "X-Team": "payments"}


async def test_secret_generated_supplied_and_encrypted_at_rest(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant_id = str((await make_tenant())["id"])
    generated = await new_endpoint(operator, tenant_id)
    secret = (await operator.get(f"/v1/endpoints/{generated['id']}/secret")).json()
    assert secret["secret"].startswith("whsec_")
    assert secret["previous"] == []

    supplied = await new_endpoint(operator, tenant_id, secret=SUPPLIED_SECRET)
    shown = (await operator.get(f"/v1/endpoints/{supplied['id']}/secret")).json()
    assert shown["secret"] == SUPPLIED_SECRET

    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        sealed = await connection.scalar(
            text("SELECT sealed_secret FROM endpoint_secrets WHERE endpoint_id = :id"),
            {"id": supplied["id"]},
        )
    await engine.dispose()
    assert SUPPLIED_SECRET.encode() not in sealed
    assert SUPPLIED_SECRET.removeprefix("whsec_").encode() not in sealed


async def test_rotation_keeps_the_old_secret_for_the_grace_period(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant_id, secret=SUPPLIED_SECRET)
    path = f"/v1/endpoints/{endpoint['id']}/secret"

    rotated = await operator.post(f"{path}/rotate", json={})
    assert rotated.status_code == 200, rotated.text
    after = rotated.json()
    assert after["secret"] != SUPPLIED_SECRET
    assert [item["secret"] for item in after["previous"]] == [SUPPLIED_SECRET]
    assert (await operator.get(path)).json() == after

    # A zero grace period is the answer to a leaked secret: every older secret stops at once.
    immediate = await operator.post(f"{path}/rotate", json={"grace_period_s": 0})
    assert immediate.json()["previous"] == []
    assert immediate.json()["secret"] not in (SUPPLIED_SECRET, after["secret"])

    bad = await operator.post(f"{path}/rotate", json={"secret": "whsec_short"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/secret"


async def test_redaction_marker_for_a_header_without_stored_value_is_422(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    endpoint = await new_endpoint(operator, tenant_id, headers={"X-Team": "billing"})
    path = f"/v1/endpoints/{endpoint['id']}"
    shown = {"X-Team": "payments", "X-Api-Key": "[REDACTED]"}
    patched = await operator.patch(path, json={"headers": shown})
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"][0]["pointer"] == "/headers/X-Api-Key"
    assert (await operator.get(path)).json()["headers"] == {"X-Team": "billing"}


async def test_grace_period_must_be_a_number_of_seconds(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    endpoint = await new_endpoint(operator, str((await make_tenant())["id"]))
    path = f"/v1/endpoints/{endpoint['id']}/secret/rotate"
    response = await operator.post(path, json={"grace_period_s": True})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/grace_period_s"


async def test_rotation_keeps_at_most_five_live_secrets(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    endpoint = await new_endpoint(
        operator, str((await make_tenant())["id"]), secret=SUPPLIED_SECRET
    )
    path = f"/v1/endpoints/{endpoint['id']}/secret"
    currents = [SUPPLIED_SECRET]
    for _ in range(6):
        rotated = await operator.post(f"{path}/rotate", json={})
        assert rotated.status_code == 200, rotated.text
        currents.append(rotated.json()["secret"])
    shown = (await operator.get(path)).json()
    assert shown["secret"] == currents[-1]
    # The current one and the four before it; the two oldest expired at once.
    assert [item["secret"] for item in shown["previous"]] == currents[-2:-6:-1]


async def test_a_sealed_secret_moved_to_another_endpoint_does_not_open(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant_id = str((await make_tenant())["id"])
    victim = await new_endpoint(operator, tenant_id, secret=SUPPLIED_SECRET)
    attacker = await new_endpoint(operator, tenant_id)
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE endpoint_secrets SET sealed_secret = "
                "(SELECT sealed_secret FROM endpoint_secrets WHERE endpoint_id = :victim) "
                "WHERE endpoint_id = :attacker"
            ),
            {"victim": victim["id"], "attacker": attacker["id"]},
        )
    await engine.dispose()
    response = await operator.get(f"/v1/endpoints/{attacker['id']}/secret")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert SUPPLIED_SECRET not in response.text


async def test_endpoint_for_a_tenant_deleted_meanwhile_is_404(
    operator: httpx.AsyncClient,
    make_tenant: TenantFactory,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant_id = str((await make_tenant())["id"])

    async def find_then_lose_the_race(session: Any, *, tenant_id: str) -> Tenant:
        tenant = await find_tenant(session, tenant_id=tenant_id)
        await delete_tenant_elsewhere(database_url, tenant_id)
        return tenant

    monkeypatch.setattr("app.services.endpoints.find_tenant", find_then_lose_the_race)
    body = {"tenant_id": tenant_id, "url": "https://example.com/hook"}
    response = await operator.post("/v1/endpoints", json=body)
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == f"tenant {tenant_id} not found"


async def delete_tenant_elsewhere(database_url: str, tenant_id: str) -> None:
    """Delete in another connection, as a concurrent DELETE /v1/tenants/{id} would."""
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": tenant_id})
    await engine.dispose()
