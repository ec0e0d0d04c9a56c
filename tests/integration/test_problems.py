"""Malformed input gets a precise problem+json answer and never a 500."""

from collections.abc import AsyncIterator

import httpx

from tests.integration.conftest import TenantFactory


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    return problem


async def test_malformed_json_is_422(operator: httpx.AsyncClient) -> None:
    response = await operator.post(
        "/v1/tenants", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_wrong_types_point_at_the_field(operator: httpx.AsyncClient) -> None:
    problem = assert_problem(await operator.post("/v1/tenants", json={"name": 5}), 422)
    assert problem["errors"] == [
        {"location": "body", "pointer": "/name", "message": "Input should be a valid string"}
    ]
    problem = assert_problem(await operator.post("/v1/tenants", json=[1, 2]), 422)


async def test_oversized_bodies_are_413(operator: httpx.AsyncClient) -> None:
    huge = {"name": "x", "metadata": {"k": "v" * 400_000}}
    assert_problem(await operator.post("/v1/tenants", json=huge), 413)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 16_384

    streamed = await operator.post(
        "/v1/tenants", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(streamed, 413)


async def test_unknown_routes_methods_and_params(operator: httpx.AsyncClient) -> None:
    assert_problem(await operator.get("/v1/nothing-here"), 404)
    assert_problem(await operator.put("/v1/tenants"), 405)
    assert_problem(await operator.get("/v1/tenants", params={"limit": 251}), 422)
    assert_problem(await operator.get("/v1/tenants", params={"limit": "many"}), 422)
    bad_cursor = assert_problem(await operator.get("/v1/tenants", params={"cursor": "%%%"}), 422)
    assert bad_cursor["errors"] == [
        {
            "location": "query",
            "pointer": "/cursor",
            "message": "is not a cursor returned by this list",
        }
    ]


async def test_cursor_from_another_list_is_just_a_position(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    await make_tenant()
    await make_tenant()
    tenants = await operator.get("/v1/tenants", params={"limit": 1})
    cursor = tenants.json()["next_cursor"]
    assert cursor is not None
    response = await operator.get("/v1/event-types", params={"cursor": cursor})
    assert response.status_code == 200
    assert isinstance(response.json()["data"], list)
