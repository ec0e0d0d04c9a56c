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


def nested_properties(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"properties": {"a": schema}}
    return schema


def test_deep_schema_is_rejected_at_the_level_that_is_too_deep() -> None:
    pointer = schema_pointer(nested_properties(100))
    # Each level of properties is two JSON levels: "properties", then "a".
    assert pointer == "/schema" + "/properties/a" * 16


def test_schema_at_the_depth_limit_passes() -> None:
    check_schema(nested_properties(15))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$schema": 7}, "must be a string naming a JSON Schema draft"),
        ({"$schema": ["x"]}, "must be a string naming a JSON Schema draft"),
        ({"$schema": "https://example.com/my-dialect"}, "must name a supported draft"),
        ({"$schema": "http://json-schema.org/draft-03/schema#"}, "must name a supported draft"),
    ],
)
def test_schema_keyword_must_name_a_known_draft(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == "/schema/$schema"


@pytest.mark.parametrize(
    "draft",
    [
        "http://json-schema.org/draft-04/schema#",
        "http://json-schema.org/draft-06/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    ],
)
def test_known_drafts_pass(draft: str) -> None:
    check_schema({"$schema": draft, "type": "object"})


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"$ref": "#/$defs/nope"}, "/schema/$ref"),
        ({"properties": {"a": {"$ref": "#/definitions/a"}}}, "/schema/properties/a/$ref"),
        ({"$ref": "#/type", "type": "object"}, "/schema/$ref"),  # a string, not a schema
        ({"allOf": [{}], "$ref": "#/allOf/1"}, "/schema/$ref"),
        ({"allOf": [{}], "$ref": "#/allOf/01"}, "/schema/$ref"),
        ({"allOf": [{}], "$ref": "#/allOf/-1"}, "/schema/$ref"),
        ({"$ref": "#nowhere"}, "/schema/$ref"),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#a", "$anchor": "a"},
            "/schema/$ref",  # draft 7 has no $anchor
        ),
    ],
)
def test_dangling_local_refs_rejected(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(Invalid, match="does not resolve") as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == pointer


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/a~1b", "$defs": {"a/b": {"type": "string"}}},
        {"$ref": "#/$defs/a%20b", "$defs": {"a b": {"type": "string"}}},
        {"$ref": "#/allOf/0", "allOf": [True]},
        {"$ref": "#item", "$defs": {"x": {"$anchor": "item", "type": "string"}}},
        {"$id": "https://example.com/order.json", "$ref": "#/$defs/x", "$defs": {"x": {}}},
        {"properties": {"id": {"type": "string"}, "$id": {"type": "string"}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"x": {"id": "y"}}},
    ],
)
def test_resolvable_refs_and_harmless_ids_pass(schema: dict[str, Any]) -> None:
    check_schema(schema)
    for payload in ({"x": "y"}, "text"):
        problem = payload_problem(schema, payload)
        assert problem is None or "cannot be applied" not in problem.errors[0].message


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"$defs": {"x": {"$id": "https://evil.example/"}}}, "/schema/$defs/x/$id"),
        (
            {"$ref": "#/$defs/x", "$defs": {"x": {"$id": "https://evil.example/", "$ref": "#"}}},
            "/schema/$defs/x/$id",
        ),
        (
            {"$schema": "http://json-schema.org/draft-04/schema#", "items": {"id": "other"}},
            "/schema/items/id",
        ),
    ],
)
def test_ids_below_the_root_rejected(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(Invalid, match="only allowed at the root") as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == pointer


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"$dynamicRef": "#meta"}, "/schema/$dynamicRef"),
        ({"items": {"$dynamicRef": "#"}}, "/schema/items/$dynamicRef"),
        (
            {"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveRef": "#"},
            "/schema/$recursiveRef",
        ),
    ],
)
def test_dynamic_references_rejected(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(Invalid, match="not supported") as caught:
        check_schema(schema)
    assert caught.value.errors[0].pointer == pointer


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"description": "a\x00"}, "/schema/description"),
        ({"properties": {"a\x00": {}}}, "/schema/properties/a\x00"),
        ({"enum": ["ok", "\ud800"]}, "/schema/enum/1"),
        ({"minimum": float("nan")}, "/schema/minimum"),
        ({"const": [float("inf")]}, "/schema/const/0"),
    ],
)
def test_values_postgresql_cannot_store_rejected(schema: dict[str, Any], pointer: str) -> None:
    assert schema_pointer(schema) == pointer


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/nope"},  # stored before references were checked
        {"type": "object", "properties": {"a": {"$ref": "#/properties/a/x"}}},
    ],
)
def test_payload_problem_never_raises_on_a_broken_schema(schema: dict[str, Any]) -> None:
    problem = payload_problem(schema, {"a": 1})
    assert problem is not None
    assert problem.errors[0].pointer == "/payload"
    assert "schema cannot be applied" in problem.errors[0].message


def test_payload_problem_reads_an_unusable_dialect_as_the_default() -> None:
    problem = payload_problem({"$schema": 5, "type": "object"}, [])
    assert problem is not None
    assert problem.errors[0].message == "[] is not of type 'object'"


def test_payload_problem_survives_a_payload_deeper_than_the_stack() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#"}}}
    payload: dict[str, Any] = {}
    for _ in range(5000):
        payload = {"a": payload}
    problem = payload_problem(schema, payload)
    assert problem is not None
    assert problem.errors[0].pointer == "/payload"
