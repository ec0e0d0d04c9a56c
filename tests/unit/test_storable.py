"""app.storable and app.pointers: what PostgreSQL cannot store, and where it is."""

import pytest

from app import pointers
from app.storable import (
    INTEGER_RANGE_MESSAGE,
    NON_FINITE_MESSAGE,
    NUL_MESSAGE,
    SURROGATE_MESSAGE,
    document_problem,
    text_problem,
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fine ✓", None),
        ("", None),
        ("a\x00", NUL_MESSAGE),
        ("\ud800", SURROGATE_MESSAGE),
        ("x\udfffy", SURROGATE_MESSAGE),
        ("\U0001f600", None),  # a real astral character, not a surrogate pair in Python
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem


@pytest.mark.parametrize(
    ("document", "found"),
    [
        ({"a": [1, "x", {"b": True, "c": None, "d": 1.5}]}, None),
        ({"a": {"b": "\x00"}}, ("/f/a/b", NUL_MESSAGE)),
        ({"a/b": ["ok", "\ud800"]}, ("/f/a~1b/1", SURROGATE_MESSAGE)),
        ({"n": float("nan")}, ("/f/n", NON_FINITE_MESSAGE)),
        ({"n": [float("-inf")]}, ("/f/n/0", NON_FINITE_MESSAGE)),
        ({"n": [2**64 - 1, -(2**63)]}, None),
        ({"n": [1, 2**64]}, ("/f/n/1", INTEGER_RANGE_MESSAGE)),
        ({"n": -(2**63) - 1}, ("/f/n", INTEGER_RANGE_MESSAGE)),
        ({"k\x00": 1}, ("/f/k\x00", "key " + NUL_MESSAGE)),
        # The first problem in document order, keys included.
        ({"a": {"b": "\x00"}, "c\x00": 1}, ("/f/a/b", NUL_MESSAGE)),
        ({"a\x00": 1, "b": "\x00"}, ("/f/a\x00", "key " + NUL_MESSAGE)),
    ],
)
def test_document_problem_points_at_the_first(
    document: object, found: tuple[str, str] | None
) -> None:
    assert document_problem(document, "/f") == found


def test_document_problem_is_not_limited_by_the_recursion_limit() -> None:
    document: object = "\x00"
    for _ in range(5000):
        document = [document]
    found = document_problem(document, "")
    assert found is not None
    assert found[0] == "/0" * 5000


def test_pointers_escape_and_round_trip() -> None:
    assert pointers.child("/a", "b/c~d") == "/a/b~1c~0d"
    assert pointers.child("", 3) == "/3"
    assert pointers.join(["x", 0, "~1"], base="/body") == "/body/x/0/~01"
    assert pointers.tokens("/x/0/~01") == ["x", "0", "~1"]
    assert pointers.tokens("") == []
    with pytest.raises(ValueError, match="JSON Pointer"):
        pointers.tokens("x")
