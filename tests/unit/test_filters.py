from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.filters import (
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_NODES,
    MAX_PATH_LENGTH,
    MAX_REGEX_LENGTH,
    FilterError,
    compile_filter,
    validate_filter,
)

SEED_FILTER: dict[str, Any] = {
    "status": {"$in": ["rejected", "flagged"]},
    "confidence": {"$gte": 0.8},
}

ORDER: dict[str, Any] = {
    "status": "paid",
    "amount": 120,
    "ratio": 0.5,
    "currency": "EUR",
    "tags": ["vip", "eu"],
    "flag": True,
    "note": None,
    "customer": {"email": "ada@example.com", "address": {"country": "FR"}},
    "items": [{"sku": "GIFT-1", "qty": 2}, {"sku": "BOOK-9", "qty": 1}],
    "created_at": "2024-05-01T10:00:00Z",
    "matrix": [[1, 2], [3, 4]],
}

Case = tuple[dict[str, Any], dict[str, Any], bool]


def check(filter_document: dict[str, Any], payload: dict[str, Any], expected: bool) -> None:
    assert compile_filter(filter_document).matches(payload) is expected


# --- the seed example -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"status": "rejected", "confidence": 0.8}, True),
        ({"status": "flagged", "confidence": 1}, True),
        ({"status": "flagged", "confidence": 0.79}, False),
        ({"status": "approved", "confidence": 0.99}, False),
        ({"status": "rejected"}, False),
        ({"confidence": 0.9}, False),
        ({"status": "rejected", "confidence": "0.9"}, False),
        ({"status": "rejected", "confidence": True}, False),
    ],
)
def test_seed_filter(payload: dict[str, Any], expected: bool) -> None:
    validate_filter(SEED_FILTER)
    check(SEED_FILTER, payload, expected)


# --- bare values, paths and implicit AND -----------------------------------------------

BARE_VALUE_CASES: list[Case] = [
    ({}, ORDER, True),
    ({}, {}, True),
    ({"status": "paid"}, ORDER, True),
    ({"status": "PAID"}, ORDER, False),
    ({"amount": 120}, ORDER, True),
    ({"amount": 120.0}, ORDER, True),
    ({"amount": 121}, ORDER, False),
    ({"amount": "120"}, ORDER, False),
    ({"note": None}, ORDER, True),
    ({"missing": None}, ORDER, False),
    ({"flag": True}, ORDER, True),
    ({"customer.email": "ada@example.com"}, ORDER, True),
    ({"customer.address.country": "FR"}, ORDER, True),
    ({"customer.address.country.code": "FR"}, ORDER, False),
    ({"items.0.sku": "GIFT-1"}, ORDER, True),
    ({"items.1.sku": "GIFT-1"}, ORDER, False),
    ({"items.2.sku": "GIFT-1"}, ORDER, False),
    ({"matrix.1.0": 3}, ORDER, True),
    # Only canonical indexes address array elements.
    ({"items.01.sku": "BOOK-9"}, ORDER, False),
    ({"items.-1.sku": "BOOK-9"}, ORDER, False),
    # Paths do not fan out over arrays.
    ({"items.sku": "GIFT-1"}, ORDER, False),
    # A numeric segment on an object is an ordinary key.
    ({"by_id.0": "zero"}, {"by_id": {"0": "zero"}}, True),
    # Implicit AND.
    ({"status": "paid", "currency": "EUR"}, ORDER, True),
    ({"status": "paid", "currency": "USD"}, ORDER, False),
    # Membership in arrays.
    ({"tags": "vip"}, ORDER, True),
    ({"tags": "gold"}, ORDER, False),
    ({"tags": ["vip", "eu"]}, ORDER, True),
    ({"tags": ["eu", "vip"]}, ORDER, False),
    ({"matrix": [3, 4]}, ORDER, True),
    # Deep equality of objects, including the empty object.
    ({"customer.address": {"country": "FR"}}, ORDER, True),
    ({"customer.address": {"country": "FR", "city": "Paris"}}, ORDER, False),
    ({"customer": {"email": "ada@example.com"}}, ORDER, False),
    ({"meta": {}}, {"meta": {}}, True),
    ({"meta": {}}, {"meta": {"a": 1}}, False),
    ({"meta": {}}, {"meta": []}, False),
]


@pytest.mark.parametrize(("filter_document", "payload", "expected"), BARE_VALUE_CASES)
def test_bare_values_and_paths(
    filter_document: dict[str, Any], payload: dict[str, Any], expected: bool
) -> None:
    check(filter_document, payload, expected)


# --- booleans are not numbers -----------------------------------------------------------

BOOL_VS_NUMBER_CASES: list[Case] = [
    ({"a": 1}, {"a": True}, False),
    ({"a": 0}, {"a": False}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 1.0}, {"a": True}, False),
    ({"a": True}, {"a": True}, True),
    ({"a": {"$eq": 1}}, {"a": True}, False),
    ({"a": {"$neq": 1}}, {"a": True}, True),
    ({"a": {"$in": [1, 2]}}, {"a": True}, False),
    ({"a": {"$in": [True]}}, {"a": 1}, False),
    ({"a": {"$in": [True]}}, {"a": True}, True),
    ({"a": {"$nin": [0]}}, {"a": False}, True),
    ({"a": 1}, {"a": [True, False]}, False),
    ({"a": [1, 0]}, {"a": [True, False]}, False),
    ({"a": {"b": 1}}, {"a": {"b": True}}, False),
    ({"a": {"$eq": [{"b": [0]}]}}, {"a": [{"b": [False]}]}, False),
    ({"a": {"$eq": [{"b": [0]}]}}, {"a": [{"b": [0.0]}]}, True),
    ({"a": {"$gt": 0}}, {"a": True}, False),
    ({"a": {"$lte": 1}}, {"a": False}, False),
]


@pytest.mark.parametrize(("filter_document", "payload", "expected"), BOOL_VS_NUMBER_CASES)
def test_booleans_are_not_numbers(
    filter_document: dict[str, Any], payload: dict[str, Any], expected: bool
) -> None:
    check(filter_document, payload, expected)


# --- field operators --------------------------------------------------------------------

OPERATOR_CASES: list[Case] = [
    # $eq / $neq
    ({"status": {"$eq": "paid"}}, ORDER, True),
    ({"status": {"$eq": "void"}}, ORDER, False),
    ({"tags": {"$eq": "eu"}}, ORDER, True),
    ({"meta": {"$eq": {"$weird": 1}}}, {"meta": {"$weird": 1}}, True),
    ({"status": {"$neq": "void"}}, ORDER, True),
    ({"status": {"$neq": "paid"}}, ORDER, False),
    ({"tags": {"$neq": "vip"}}, ORDER, False),
    ({"tags": {"$neq": "gold"}}, ORDER, True),
    ({"note": {"$neq": None}}, ORDER, False),
    ({"status": {"$neq": None}}, ORDER, True),
    # $gt / $gte / $lt / $lte on numbers
    ({"amount": {"$gt": 100}}, ORDER, True),
    ({"amount": {"$gt": 120}}, ORDER, False),
    ({"amount": {"$gte": 120}}, ORDER, True),
    ({"amount": {"$gte": 120.5}}, ORDER, False),
    ({"amount": {"$lt": 120.5}}, ORDER, True),
    ({"amount": {"$lt": 120}}, ORDER, False),
    ({"amount": {"$lte": 120}}, ORDER, True),
    ({"ratio": {"$gt": 0, "$lt": 1}}, ORDER, True),
    ({"ratio": {"$gt": 0.5, "$lt": 1}}, ORDER, False),
    ({"big": {"$gt": 1e300}}, {"big": 10**400}, True),
    # ... and on strings, by code point
    ({"currency": {"$gt": "AAA"}}, ORDER, True),
    ({"currency": {"$lt": "EUR"}}, ORDER, False),
    ({"currency": {"$lte": "EUR"}}, ORDER, True),
    ({"currency": {"$gt": "eur"}}, ORDER, False),
    ({"created_at": {"$gte": "2024-01-01", "$lt": "2024-06-01"}}, ORDER, True),
    ({"created_at": {"$gte": "2024-06-01"}}, ORDER, False),
    # ... never across types, nor element-wise over arrays
    ({"amount": {"$gt": "100"}}, ORDER, False),
    ({"currency": {"$gt": 0}}, ORDER, False),
    ({"note": {"$lt": 1}}, ORDER, False),
    ({"customer": {"$gt": 1}}, ORDER, False),
    ({"matrix": {"$gt": 0}}, ORDER, False),
    ({"missing": {"$lt": 1}}, ORDER, False),
    # $in / $nin
    ({"status": {"$in": ["paid", "void"]}}, ORDER, True),
    ({"status": {"$in": ["void"]}}, ORDER, False),
    ({"status": {"$in": []}}, ORDER, False),
    ({"tags": {"$in": ["gold", "eu"]}}, ORDER, True),
    ({"tags": {"$in": ["gold"]}}, ORDER, False),
    ({"amount": {"$in": [120.0, "x"]}}, ORDER, True),
    ({"note": {"$in": [None]}}, ORDER, True),
    ({"customer.address": {"$in": [{"country": "FR"}, 1]}}, ORDER, True),
    ({"matrix": {"$in": [[3, 4]]}}, ORDER, True),
    ({"missing": {"$in": [None]}}, ORDER, False),
    ({"status": {"$nin": ["void"]}}, ORDER, True),
    ({"status": {"$nin": ["paid", "void"]}}, ORDER, False),
    ({"status": {"$nin": []}}, ORDER, True),
    ({"tags": {"$nin": ["vip"]}}, ORDER, False),
    ({"tags": {"$nin": ["gold"]}}, ORDER, True),
    # $exists
    ({"status": {"$exists": True}}, ORDER, True),
    ({"note": {"$exists": True}}, ORDER, True),
    ({"missing": {"$exists": True}}, ORDER, False),
    ({"items.5": {"$exists": True}}, ORDER, False),
    ({"status": {"$exists": False}}, ORDER, False),
    ({"missing": {"$exists": False}}, ORDER, True),
    # $regex (search, not match), strings only
    ({"customer.email": {"$regex": r"@example\.com$"}}, ORDER, True),
    ({"customer.email": {"$regex": "example"}}, ORDER, True),
    ({"customer.email": {"$regex": "^example"}}, ORDER, False),
    ({"customer.email": {"$regex": "(?i)^ADA@"}}, ORDER, True),
    ({"amount": {"$regex": "120"}}, ORDER, False),
    ({"tags": {"$regex": "vip"}}, ORDER, False),
    ({"missing": {"$regex": ".*"}}, ORDER, False),
    # $startsWith / $endsWith
    ({"items.0.sku": {"$startsWith": "GIFT-"}}, ORDER, True),
    ({"items.1.sku": {"$startsWith": "GIFT-"}}, ORDER, False),
    ({"status": {"$startsWith": ""}}, ORDER, True),
    ({"customer.email": {"$endsWith": "@example.com"}}, ORDER, True),
    ({"customer.email": {"$endsWith": "@EXAMPLE.com"}}, ORDER, False),
    ({"amount": {"$endsWith": "0"}}, ORDER, False),
    ({"tags": {"$startsWith": "v"}}, ORDER, False),
    ({"missing": {"$startsWith": ""}}, ORDER, False),
]


@pytest.mark.parametrize(("filter_document", "payload", "expected"), OPERATOR_CASES)
def test_field_operators(
    filter_document: dict[str, Any], payload: dict[str, Any], expected: bool
) -> None:
    check(filter_document, payload, expected)


# --- missing fields ---------------------------------------------------------------------

MISSING_FIELD_CASES: list[tuple[dict[str, Any], bool]] = [
    ({"missing": "x"}, False),
    ({"missing": {"$eq": None}}, False),
    ({"missing": {"$gte": 0}}, False),
    ({"missing": {"$in": ["x"]}}, False),
    ({"missing": {"$regex": ""}}, False),
    ({"missing": {"$endsWith": ""}}, False),
    ({"missing": {"$exists": True}}, False),
    ({"missing": {"$exists": False}}, True),
    ({"missing": {"$neq": "x"}}, True),
    ({"missing": {"$nin": ["x"]}}, True),
    ({"missing": {"$not": {"$gt": 1}}}, True),
    ({"missing": {"$not": "x"}}, True),
    ({"status.deeper": {"$neq": "x"}}, True),
    ({"items.9.sku": {"$nin": ["x"]}}, True),
    ({"$not": {"missing": "x"}}, True),
]


@pytest.mark.parametrize(("filter_document", "expected"), MISSING_FIELD_CASES)
def test_missing_fields(filter_document: dict[str, Any], expected: bool) -> None:
    check(filter_document, ORDER, expected)


# --- logical operators ------------------------------------------------------------------

LOGICAL_CASES: list[Case] = [
    ({"$and": [{"status": "paid"}, {"amount": {"$gt": 100}}]}, ORDER, True),
    ({"$and": [{"status": "paid"}, {"amount": {"$gt": 200}}]}, ORDER, False),
    ({"$and": [{}]}, ORDER, True),
    ({"$or": [{"a": 1}, {"b": {"$gt": 2}}]}, {"b": 3}, True),
    ({"$or": [{"a": 1}, {"b": {"$gt": 2}}]}, {"a": 1}, True),
    ({"$or": [{"a": 1}, {"b": {"$gt": 2}}]}, {"a": 2, "b": 2}, False),
    ({"$or": [{"a": 1}, {"b": {"$gt": 2}}]}, {}, False),
    ({"$not": {"status": "paid"}}, ORDER, False),
    ({"$not": {"status": "void"}}, ORDER, True),
    ({"$not": {}}, ORDER, False),
    # Logical operators combine with fields through the implicit AND.
    ({"status": "paid", "$or": [{"currency": "USD"}, {"tags": "vip"}]}, ORDER, True),
    ({"status": "void", "$or": [{"currency": "USD"}, {"tags": "vip"}]}, ORDER, False),
    # Nested logic.
    (
        {"$or": [{"$and": [{"status": "paid"}, {"$not": {"currency": "EUR"}}]}, {"amount": 120}]},
        ORDER,
        True,
    ),
    (
        {"$or": [{"$and": [{"status": "paid"}, {"$not": {"currency": "EUR"}}]}, {"amount": 1}]},
        ORDER,
        False,
    ),
    # Field-level logic.
    ({"a": {"$not": {"$in": [1, 2]}}}, {"a": 3}, True),
    ({"a": {"$not": {"$in": [1, 2]}}}, {"a": 2}, False),
    ({"a": {"$not": 3}}, {"a": 3}, False),
    ({"a": {"$not": {"$not": {"$eq": 3}}}}, {"a": 3}, True),
    ({"amount": {"$or": [{"$lt": 0}, {"$gt": 100}]}}, ORDER, True),
    ({"amount": {"$or": [{"$lt": 0}, {"$gt": 1000}]}}, ORDER, False),
    ({"amount": {"$or": [5, 120]}}, ORDER, True),
    ({"amount": {"$and": [{"$gt": 100}, {"$not": {"$in": [120]}}]}}, ORDER, False),
    ({"amount": {"$and": [{"$gt": 100}, {"$lt": 200}]}}, ORDER, True),
    ({"customer.email": {"$not": {"$endsWith": "@example.com"}}}, ORDER, False),
]


@pytest.mark.parametrize(("filter_document", "payload", "expected"), LOGICAL_CASES)
def test_logical_operators(
    filter_document: dict[str, Any], payload: dict[str, Any], expected: bool
) -> None:
    check(filter_document, payload, expected)


# --- compiled filters --------------------------------------------------------------------


def test_compiled_filter_is_reusable_and_independent_of_its_source() -> None:
    document: dict[str, Any] = {"tags": {"$in": ["vip"]}, "meta": {"a": [1]}}
    compiled = compile_filter(document)
    document["tags"]["$in"].append("gold")
    document["meta"]["a"].append(2)
    payload = {"tags": ["vip"], "meta": {"a": [1]}}
    assert compiled.matches(payload)
    assert compiled.matches(payload)
    assert not compiled.matches({"tags": ["gold"], "meta": {"a": [1]}})


def test_payloads_that_are_not_plain_json_do_not_raise() -> None:
    odd_payload: Any = {"a": {1, 2}, "b": object(), "c": (1, 2), "d": float("nan")}
    assert not compile_filter({"a": [1, 2]}).matches(odd_payload)
    assert not compile_filter({"b": {"$gt": 1}}).matches(odd_payload)
    assert compile_filter({"c": [1, 2], "c.1": 2}).matches(odd_payload)
    assert not compile_filter({"d": {"$gte": 0}}).matches(odd_payload)
    not_a_mapping: Any = ["a", "b"]
    assert not compile_filter({"a": "a"}).matches(not_a_mapping)
    assert compile_filter({"0": "a"}).matches(not_a_mapping)


# --- malformed filters ------------------------------------------------------------------


def nested_not(levels: int) -> dict[str, Any]:
    """A filter whose deepest operator object sits at nesting depth `levels`."""
    condition: Any = {"$eq": 1}
    for _ in range(levels - 2):
        condition = {"$not": condition}
    return {"a": condition}


def nested_or(levels: int) -> dict[str, Any]:
    document: dict[str, Any] = {"a": 1}
    for _ in range(levels - 1):
        document = {"$or": [document]}
    return document


def flat_filter(values: int) -> dict[str, Any]:
    """A filter holding `values` JSON values besides its root object."""
    return {f"f{index}": 0 for index in range(values)}


def nested_list(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


MALFORMED_CASES: list[tuple[object, str, str]] = [
    # (filter, JSON pointer, message fragment)
    ([], "", "a filter must be a JSON object"),
    ("status", "", "a filter must be a JSON object"),
    (None, "", "a filter must be a JSON object"),
    ({1: "x"}, "", "filter keys must be strings"),
    # Paths.
    ({"": 1}, "/", "path must not be empty"),
    ({"a..b": 1}, "/a..b", "path 'a..b' has an empty segment"),
    ({".a": 1}, "/.a", "empty segment"),
    ({"a.": 1}, "/a.", "empty segment"),
    ({"a" * (MAX_PATH_LENGTH + 1): 1}, "/" + "a" * (MAX_PATH_LENGTH + 1), "path exceeds 256"),
    ({"a/b~c.": 1}, "/a~1b~0c.", "empty segment"),
    # Operators in the wrong place or unknown.
    ({"$foo": 1}, "/$foo", "unknown operator '$foo'"),
    ({"a": {"$foo": 1}}, "/a/$foo", "unknown operator '$foo'"),
    ({"a": {"$gt": 1, "$like": "x"}}, "/a/$like", "unknown operator '$like'"),
    ({"$gt": 1}, "/$gt", "'$gt' applies to a field"),
    ({"$exists": True}, "/$exists", "'$exists' applies to a field"),
    ({"a": {"$gt": 1, "b": 2}}, "/a", "must not mix operators and plain keys"),
    ({"a": {"b": 2, "$gt": 1}}, "/a", "must not mix operators and plain keys"),
    # Operand types.
    ({"status": {"$in": "rejected"}}, "/status/$in", "'$in' expects an array"),
    ({"status": {"$nin": {"a": 1}}}, "/status/$nin", "'$nin' expects an array"),
    (
        {"a": {"$in": list(range(MAX_IN_VALUES + 1))}},
        "/a/$in",
        f"'$in' accepts at most {MAX_IN_VALUES} values",
    ),
    ({"a": {"$gt": True}}, "/a/$gt", "'$gt' expects a number or a string"),
    ({"a": {"$gte": None}}, "/a/$gte", "'$gte' expects a number or a string"),
    ({"a": {"$lt": [1]}}, "/a/$lt", "'$lt' expects a number or a string"),
    ({"a": {"$lte": {}}}, "/a/$lte", "'$lte' expects a number or a string"),
    ({"a": {"$gt": float("inf")}}, "/a/$gt", "numbers must be finite"),
    ({"a": {"$exists": 1}}, "/a/$exists", "'$exists' expects a boolean"),
    ({"a": {"$exists": "true"}}, "/a/$exists", "'$exists' expects a boolean"),
    ({"a": {"$regex": 1}}, "/a/$regex", "'$regex' expects a string"),
    ({"a": {"$regex": "("}}, "/a/$regex", "invalid regular expression: missing )"),
    ({"a": {"$regex": "*x"}}, "/a/$regex", "invalid regular expression: nothing to repeat"),
    (
        {"a": {"$regex": "a" * (MAX_REGEX_LENGTH + 1)}},
        "/a/$regex",
        f"pattern exceeds {MAX_REGEX_LENGTH} characters",
    ),
    ({"a": {"$startsWith": 1}}, "/a/$startsWith", "'$startsWith' expects a string"),
    ({"a": {"$endsWith": None}}, "/a/$endsWith", "'$endsWith' expects a string"),
    # Logical operands.
    ({"$and": []}, "/$and", "'$and' expects a non-empty array of filters"),
    ({"$or": {"a": 1}}, "/$or", "'$or' expects a non-empty array of filters"),
    ({"$or": [{"a": 1}, "b"]}, "/$or/1", "a filter must be a JSON object"),
    ({"$not": [{"a": 1}]}, "/$not", "'$not' expects a filter object"),
    ({"$not": {"a": {"$in": 1}}}, "/$not/a/$in", "'$in' expects an array"),
    ({"a": {"$and": []}}, "/a/$and", "'$and' expects a non-empty array of conditions"),
    ({"a": {"$or": 1}}, "/a/$or", "'$or' expects a non-empty array of conditions"),
    ({"a": {"$or": [{"$gt": 1}, {"$gt": "x", "b": 1}]}}, "/a/$or/1", "must not mix"),
    ({"a": {"$not": {"$regex": "["}}}, "/a/$not/$regex", "invalid regular expression"),
    # Literal values must be JSON.
    ({"a": {1, 2}}, "/a", "expected a JSON value, got set"),
    ({"a": [1, object()]}, "/a/1", "expected a JSON value, got object"),
    ({"a": {"$eq": {1: 2}}}, "/a/$eq", "object keys must be strings"),
    ({"a": {"$in": [1, float("nan")]}}, "/a/$in/1", "numbers must be finite"),
    # Limits.
    (nested_not(MAX_DEPTH + 1), "/a" + "/$not" * (MAX_DEPTH - 1), "maximum nesting depth of 8"),
    (nested_or(MAX_DEPTH + 1), "/$or/0" * MAX_DEPTH, "maximum nesting depth of 8"),
    ({"a": nested_list(MAX_DEPTH)}, "/a" + "/0" * (MAX_DEPTH - 1), "maximum nesting depth of 8"),
    ({"a": {"$eq": nested_list(MAX_DEPTH)}}, "/a/$eq" + "/0" * (MAX_DEPTH - 2), "nesting depth"),
    (flat_filter(MAX_NODES), f"/f{MAX_NODES - 1}", f"maximum size of {MAX_NODES} values"),
    # The root, "a"'s operator object and the $in array count too.
    (
        {"a": {"$in": list(range(MAX_IN_VALUES))}, **flat_filter(MAX_NODES)},
        f"/f{MAX_NODES - MAX_IN_VALUES - 3}",
        "maximum size",
    ),
]


@pytest.mark.parametrize(("filter_document", "pointer", "message"), MALFORMED_CASES)
def test_malformed_filters(filter_document: object, pointer: str, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        validate_filter(filter_document)
    assert raised.value.pointer == pointer
    assert message in raised.value.message
    with pytest.raises(FilterError):
        compile_filter(filter_document)


def test_filters_at_the_limits_are_valid() -> None:
    validate_filter(nested_not(MAX_DEPTH))
    validate_filter(nested_or(MAX_DEPTH))
    validate_filter({"a": nested_list(MAX_DEPTH - 1)})
    validate_filter({"a": {"$in": list(range(MAX_IN_VALUES))}})
    validate_filter({"a" * MAX_PATH_LENGTH: 1})
    validate_filter({"a": {"$regex": "a" * MAX_REGEX_LENGTH}})
    validate_filter(flat_filter(MAX_NODES - 1))


def test_first_problem_in_document_order_is_reported() -> None:
    with pytest.raises(FilterError) as raised:
        validate_filter({"a": 1, "b": {"$in": 1}, "c": {"$foo": 1}})
    assert raised.value.pointer == "/b/$in"


def test_filter_error_is_a_value_error_with_a_readable_message() -> None:
    with pytest.raises(ValueError, match=r"'\$in' expects an array \(at '/status/\$in'\)"):
        validate_filter({"status": {"$in": "x"}})


def test_hostile_deep_document_fails_on_the_depth_limit() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(FilterError, match="nesting depth"):
        validate_filter({"a": deep})


# --- properties ---------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "0", "1", "status", "tags"])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=3)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "a", "b", "paid", "vip", "x@example.com"])
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(KEYS, json_values, max_size=6)

VALID_FILTERS: list[dict[str, Any]] = [
    {},
    SEED_FILTER,
    {"a": 1},
    {"a": True},
    {"a": None},
    {"a": [1, "a"]},
    {"a": {"b": [0, {"c": False}]}},
    {"a.b.0": "a"},
    {"a.0.1.c": {"$exists": True}},
    {"a": {"$eq": {"$x": 1}}, "b": {"$neq": [1]}},
    {"a": {"$gt": 0, "$lte": 2.5}, "b": {"$lt": "m", "$gte": ""}},
    {"a": {"$in": [1, "a", None, True, [1], {"b": 1}]}, "b": {"$nin": [0, "b"]}},
    {"a": {"$exists": False}, "b": {"$exists": True}},
    {"a": {"$regex": "^(a|b)+$"}, "b": {"$startsWith": "p"}, "c": {"$endsWith": ".com"}},
    {"$or": [{"a": 1}, {"b": {"$gt": 2}}], "$not": {"c": {"$in": [1, 2]}}},
    {"$and": [{"a": {"$not": {"$in": [1, 2]}}}, {"$or": [{"b": "x"}, {"c": {"$exists": True}}]}]},
    {"a": {"$or": [{"$lt": 0}, {"$gt": 1}, "a"], "$and": [{"$neq": 2}, {"$not": [3]}]}},
]


@pytest.mark.parametrize("filter_document", VALID_FILTERS)
def test_reference_filters_are_valid(filter_document: dict[str, Any]) -> None:
    validate_filter(filter_document)


@settings(max_examples=300, deadline=None)
@given(payload=payloads)
def test_matching_never_raises(payload: dict[str, Any]) -> None:
    for filter_document in VALID_FILTERS:
        assert isinstance(compile_filter(filter_document).matches(payload), bool)


@settings(max_examples=200, deadline=None)
@given(payload=payloads, value=json_values)
def test_neq_and_nin_are_the_negations_of_eq_and_in(payload: dict[str, Any], value: Any) -> None:
    # Hypothesis may draw non-finite floats, which filters reject.
    try:
        validate_filter({"a": {"$eq": value}})
    except FilterError:
        return
    equal = compile_filter({"a": {"$eq": value}}).matches(payload)
    assert compile_filter({"a": {"$neq": value}}).matches(payload) is not equal
    assert compile_filter({"a": {"$in": [value]}}).matches(payload) is equal
    assert compile_filter({"a": {"$nin": [value]}}).matches(payload) is not equal
    if not (isinstance(value, dict) and any(key.startswith("$") for key in value)):
        assert compile_filter({"a": value}).matches(payload) is equal
