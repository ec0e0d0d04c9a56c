"""Payload filters: a small JSON query language matched against an event's payload.

A filter is a JSON object. Each key is either a *path* into the payload or a logical
operator, and all keys of one object must hold (implicit AND); ``{}`` matches everything::

    {"status": {"$in": ["rejected", "flagged"]}, "confidence": {"$gte": 0.8}}
    {"$or": [{"order.status": "paid"}, {"items.0.sku": {"$startsWith": "GIFT-"}}]}
    {"tags": "vip", "customer.email": {"$not": {"$endsWith": "@example.com"}}}

Paths
    Dotted: ``order.status``. On an array, a segment that is a canonical non-negative
    integer (``0``, ``12``, not ``01`` or ``-1``) selects an element. Paths do not fan out
    over arrays (``items.sku`` does not look inside each item) and payload keys that
    contain a dot cannot be addressed.

Conditions (the value under a path)
    * A bare value means equality. An object whose keys all start with ``$`` is an
      operator object; an object with no ``$`` keys (including ``{}``) is a literal
      compared by deep equality; mixing both kinds of keys is an error.
    * ``$eq``/``$neq`` and ``$in``/``$nin`` (and bare values) compare by deep equality.
      When the payload field is an array they also match if any *element* is equal, so
      ``{"tags": "vip"}`` matches ``{"tags": ["vip", "x"]}``.
    * ``$gt $gte $lt $lte`` compare numbers with numbers and strings with strings (by code
      point, which orders ISO-8601 timestamps correctly). Any other pairing, arrays
      included, simply does not match.
    * ``$regex`` (Python ``re``, searched anywhere in the value; anchor with ``^``/``$``),
      ``$startsWith`` and ``$endsWith`` apply to string fields only.
    * ``$exists``: ``true`` when the path resolves (a ``null`` value exists), ``false``
      when it does not.
    * ``$and``/``$or`` take a non-empty array of conditions and ``$not`` one condition,
      so they can combine operators on the same field:
      ``{"amount": {"$or": [{"$lt": 0}, {"$gt": 1000}]}}``.

Logical operators at the top level
    ``$and``/``$or`` take a non-empty array of filters and ``$not`` a filter. Field
    operators such as ``$eq`` cannot appear at the top level.

Types
    JSON booleans are not numbers: ``{"a": 1}`` does not match ``{"a": true}``, at any
    depth of a deep comparison. ``1`` and ``1.0`` are the same number.

Missing fields
    A path that does not resolve makes every condition false except ``$exists: false``,
    ``$neq`` and ``$nin`` (as in Svix and Convoy: "not equal to X" holds when there is no
    value at all) and ``$not``, which is plain negation: ``{"a": {"$not": {"$gt": 1}}}``
    matches a payload without ``a``.

Limits
    The document may hold at most ``MAX_NODES`` JSON values and nest at most ``MAX_DEPTH``
    levels, where every object and every array of values opens a level (the arrays under
    ``$and``/``$or`` do not: their items are the next level). ``$in``/``$nin`` take at most
    ``MAX_IN_VALUES`` values, paths are at most ``MAX_PATH_LENGTH`` characters and regular
    expressions at most ``MAX_REGEX_LENGTH``. Python's ``re`` has no time limit, so the
    pattern length cap bounds, but does not rule out, catastrophic backtracking.

``compile_filter`` validates in the same pass that builds the matcher, so a filter that
validates always compiles and ``Filter.matches`` never raises, whatever the payload holds.
"""

from __future__ import annotations

import copy
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias, TypeGuard, TypeVar

from app import pointers

__all__ = [
    "MAX_DEPTH",
    "MAX_IN_VALUES",
    "MAX_NODES",
    "MAX_PATH_LENGTH",
    "MAX_REGEX_LENGTH",
    "Filter",
    "FilterError",
    "compile_filter",
    "validate_filter",
]

MAX_DEPTH: Final = 8
MAX_NODES: Final = 1024
MAX_IN_VALUES: Final = 256
MAX_PATH_LENGTH: Final = 256
MAX_REGEX_LENGTH: Final = 256

_FIELD_OPERATORS: Final = frozenset(
    {
        "$eq",
        "$neq",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$exists",
        "$regex",
        "$startsWith",
        "$endsWith",
    }
)
_RELATIONS: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_ARRAY_INDEX: Final = re.compile(r"0|[1-9][0-9]*")

_T = TypeVar("_T")

# Stands for "the path does not resolve"; no JSON value is identical to it, so every
# equality and type test fails on it without special-casing.
_MISSING: Final = object()

# Both are predicates over `object`; the names say what they receive.
_PayloadTest: TypeAlias = Callable[[object], bool]
_ValueTest: TypeAlias = Callable[[object], bool]  # receives the value at a path, or _MISSING


class FilterError(ValueError):
    """A malformed filter. `pointer` is a JSON Pointer (RFC 6901) into the filter document,
    e.g. "/status/$in"; the empty pointer "" designates the whole document."""

    pointer: str
    message: str

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(pointer, message)
        self.pointer = pointer
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} (at {self.pointer!r})" if self.pointer else self.message


class Filter:
    """A compiled filter; build one with `compile_filter`. Immutable and reusable."""

    __slots__ = ("_test",)

    def __init__(self, test: _PayloadTest) -> None:
        self._test = test

    def matches(self, payload: Mapping[str, Any]) -> bool:
        return self._test(payload)


def validate_filter(document: object) -> None:
    """Raise `FilterError` for the first problem in `document`, in document order."""
    _Compiler().filter(document, pointer="", depth=1)


def compile_filter(document: object) -> Filter:
    """Validate `document` (raising `FilterError`) and return a reusable matcher."""
    return Filter(_Compiler().filter(document, pointer="", depth=1))


class _Compiler:
    """Validates and compiles in one walk, so the two can never disagree."""

    def __init__(self) -> None:
        self._nodes = 0

    def filter(self, document: object, pointer: str, depth: int) -> _PayloadTest:
        self._enter(pointer, depth)
        if not isinstance(document, Mapping):
            raise FilterError(pointer, "a filter must be a JSON object")
        tests: list[_PayloadTest] = []
        for key, value in document.items():
            if not isinstance(key, str):
                raise FilterError(pointer, "filter keys must be strings")
            key_pointer = pointers.child(pointer, key)
            if key.startswith("$"):
                tests.append(self._logical_filter(key, value, key_pointer, depth))
            else:
                path = _parse_path(key, key_pointer)
                test = self.condition(value, key_pointer, depth + 1)
                tests.append(_at_path(path, test))
        return _all_of(tests)

    def _logical_filter(
        self, name: str, argument: object, pointer: str, depth: int
    ) -> _PayloadTest:
        if name == "$not":
            if not isinstance(argument, Mapping):
                raise FilterError(pointer, "'$not' expects a filter object")
            return _negation(self.filter(argument, pointer, depth + 1))
        if name in ("$and", "$or"):
            items = self._operand_list(name, argument, pointer, "filters")
            tests = [
                self.filter(item, pointers.child(pointer, str(index)), depth + 1)
                for index, item in enumerate(items)
            ]
            return _all_of(tests) if name == "$and" else _any_of(tests)
        if name in _FIELD_OPERATORS:
            raise FilterError(
                pointer, f'\'{name}\' applies to a field, e.g. {{"field": {{"{name}": ...}}}}'
            )
        raise FilterError(pointer, f"unknown operator '{name}'")

    def condition(self, value: object, pointer: str, depth: int) -> _ValueTest:
        if not _is_operator_object(value, pointer):
            return _membership([self._literal(value, pointer, depth)])
        self._enter(pointer, depth)
        tests = [
            self._field_operator(name, argument, pointers.child(pointer, name), depth)
            for name, argument in value.items()
        ]
        return _all_of(tests)

    def _field_operator(self, name: str, argument: object, pointer: str, depth: int) -> _ValueTest:
        if name in ("$eq", "$neq"):
            equal = _membership([self._literal(argument, pointer, depth + 1)])
            return equal if name == "$eq" else _negation(equal)
        if name in ("$in", "$nin"):
            if not isinstance(argument, list):
                raise FilterError(pointer, f"'{name}' expects an array")
            if len(argument) > MAX_IN_VALUES:
                raise FilterError(pointer, f"'{name}' accepts at most {MAX_IN_VALUES} values")
            member = _membership(self._literal(argument, pointer, depth + 1))
            return member if name == "$in" else _negation(member)
        if name in _RELATIONS:
            if not _is_number(argument) and not isinstance(argument, str):
                raise FilterError(pointer, f"'{name}' expects a number or a string")
            bound = self._literal(argument, pointer, depth + 1)
            return _comparison(_RELATIONS[name], bound)
        if name == "$exists":
            if not isinstance(argument, bool):
                raise FilterError(pointer, "'$exists' expects a boolean")
            self._count(pointer)
            return _exists if argument else _negation(_exists)
        if name in ("$regex", "$startsWith", "$endsWith"):
            if not isinstance(argument, str):
                raise FilterError(pointer, f"'{name}' expects a string")
            self._count(pointer)
            if name == "$regex":
                return _regex_search(_compile_regex(argument, pointer))
            return _string_affix(argument, at_start=name == "$startsWith")
        if name == "$not":
            return _negation(self.condition(argument, pointer, depth + 1))
        if name in ("$and", "$or"):
            items = self._operand_list(name, argument, pointer, "conditions")
            tests = [
                self.condition(item, pointers.child(pointer, str(index)), depth + 1)
                for index, item in enumerate(items)
            ]
            return _all_of(tests) if name == "$and" else _any_of(tests)
        raise FilterError(pointer, f"unknown operator '{name}'")

    def _operand_list(self, name: str, argument: object, pointer: str, kind: str) -> list[object]:
        if not isinstance(argument, list) or not argument:
            raise FilterError(pointer, f"'{name}' expects a non-empty array of {kind}")
        # The array is a node but not a nesting level: its items are the operator's operands.
        self._count(pointer)
        return argument

    def _literal(self, value: _T, pointer: str, depth: int) -> _T:
        """Check that `value` is plain JSON within the limits and return a private copy."""
        # Iterative so that a hostile, deeply nested value fails on the depth limit rather
        # than on Python's recursion limit.
        pending: list[tuple[object, str, int]] = [(value, pointer, depth)]
        while pending:
            item, item_pointer, item_depth = pending.pop()
            self._count(item_pointer)
            if item is None or isinstance(item, (bool, str, int)):
                continue
            if isinstance(item, float):
                if not math.isfinite(item):
                    raise FilterError(item_pointer, "numbers must be finite")
                continue
            if isinstance(item, list):
                self._check_depth(item_pointer, item_depth)
                children: Iterable[tuple[str, object]] = (
                    (str(index), child) for index, child in enumerate(item)
                )
            elif isinstance(item, Mapping):
                self._check_depth(item_pointer, item_depth)
                if not all(isinstance(key, str) for key in item):
                    raise FilterError(item_pointer, "object keys must be strings")
                children = item.items()
            else:
                raise FilterError(item_pointer, f"expected a JSON value, got {type(item).__name__}")
            # Reversed so that errors are reported in document order.
            pending.extend(
                (child, pointers.child(item_pointer, key), item_depth + 1)
                for key, child in reversed(list(children))
            )
        # The depth limit keeps deepcopy's recursion shallow.
        return copy.deepcopy(value)

    def _enter(self, pointer: str, depth: int) -> None:
        self._check_depth(pointer, depth)
        self._count(pointer)

    def _check_depth(self, pointer: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise FilterError(pointer, f"filter exceeds the maximum nesting depth of {MAX_DEPTH}")

    def _count(self, pointer: str) -> None:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise FilterError(pointer, f"filter exceeds the maximum size of {MAX_NODES} values")


def _is_operator_object(value: object, pointer: str) -> TypeGuard[Mapping[str, object]]:
    if not isinstance(value, Mapping) or not value:
        return False
    operators = [key for key in value if isinstance(key, str) and key.startswith("$")]
    if not operators:
        return False
    if len(operators) != len(value):
        plain = next(key for key in value if key not in operators)
        raise FilterError(
            pointer,
            f"operator objects must not mix operators and plain keys ('{operators[0]}' and "
            f"{plain!r}); use '$eq' to compare with an object that has '$' keys",
        )
    return True


def _parse_path(path: str, pointer: str) -> tuple[tuple[str, int | None], ...]:
    """Split a dotted path into (key, array index or None) segments."""
    if not path:
        raise FilterError(pointer, "path must not be empty")
    if len(path) > MAX_PATH_LENGTH:
        raise FilterError(pointer, f"path exceeds {MAX_PATH_LENGTH} characters")
    segments = path.split(".")
    if "" in segments:
        raise FilterError(pointer, f"path {path!r} has an empty segment")
    return tuple(
        (segment, int(segment) if _ARRAY_INDEX.fullmatch(segment) else None) for segment in segments
    )


def _compile_regex(pattern: str, pointer: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX_LENGTH:
        raise FilterError(pointer, f"'$regex' pattern exceeds {MAX_REGEX_LENGTH} characters")
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as error:
        raise FilterError(pointer, f"invalid regular expression: {error}") from None


# --- matching ------------------------------------------------------------------------


def _resolve(document: object, path: Sequence[tuple[str, int | None]]) -> object:
    current = document
    for key, index in path:
        if isinstance(current, Mapping):
            current = current.get(key, _MISSING)
        elif isinstance(current, (list, tuple)) and index is not None and index < len(current):
            current = current[index]
        else:
            return _MISSING
    return current


def _at_path(path: Sequence[tuple[str, int | None]], test: _ValueTest) -> _PayloadTest:
    return lambda document: test(_resolve(document, path))


def _all_of(tests: Sequence[Callable[[object], bool]]) -> Callable[[object], bool]:
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


def _any_of(tests: Sequence[Callable[[object], bool]]) -> Callable[[object], bool]:
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _negation(test: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: not test(value)


def _exists(value: object) -> bool:
    return value is not _MISSING


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _comparison(relation: Callable[[Any, Any], Any], bound: object) -> _ValueTest:
    bound_is_number = _is_number(bound)

    def test(value: object) -> bool:
        if bound_is_number:
            return _is_number(value) and bool(relation(value, bound))
        return isinstance(value, str) and bool(relation(value, bound))

    return test


def _regex_search(pattern: re.Pattern[str]) -> _ValueTest:
    return lambda value: isinstance(value, str) and pattern.search(value) is not None


def _string_affix(affix: str, *, at_start: bool) -> _ValueTest:
    if at_start:
        return lambda value: isinstance(value, str) and value.startswith(affix)
    return lambda value: isinstance(value, str) and value.endswith(affix)


def _membership(candidates: Sequence[object]) -> _ValueTest:
    """Equal to one of `candidates`, or an array with an element equal to one of them."""
    scalars: set[tuple[str, object]] = set()
    composites: list[object] = []
    for candidate in candidates:
        key = _scalar_key(candidate)
        if key is None:
            composites.append(candidate)
        else:
            scalars.add(key)

    def is_candidate(value: object) -> bool:
        key = _scalar_key(value)
        if key is not None:
            return key in scalars
        return any(_json_equal(value, candidate) for candidate in composites)

    def test(value: object) -> bool:
        if is_candidate(value):
            return True
        return isinstance(value, (list, tuple)) and any(is_candidate(item) for item in value)

    return test


def _scalar_key(value: object) -> tuple[str, object] | None:
    """A hashable key under which equal JSON scalars coincide and `True` and `1` do not."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _json_equal(value: object, expected: object) -> bool:
    """Deep JSON equality; recursion is bounded by the depth of `expected`, a filter literal."""
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(expected)
            and all(_json_equal(item, other) for item, other in zip(value, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(value, Mapping)
            and len(value) == len(expected)
            and all(
                key in value and _json_equal(value[key], item) for key, item in expected.items()
            )
        )
    expected_key = _scalar_key(expected)
    return expected_key is not None and _scalar_key(value) == expected_key
