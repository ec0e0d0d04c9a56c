import httpx

from tests.integration.conftest import KeyFactory, TenantFactory


async def test_tenant_crud(operator: httpx.AsyncClient) -> None:
    created = await operator.post("/v1/tenants", json={"name": "Acme", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    tenant = created.json()
    assert tenant["id"].startswith("ten_")
    assert tenant["metadata"] == {"plan": "pro"}

    fetched = await operator.get(f"/v1/tenants/{tenant['id']}")
    assert fetched.json()["name"] == "Acme"

    renamed = await operator.patch(f"/v1/tenants/{tenant['id']}", json={"name": "Acme Inc"})
    assert renamed.json()["name"] == "Acme Inc"
    assert renamed.json()["metadata"] == {"plan": "pro"}

    assert (await operator.delete(f"/v1/tenants/{tenant['id']}")).status_code == 204
    missing = await operator.get(f"/v1/tenants/{tenant['id']}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_tenant_list_pages_newest_first(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    made = [str((await make_tenant(f"page-{n}"))["id"]) for n in range(3)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await operator.get("/v1/tenants", params=params)).json()
        assert len(page["data"]) <= 2
        seen += [tenant["id"] for tenant in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert [tenant for tenant in seen if tenant in made] == list(reversed(made))
    assert len(seen) == len(set(seen))


async def test_deleting_a_tenant_removes_its_endpoints_and_keys(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, tenant_client: KeyFactory
) -> None:
    tenant_id = str((await make_tenant())["id"])
    client = await tenant_client(tenant_id)
    endpoint = await operator.post(
        "/v1/endpoints", json={"tenant_id": tenant_id, "url": "https://example.com/hook"}
    )
    assert endpoint.status_code == 201
    await operator.delete(f"/v1/tenants/{tenant_id}")
    assert (await operator.get(f"/v1/endpoints/{endpoint.json()['id']}")).status_code == 404
    assert (await client.get("/v1/endpoints")).status_code == 401


async def test_tenant_key_sees_only_its_own_tenant(
    make_tenant: TenantFactory, tenant_client: KeyFactory
) -> None:
    own, other = str((await make_tenant())["id"]), str((await make_tenant())["id"])
    client = await tenant_client(own)
    assert (await client.get(f"/v1/tenants/{own}")).status_code == 200
    assert (await client.get(f"/v1/tenants/{other}")).status_code == 404
    assert (await client.get("/v1/tenants")).status_code == 403
    assert (await client.post("/v1/tenants", json={"name": "x"})).status_code == 403
    assert (await client.patch(f"/v1/tenants/{own}", json={"name": "x"})).status_code == 403
    assert (await client.delete(f"/v1/tenants/{own}")).status_code == 403


async def test_requests_without_a_valid_key_are_refused(anonymous: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await anonymous.get("/v1/tenants", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401
    forged = "hrk_01JAAAAAAAAAAAAAAAAAAAAAAA_" + "x" * 43
    response = await anonymous.get("/v1/tenants", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
