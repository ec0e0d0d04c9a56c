"""app.pagination: the pure cursor encoding (fetch_page needs a database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import Invalid
from app.pagination import Page, decode_cursor, encode_cursor

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "sort_key",
    [
        "ep_01M842552A9JD31EAMAJD49HS5",
        "a",
        "ab",
        "abc",
        "order.paid",
        "with spaces and / slashes + plus = equals ? & #",
        "ünïcödé ✓ 💥",
        "\x00\n\t",
        "~" * 100,
    ],
)
def test_cursor_round_trip(sort_key: str) -> None:
    cursor = encode_cursor(sort_key)
    assert set(cursor) <= URLSAFE
    assert decode_cursor(cursor) == sort_key


@given(st.text(min_size=1))
def test_cursor_round_trip_any_text(sort_key: str) -> None:
    cursor = encode_cursor(sort_key)
    assert set(cursor) <= URLSAFE
    assert decode_cursor(cursor) == sort_key


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "a",
        "not a cursor",
        "!!!!",  # used to decode silently to "" (foreign characters were dropped)
        "%%%",
        "é",
        "_w",  # decodes to b"\xff", not UTF-8
        encode_cursor("foo") + "==",  # padding is never emitted
        "QR",  # non-canonical spelling of "QQ" ("A")
        encode_cursor("x>?").replace("-", "+").replace("_", "/"),
    ],
)
def test_garbage_cursor_is_invalid(cursor: str) -> None:
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert caught.value.status == 422
    assert caught.value.errors[0].pointer == "/cursor"
    assert caught.value.errors[0].message == "is not a cursor returned by this list"


def test_page_has_more_follows_next_cursor() -> None:
    assert Page([1, 2], "abc").has_more
    assert not Page([1, 2], None).has_more
