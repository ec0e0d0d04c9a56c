import uuid
from typing import Any

import httpx
import pytest

from tests.integration.conftest import KeyFactory, TenantFactory


def unique_type() -> str:
    return f"invoice.paid_{uuid.uuid4().hex[:8]}"


async def test_event_type_crud_and_archive(operator: httpx.AsyncClient) -> None:
    name = unique_type()
    schema = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    created = await operator.post(
        "/v1/event-types", json={"name": name, "description": "paid", "schema": schema}
    )
    assert created.status_code == 201, created.text
    assert created.json()["schema"] == schema
    assert created.json()["archived"] is False

    duplicate = await operator.post("/v1/event-types", json={"name": name})
    assert duplicate.status_code == 409

    updated = await operator.patch(f"/v1/event-types/{name}", json={"schema": None})
    assert updated.json()["schema"] is None
    assert updated.json()["description"] == "paid"

    assert (await operator.delete(f"/v1/event-types/{name}")).status_code == 204
    archived = await operator.get(f"/v1/event-types/{name}")
    assert archived.json()["archived"] is True
    visible = await operator.get("/v1/event-types", params={"limit": 250})
    assert name not in [item["name"] for item in visible.json()["data"]]
    everything = await operator.get(
        "/v1/event-types", params={"include_archived": True, "limit": 250}
    )
    assert name in [item["name"] for item in everything.json()["data"]]


async def test_invalid_schemas_and_names_are_precise_422(operator: httpx.AsyncClient) -> None:
    cases = [
        ({"name": unique_type(), "schema": {"type": "nope"}}, "/schema/type"),
        (
            {"name": unique_type(), "schema": {"properties": {"a": {"$ref": "https://x/y"}}}},
            "/schema/properties/a/$ref",
        ),
        ({"name": "bad name!"}, "/name"),
        ({"name": "a..b"}, "/name"),
        ({"name": unique_type(), "surprise": 1}, "/surprise"),
    ]
    for body, pointer in cases:
        response = await operator.post("/v1/event-types", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["pointer"] == pointer, response.json()


async def test_tenants_read_the_catalogue_but_cannot_change_it(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, tenant_client: KeyFactory
) -> None:
    name = unique_type()
    await operator.post("/v1/event-types", json={"name": name})
    client = await tenant_client(str((await make_tenant())["id"]))
    assert (await client.get(f"/v1/event-types/{name}")).status_code == 200
    assert (await client.post("/v1/event-types", json={"name": unique_type()})).status_code == 403
    patch = await client.patch(f"/v1/event-types/{name}", json={"description": "x"})
    assert patch.status_code == 403
    assert (await client.delete(f"/v1/event-types/{name}")).status_code == 403
    assert (await operator.get(f"/v1/event-types/{name}")).json()["archived"] is False


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        (deep_schema(100), "/schema" + "/properties/a" * 16),
        ({"$schema": 5}, "/schema/$schema"),
        ({"$schema": "https://example.com/dialect"}, "/schema/$schema"),
        ({"$ref": "#/$defs/nope"}, "/schema/$ref"),
        ({"$defs": {"x": {"$id": "https://evil.example/"}}}, "/schema/$defs/x/$id"),
        ({"items": {"$dynamicRef": "#x"}}, "/schema/items/$dynamicRef"),
    ],
)
async def test_schemas_herald_could_not_apply_are_422(
    operator: httpx.AsyncClient, schema: dict[str, Any], pointer: str
) -> None:
    name = unique_type()
    created = await operator.post("/v1/event-types", json={"name": name, "schema": schema})
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["pointer"] == pointer
    assert (await operator.post("/v1/event-types", json={"name": name})).status_code == 201
    patched = await operator.patch(f"/v1/event-types/{name}", json={"schema": schema})
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"][0]["pointer"] == pointer
