import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.models import Tenant
from app.services.tenants import find_tenant
from tests.integration.conftest import TenantFactory
from tests.integration.test_endpoints import delete_tenant_elsewhere


async def test_key_is_shown_once_and_authenticates(
    api_url: str, operator: httpx.AsyncClient, make_tenant: TenantFactory, database_url: str
) -> None:
    tenant_id = str((await make_tenant())["id"])
    created = await operator.post(f"/v1/tenants/{tenant_id}/api-keys", json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()
    assert key["key"].startswith("hrk_")
    assert key["scope"] == "tenant"
    assert key["tenant_id"] == tenant_id

    listed = (await operator.get(f"/v1/tenants/{tenant_id}/api-keys")).json()["data"]
    assert [item["id"] for item in listed] == [key["id"]]
    assert "key" not in listed[0]

    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": key["id"]}
        )
    await engine.dispose()
    assert stored == hashlib.sha256(key["key"].encode()).digest()

    headers = {"Authorization": f"Bearer {key['key']}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as client:
        assert (await client.get("/v1/endpoints")).status_code == 200
        assert (await operator.delete(f"/v1/api-keys/{key['id']}")).status_code == 204
        assert (await client.get("/v1/endpoints")).status_code == 401


async def test_keys_for_unknown_tenant_are_404(operator: httpx.AsyncClient) -> None:
    response = await operator.post("/v1/tenants/ten_missing/api-keys", json={})
    assert response.status_code == 404
    assert (await operator.delete("/v1/api-keys/key_missing")).status_code == 404


async def test_key_for_a_tenant_deleted_meanwhile_is_404(
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

    monkeypatch.setattr("app.services.api_keys.find_tenant", find_then_lose_the_race)
    response = await operator.post(f"/v1/tenants/{tenant_id}/api-keys", json={})
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == f"tenant {tenant_id} not found"
