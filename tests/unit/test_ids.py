"""app.ids: prefixed ULIDs that sort by creation time."""

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ids import Prefix, looks_like, lower_bound_id, new_id

PREFIXES: tuple[Prefix, ...] = get_args(Prefix)
CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
MAX_MS = 2**48 - 1
milliseconds = st.integers(min_value=0, max_value=MAX_MS)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_new_id_shape(prefix: Prefix) -> None:
    value = new_id(prefix)
    head, separator, body = value.partition("_")
    assert (head, separator) == (prefix, "_")
    assert len(body) == 26
    assert set(body) <= CROCKFORD
    assert looks_like(prefix, value)


def test_new_ids_are_unique_within_one_millisecond() -> None:
    ids = {new_id("evt", at_ms=1_700_000_000_000) for _ in range(1000)}
    assert len(ids) == 1000


def test_new_id_without_at_ms_uses_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.ids.time.time_ns", lambda: 1_700_000_000_123_456_789)
    value = new_id("ep")
    assert (
        lower_bound_id("ep", 1_700_000_000_123) <= value < lower_bound_id("ep", 1_700_000_000_124)
    )


@given(milliseconds, milliseconds)
def test_ids_sort_by_time_as_strings(first_ms: int, second_ms: int) -> None:
    first, second = new_id("dlv", at_ms=first_ms), new_id("dlv", at_ms=second_ms)
    if first_ms < second_ms:
        assert first < second
    elif first_ms > second_ms:
        assert first > second


def test_ids_made_at_increasing_times_sort_increasingly() -> None:
    times = [0, 1, 2, 1_000, 1_700_000_000_000, 1_700_000_000_001, MAX_MS]
    made = [new_id("att", at_ms=ms) for ms in times]
    assert sorted(made) == made
    assert sorted(reversed(made)) == made


@given(milliseconds)
def test_lower_bound_is_at_most_any_id_at_that_millisecond(at_ms: int) -> None:
    bound = lower_bound_id("job", at_ms)
    assert looks_like("job", bound)
    assert bound <= new_id("job", at_ms=at_ms)


@pytest.mark.parametrize("at_ms", [1, 1_700_000_000_000, MAX_MS])
def test_lower_bound_is_above_every_id_from_the_previous_millisecond(
    monkeypatch: pytest.MonkeyPatch, at_ms: int
) -> None:
    monkeypatch.setattr("app.ids.os.urandom", lambda size: b"\xff" * size)
    largest_before = new_id("evt", at_ms=at_ms - 1)
    monkeypatch.setattr("app.ids.os.urandom", lambda size: b"\x00" * size)
    smallest_at = new_id("evt", at_ms=at_ms)
    assert largest_before < lower_bound_id("evt", at_ms) == smallest_at


@pytest.mark.parametrize(
    ("prefix", "value", "expected"),
    [
        ("ep", "ep_01J0000000000000000000000Z", True),
        ("ep", "evt_01J0000000000000000000000Z", False),
        ("ep", "EP_01J0000000000000000000000Z", False),
        ("ep", "ep_01J0000000000000000000000", False),
        ("ep", "ep_01J0000000000000000000000ZZ", False),
        ("ep", "ep_01J000000000000000000000I0", False),
        ("ep", "ep_01J000000000000000000000u0", False),
        ("ep", "ep01J0000000000000000000000Z", False),
        ("ep", "", False),
        ("key", "key_" + "7" * 26, True),
    ],
)
def test_looks_like(prefix: Prefix, value: str, expected: bool) -> None:
    assert looks_like(prefix, value) is expected


@pytest.mark.parametrize("prefix", PREFIXES)
def test_looks_like_is_prefix_specific(prefix: Prefix) -> None:
    value = new_id(prefix)
    others = [other for other in PREFIXES if other != prefix]
    assert not any(looks_like(other, value) for other in others)
