"""app.durations: the human durations used by settings and API bodies."""

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.durations import format_duration, parse_duration, parse_schedule


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("30d", timedelta(days=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5s", timedelta(seconds=1.5)),
        ("0.5h", timedelta(minutes=30)),
        ("0s", timedelta(0)),
        ("90", timedelta(seconds=90)),
        ("2.25", timedelta(seconds=2.25)),
        (" 2 h ", timedelta(hours=2)),
        ("10 m", timedelta(minutes=10)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "s",
        "abc",
        "5x",
        "5S",
        "5 sec",
        "1,5s",
        "5m3s",
        "-5s",
        "-5",
        "nan",
        "inf",
        "1e400",
        "99999999999999d",
    ],
)
def test_parse_duration_rejects_with_value_error_naming_the_input(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)


def test_parse_duration_message_lists_the_units() -> None:
    with pytest.raises(ValueError, match=r"ms, s, m, h or d"):
        parse_duration("5 weeks")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1m,5m,30m,2h",
            (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)),
        ),
        (" 1s , 2s ,", (timedelta(seconds=1), timedelta(seconds=2))),
        ("45", (timedelta(seconds=45),)),
        ("", ()),
        (" , ", ()),
    ],
)
def test_parse_schedule(text: str, expected: tuple[timedelta, ...]) -> None:
    assert parse_schedule(text) == expected


def test_parse_schedule_reports_the_bad_step() -> None:
    with pytest.raises(ValueError, match="'soon'"):
        parse_schedule("1m,soon,2h")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(days=2), "2d"),
        (timedelta(hours=36), "36h"),
        (timedelta(hours=2), "2h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=61), "61s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=250), "0.25s"),
        (timedelta(microseconds=1), "0.000001s"),
        (timedelta(0), "0s"),
        # Formerly "1.23457e+06s": six significant digits, and not parseable.
        (timedelta(seconds=1_234_567), "1234567s"),
        (timedelta(seconds=1_000_001), "1000001s"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_format_then_parse_round_trips(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
