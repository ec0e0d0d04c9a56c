"""Values PostgreSQL cannot store (NUL, lone surrogates, non-finite numbers) never cause a 500.

Bodies are sent as raw text, because httpx's JSON encoder would refuse NaN and would escape
surrogates differently; Python's json module, which parses request bodies, accepts all of them.
"""

import itertools
from typing import Any

import httpx
import pytest

from tests.integration.conftest import TenantFactory

ACCEPTABLE = {400, 404, 409, 413, 415, 422}

# JSON string escapes for characters text and jsonb columns reject.
BAD_STRINGS = {"nul": r"\u0000", "high-surrogate": r"\ud800", "low-surrogate": r"\udfff"}
# Number literals that Python's json accepts and jsonb does not (1e400 parses as infinity),
# and an integer beyond 64 bits, which Herald's JSON encoder cannot write back.
BAD_NUMBERS = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "1e400": "1e400",
    "2**64": "18446744073709551616",
}

# (method, path, body); "S" stands for a bad string's escape, "N" for a bad number literal.
STRING_CASES = [
    ("POST", "/v1/tenants", '{"name": "a S"}'),
    ("POST", "/v1/tenants", '{"name": "a", "metadata": {"kS": "v"}}'),
    ("POST", "/v1/tenants", '{"name": "a", "metadata": {"k": "vS"}}'),
    ("PATCH", "/v1/tenants/{tenant}", '{"name": "S"}'),
    ("PATCH", "/v1/tenants/{tenant}", '{"metadata": {"S": "v"}}'),
    ("POST", "/v1/tenants/{tenant}/api-keys", '{"name": "key S"}'),
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "description": "S"}'),
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "schema": {"description": "S"}}'),
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "schema": {"properties": {"S": {}}}}'),
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "schema": {"enum": ["S"]}}'),
    ("PATCH", "/v1/event-types/{event_type}", '{"description": "S"}'),
    ("PATCH", "/v1/event-types/{event_type}", '{"schema": {"title": "S"}}'),
    ("POST", "/v1/endpoints", '{"tenant_id": "{tenant}", "url": "https://e.example/S"}'),
    ("POST", "/v1/endpoints", '{"tenant_id": "S", "url": "https://e.example/"}'),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "description": "S"}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "metadata": {"S": "v"}}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "filter": {"kS": "v"}}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "filter": {"k": {"$in": ["S"]}}}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "headers": {"X-A": "S"}}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "subscriptions": ["S"]}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "secret": "whsec_S"}',
    ),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"description": "S"}'),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"metadata": {"k": "S"}}'),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"filter": {"a.S": {"$eq": "x"}}}'),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"headers": {"X-S": "v"}}'),
    ("POST", "/v1/endpoints/{endpoint}/secret/rotate", '{"secret": "S"}'),
    ("POST", "/v1/events", '{"tenant_id": "{tenant}", "type": "t", "payload": {"a": "S"}}'),
    ("POST", "/v1/events", '{"tenant_id": "{tenant}", "type": "t", "payload": {"S": 1}}'),
    ("POST", "/v1/events", '{"tenant_id": "{tenant}", "type": "t", "payload": {}, "id": "S"}'),
    ("POST", "/v1/events", '{"tenant_id": "S", "type": "t", "payload": {}}'),
]
NUMBER_CASES = [
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "schema": {"minimum": N}}'),
    ("POST", "/v1/event-types", '{"name": "n.{unique}", "schema": {"const": [N]}}'),
    ("PATCH", "/v1/event-types/{event_type}", '{"schema": {"default": N}}'),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "filter": {"a": N}}',
    ),
    (
        "POST",
        "/v1/endpoints",
        '{"tenant_id": "{tenant}", "url": "https://e.example/", "rate_limit": N}',
    ),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"filter": {"a": {"$gt": N}}}'),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"circuit_breaker": {"failure_rate": N}}'),
    ("PATCH", "/v1/endpoints/{endpoint}", '{"circuit_breaker": {"window_s": N}}'),
    ("POST", "/v1/endpoints/{endpoint}/secret/rotate", '{"grace_period_s": N}'),
    ("POST", "/v1/events", '{"tenant_id": "{tenant}", "type": "t", "payload": {"a": N}}'),
    ("POST", "/v1/events", '{"tenant_id": "{tenant}", "type": "t", "payload": {"a": [{"b": N}]}}'),
]
# NUL reaches the URL only percent-encoded; a path id or query value can never hold one.
URL_CASES = [
    ("GET", "/v1/tenants/%00", None),
    ("PATCH", "/v1/tenants/%00", '{"name": "x"}'),
    ("DELETE", "/v1/tenants/%00", None),
    ("POST", "/v1/tenants/%00/api-keys", "{}"),
    ("GET", "/v1/tenants/%00/api-keys", None),
    ("DELETE", "/v1/api-keys/%00", None),
    ("GET", "/v1/event-types/%00", None),
    ("PATCH", "/v1/event-types/%00", '{"description": "x"}'),
    ("DELETE", "/v1/event-types/%00", None),
    ("GET", "/v1/endpoints/%00", None),
    ("PATCH", "/v1/endpoints/%00", '{"description": "x"}'),
    ("DELETE", "/v1/endpoints/%00", None),
    ("GET", "/v1/endpoints/%00/secret", None),
    ("POST", "/v1/endpoints/%00/secret/rotate", "{}"),
    ("POST", "/v1/endpoints/%00/test", None),
    ("GET", "/v1/events/%00", None),
    ("GET", "/v1/endpoints?tenant_id=%00", None),
    ("GET", "/v1/endpoints?tenant_id=ten_%00", None),
    ("GET", "/v1/endpoints?cursor=AA", None),  # base64url of a lone NUL
    ("GET", "/v1/tenants?cursor=AA", None),
    ("GET", "/v1/event-types?cursor=AA", None),
]

_counter = itertools.count()


def _string_case(method: str, path: str, body: str, name: str, bad: str) -> Any:
    return pytest.param(method, path, body.replace("S", bad), id=f"{method} {path} {body} [{name}]")


def _cases() -> list[Any]:
    cases = [
        _string_case(method, path, body, name, bad)
        for (method, path, body), (name, bad) in itertools.product(
            STRING_CASES, BAD_STRINGS.items()
        )
    ]
    cases += [
        pytest.param(method, path, body.replace("N", bad), id=f"{method} {path} {body} [{name}]")
        for (method, path, body), (name, bad) in itertools.product(
            NUMBER_CASES, BAD_NUMBERS.items()
        )
    ]
    cases += [
        pytest.param(method, path, body, id=f"{method} {path}") for method, path, body in URL_CASES
    ]
    return cases


@pytest.fixture
async def objects(operator: httpx.AsyncClient, make_tenant: TenantFactory) -> dict[str, str]:
    tenant = str((await make_tenant())["id"])
    endpoint = await operator.post(
        "/v1/endpoints", json={"tenant_id": tenant, "url": "https://e.example/"}
    )
    assert endpoint.status_code == 201, endpoint.text
    event_type = f"unstorable.t{next(_counter)}.{tenant[-8:]}"
    created = await operator.post("/v1/event-types", json={"name": event_type})
    assert created.status_code == 201, created.text
    return {"tenant": tenant, "endpoint": endpoint.json()["id"], "event_type": event_type}


@pytest.mark.parametrize(("method", "path", "body"), _cases())
async def test_never_500_always_problem_json(
    operator: httpx.AsyncClient, objects: dict[str, str], method: str, path: str, body: str | None
) -> None:
    names = {**objects, "unique": f"u{next(_counter)}{objects['tenant'][-8:]}"}
    for name, value in names.items():
        path = path.replace("{" + name + "}", value)
        body = body.replace("{" + name + "}", value) if body is not None else None
    response = await operator.request(
        method,
        path,
        content=body.encode() if body is not None else None,
        headers={"content-type": "application/json"} if body is not None else {},
    )
    assert response.status_code in ACCEPTABLE, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.text
    assert response.json()["status"] == response.status_code
