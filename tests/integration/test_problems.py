"""Malformed input gets a precise problem+json answer and never a 500."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.conftest import TenantFactory


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    return problem


async def test_malformed_json_is_400_with_the_position(operator: httpx.AsyncClient) -> None:
    response = await operator.post(
        "/v1/tenants", content=b'{\n  "name": ', headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 400)
    assert problem["detail"] == (
        "the body is not valid JSON: Expecting value: line 2 column 11 (char 12)"
    )
    # A character offset is not a JSON Pointer, so there is no field error to point with.
    assert "errors" not in problem


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "text/plain"}, {"content-type": "application/x-www-form-urlencoded"}, {}],
)
async def test_a_body_that_is_not_sent_as_json_is_415(
    operator: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await operator.post("/v1/tenants", content=b'{"name": "x"}', headers=headers)
    problem = assert_problem(response, 415)
    assert "application/json" in str(problem["detail"])


async def test_json_media_types_with_parameters_or_suffixes_are_json(
    operator: httpx.AsyncClient,
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await operator.post(
            "/v1/tenants", content=b'{"name": "x"}', headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)


async def test_other_validation_errors_stay_422(operator: httpx.AsyncClient) -> None:
    assert_problem(await operator.post("/v1/tenants", json={}), 422)
    assert_problem(await operator.post("/v1/tenants", json={"name": "x", "extra": 1}), 422)


@pytest.mark.parametrize(
    ("token", "challenge"),
    [(None, "Bearer"), ("hrk_not_a_key", 'Bearer error="invalid_token"')],
)
async def test_401_carries_a_bearer_challenge(
    anonymous: httpx.AsyncClient, token: str | None, challenge: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await anonymous.get("/v1/endpoints", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == challenge


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (r'{"name": "a\u0000b"}', "/name"),
        (r'{"name": "\ud800"}', "/name"),
        (r'{"name": "a", "metadata": {"k": "v\u0000"}}', "/metadata/k"),
        (r'{"name": "a", "metadata": {"k\u0000": "v"}}', "/metadata/k\u0000"),
    ],
)
async def test_unstorable_strings_are_422_at_their_pointer(
    operator: httpx.AsyncClient, body: str, pointer: str
) -> None:
    response = await operator.post(
        "/v1/tenants", content=body.encode(), headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert errors[0]["pointer"] == pointer
    assert "NUL" in errors[0]["message"] or "surrogate" in errors[0]["message"]


async def test_nul_in_the_url_never_reaches_the_database(operator: httpx.AsyncClient) -> None:
    assert_problem(await operator.get("/v1/tenants/ten_%00"), 404)
    assert_problem(await operator.delete("/v1/endpoints/%00"), 404)
    problem = assert_problem(await operator.get("/v1/endpoints?tenant_id=%00"), 422)
    assert problem["errors"] == [
        {
            "location": "query",
            "pointer": "/tenant_id",
            "message": "must not contain NUL characters (\\u0000)",
        }
    ]
    # "AA" is the base64url encoding of a lone NUL: well-formed, but never a sort key.
    problem = assert_problem(await operator.get("/v1/tenants", params={"cursor": "AA"}), 422)
    assert problem["errors"][0]["pointer"] == "/cursor"  # type: ignore[index]


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
