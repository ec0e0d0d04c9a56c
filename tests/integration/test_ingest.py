"""POST /v1/events: validation, fan-out to the right endpoints, idempotency."""

import asyncio
import uuid
from typing import Any

import httpx

from tests.integration.conftest import KeyFactory, TenantFactory


async def endpoint(operator: httpx.AsyncClient, tenant_id: str, **fields: Any) -> str:
    body = {"tenant_id": tenant_id, "url": "http://127.0.0.1:9/hook", **fields}
    response = await operator.post("/v1/endpoints", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def post_event(
    client: httpx.AsyncClient, tenant_id: str | None, event_type: str, payload: Any, **extra: Any
) -> httpx.Response:
    body = {"type": event_type, "payload": payload} | (
        {"tenant_id": tenant_id} if tenant_id else {}
    )
    return await client.post("/v1/events", json=body | extra.pop("body", {}), **extra)


async def delivered_to(operator: httpx.AsyncClient, event_id: str) -> set[str]:
    event = (await operator.get(f"/v1/events/{event_id}")).json()
    return {delivery["endpoint_id"] for delivery in event["deliveries"]}


async def test_fan_out_follows_subscriptions_filters_and_enabled(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = str((await make_tenant())["id"])
    everything = await endpoint(operator, tenant)
    invoices = await endpoint(operator, tenant, subscriptions=["invoice.*"])
    exact = await endpoint(operator, tenant, subscriptions=["invoice.paid"])
    other_type = await endpoint(operator, tenant, subscriptions=["order.created"])
    flagged = await endpoint(
        operator,
        tenant,
        filter={"status": {"$in": ["rejected", "flagged"]}, "confidence": {"$gte": 0.8}},
    )
    await endpoint(operator, tenant, enabled=False)
    other_tenant = str((await make_tenant())["id"])
    await endpoint(operator, other_tenant)

    matching = {"status": "flagged", "confidence": 0.9}
    accepted = await post_event(operator, tenant, "invoice.paid", matching)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["id"].startswith("evt_")
    assert body["duplicate"] is False
    assert body["deliveries"] == 4
    assert await delivered_to(operator, body["id"]) == {everything, invoices, exact, flagged}

    unmatched = await post_event(operator, tenant, "invoice.paid", {"status": "ok"})
    assert await delivered_to(operator, unmatched.json()["id"]) == {everything, invoices, exact}

    nothing = await post_event(operator, tenant, "user.created", {"confidence": 0.1})
    assert await delivered_to(operator, nothing.json()["id"]) == {everything}
    assert other_type not in await delivered_to(operator, nothing.json()["id"])


async def test_tenant_keys_post_for_their_own_tenant_only(
    operator: httpx.AsyncClient, make_tenant: TenantFactory, tenant_client: KeyFactory
) -> None:
    own, other = str((await make_tenant())["id"]), str((await make_tenant())["id"])
    client = await tenant_client(own)
    implied = await post_event(client, None, "a.b", {})
    assert implied.status_code == 202
    assert implied.json()["tenant_id"] == own
    foreign = await post_event(client, other, "a.b", {})
    assert foreign.status_code == 404
    missing = await post_event(operator, None, "a.b", {})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["pointer"] == "/tenant_id"
    unknown = await post_event(operator, "ten_nobody", "a.b", {})
    assert unknown.status_code == 404


async def test_payload_rules(operator: httpx.AsyncClient, make_tenant: TenantFactory) -> None:
    tenant = str((await make_tenant())["id"])
    name = f"order.placed_{uuid.uuid4().hex[:8]}"
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "integer", "minimum": 0}},
        "required": ["amount"],
    }
    await operator.post("/v1/event-types", json={"name": name, "schema": schema})

    assert (await post_event(operator, tenant, name, {"amount": 3})).status_code == 202
    wrong = await post_event(operator, tenant, name, {"amount": -1})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/payload/amount"
    absent = await post_event(operator, tenant, name, {})
    assert absent.status_code == 422

    not_object = await post_event(operator, tenant, name, [1, 2])
    assert not_object.status_code == 422
    assert not_object.json()["errors"][0]["pointer"] == "/payload"

    too_big = await post_event(operator, tenant, "big.one", {"blob": "x" * (256 * 1024)})
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"

    nul = await post_event(operator, tenant, "a.b", {"note": {"text": "a\u0000b"}})
    assert nul.status_code == 422
    assert nul.json()["errors"][0]["pointer"] == "/payload/note/text"

    await operator.delete(f"/v1/event-types/{name}")
    archived = await post_event(operator, tenant, name, {"amount": 3})
    assert archived.status_code == 422
    assert archived.json()["errors"][0]["pointer"] == "/type"


async def test_same_key_or_caller_id_is_a_duplicate(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = str((await make_tenant())["id"])
    await endpoint(operator, tenant)
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = await post_event(operator, tenant, "a.b", {"n": 1}, headers=headers)
    again = await post_event(operator, tenant, "a.b", {"n": 2}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True
    assert again.json()["deliveries"] == first.json()["deliveries"] == 1

    caller = {"id": f"order-{uuid.uuid4()}"}
    by_id = await post_event(operator, tenant, "a.b", {}, body=caller)
    by_id_again = await post_event(operator, tenant, "a.b", {}, body=caller)
    assert by_id_again.json() == by_id.json() | {"duplicate": True}

    other_tenant = str((await make_tenant())["id"])
    elsewhere = await post_event(operator, other_tenant, "a.b", {}, headers=headers)
    assert elsewhere.json()["duplicate"] is False


async def test_fifty_concurrent_duplicates_create_one_event(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = str((await make_tenant())["id"])
    await endpoint(operator, tenant)
    headers = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(post_event(operator, tenant, "a.b", {"n": n}, headers=headers) for n in range(50))
    )
    assert {response.status_code for response in responses} == {202}
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1
    assert sum(not response.json()["duplicate"] for response in responses) == 1
    event = (await operator.get(f"/v1/events/{ids.pop()}")).json()
    assert len(event["deliveries"]) == 1


async def test_test_event_goes_to_one_endpoint(
    operator: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = str((await make_tenant())["id"])
    target = await endpoint(operator, tenant, subscriptions=["invoice.*"])
    await endpoint(operator, tenant)
    response = await operator.post(f"/v1/endpoints/{target}/test")
    assert response.status_code == 202
    assert response.json()["type"] == "test.webhook"
    assert await delivered_to(operator, response.json()["id"]) == {target}
