"""app.payload_schemas: event-type schemas checked on write and applied on ingest."""

from typing import Any

import pytest

from app.errors import Invalid
from app.payload_schemas import MAX_SCHEMA_BYTES, check_schema, payload_problem

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["amount"],
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
        },
        "customer": {"$ref": "#/$defs/customer"},
    },
    "$defs": {
        "customer": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
}


def schema_pointer(schema: dict[str, Any], *, pointer: str = "/schema") -> str:
    with pytest.raises(Invalid) as caught:
        check_schema(schema, pointer=pointer)
    assert caught.value.status == 422
    return caught.value.errors[0].pointer


@pytest.mark.parametrize(
    "schema",
    [
        {},
        ORDER_SCHEMA,
        {"$ref": "#"},
        {"$ref": "#/$defs/x", "$defs": {"x": {"type": "string"}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
    ],
)
def test_valid_schemas_pass(schema: dict[str, Any]) -> None:
    check_schema(schema)


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"type": "nope"}, "/schema/type"),
        ({"properties": {"a": {"minimum": "zero"}}}, "/schema/properties/a/minimum"),
        ({"required": "amount"}, "/schema/required"),
        ({"properties": {"a/b": {"type": 5}}}, "/schema/properties/a~1b/type"),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "nope"},
            "/schema/type",
        ),
    ],
)
def test_invalid_schema_points_into_the_schema(schema: dict[str, Any], pointer: str) -> None:
    assert schema_pointer(schema) == pointer


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"$ref": "https://evil.example/schema.json"}, "/schema/$ref"),
        ({"properties": {"a": {"$ref": "other.json"}}}, "/schema/properties/a/$ref"),
        ({"allOf": [{"type": "object"}, {"$ref": "/abs#/x"}]}, "/schema/allOf/1/$ref"),
        ({"$defs": {"x": {"$ref": "file:///etc/passwd"}}}, "/schema/$defs/x/$ref"),
    ],
)
def test_remote_refs_rejected(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(Invalid, match=r"only local references") as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == pointer


def test_pointer_prefix_is_configurable() -> None:
    assert schema_pointer({"type": "nope"}, pointer="/event_types/0/schema") == (
        "/event_types/0/schema/type"
    )


def test_too_large_schema_rejected() -> None:
    schema = {"description": "x" * MAX_SCHEMA_BYTES}
    with pytest.raises(Invalid, match=f"larger than {MAX_SCHEMA_BYTES} bytes") as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == "/schema"


def test_schema_just_under_the_limit_passes() -> None:
    check_schema({"description": "x" * (MAX_SCHEMA_BYTES - 100)})


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": 0},
        {"amount": 120, "currency": "EUR", "items": [{"sku": "A"}], "customer": {"email": "a@b"}},
        {"amount": 5, "extra": "allowed"},
    ],
)
def test_valid_payload_has_no_problem(payload: dict[str, Any]) -> None:
    assert payload_problem(ORDER_SCHEMA, payload) is None


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"amount": "120"}, "/payload/amount"),
        ({"amount": -1}, "/payload/amount"),
        ({"amount": 1, "currency": "GBP"}, "/payload/currency"),
        ({"amount": 1, "items": [{"sku": "A"}, {"sku": 7}]}, "/payload/items/1/sku"),
        ({"amount": 1, "customer": {"email": 3}}, "/payload/customer/email"),
        ({}, "/payload"),
        ([], "/payload"),
    ],
)
def test_payload_problem_points_into_the_payload(payload: Any, pointer: str) -> None:
    problem = payload_problem(ORDER_SCHEMA, payload)
    assert problem is not None
    assert problem.status == 422
    assert problem.errors[0].pointer == pointer


def test_payload_problem_message_explains() -> None:
    problem = payload_problem(ORDER_SCHEMA, {"amount": "120"})
    assert problem is not None
    assert problem.errors[0].message == "'120' is not of type 'integer'"
