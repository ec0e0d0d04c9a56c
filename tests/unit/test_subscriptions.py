from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.subscriptions import (
    EVENT_TYPE_MAX_LENGTH,
    EVENT_TYPE_PATTERN,
    MAX_PATTERNS,
    SubscriptionError,
    any_matches,
    candidate_patterns,
    is_event_type,
    pattern_matches,
    validate_patterns,
)

# --- event type names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "invoice",
        "invoice.paid",
        "invoice.line.added",
        "Invoice.PAID",
        "user_2.sign-up",
        "0.1.2",
        "-._",
        "a" * EVENT_TYPE_MAX_LENGTH,
        ".".join(["a"] * (EVENT_TYPE_MAX_LENGTH // 2)),
    ],
)
def test_valid_event_types(name: str) -> None:
    assert is_event_type(name)
    assert re.fullmatch(EVENT_TYPE_PATTERN, name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        ".invoice",
        "invoice.",
        "invoice..paid",
        "invoice paid",
        "invoice/paid",
        "invoice.*",
        "*",
        "facture.payée",
        "invoice.paid\n",
        "a" * (EVENT_TYPE_MAX_LENGTH + 1),
    ],
)
def test_invalid_event_types(name: str) -> None:
    assert not is_event_type(name)


# --- validate_patterns ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "normalised"),
    [
        (["invoice.paid"], ["invoice.paid"]),
        (["*"], ["*"]),
        (["invoice.*", "user.created"], ["invoice.*", "user.created"]),
        (["b", "a", "b", "*", "a"], ["b", "a", "*"]),
        (("invoice.*",), ["invoice.*"]),
        (["a.b.c.*"], ["a.b.c.*"]),
        (["a" * (EVENT_TYPE_MAX_LENGTH - 2) + ".*"], ["a" * (EVENT_TYPE_MAX_LENGTH - 2) + ".*"]),
        ([f"type{index}" for index in range(MAX_PATTERNS)], None),
    ],
)
def test_validate_patterns_accepts_and_deduplicates(
    patterns: list[str], normalised: list[str] | None
) -> None:
    assert validate_patterns(patterns) == (normalised or list(patterns))


@pytest.mark.parametrize(
    ("patterns", "index", "message"),
    [
        ([], None, "at least one pattern"),
        ("invoice.paid", None, "must be a list of patterns"),
        (["a"] * (MAX_PATTERNS + 1), None, f"at most {MAX_PATTERNS} patterns"),
        ([""], 0, "subscriptions[0]: '' is not a valid pattern"),
        (["ok", "invoice.**"], 1, "subscriptions[1]: 'invoice.**' is not a valid pattern"),
        (["ok", "ok.*", "*.paid"], 2, "subscriptions[2]: '*.paid'"),
        (["invoice.*.paid"], 0, "'invoice.*.paid' is not a valid pattern"),
        (["invoice*"], 0, "'invoice*' is not a valid pattern"),
        ([".*"], 0, "'.*' is not a valid pattern"),
        (["invoice..*"], 0, "'invoice..*' is not a valid pattern"),
        (["**"], 0, "'**' is not a valid pattern"),
        (["invoice paid"], 0, "'invoice paid' is not a valid pattern"),
        ([" invoice.paid"], 0, "is not a valid pattern"),
        (["a", 3], 1, "subscriptions[1]: pattern must be a string, not int"),
        (["a" * (EVENT_TYPE_MAX_LENGTH + 1)], 0, "at most 128 characters"),
        (["a" * (EVENT_TYPE_MAX_LENGTH - 1) + ".*"], 0, "at most 128 characters"),
    ],
)
def test_validate_patterns_rejects(patterns: Any, index: int | None, message: str) -> None:
    with pytest.raises(SubscriptionError) as raised:
        validate_patterns(patterns)
    assert raised.value.index == index
    assert message in raised.value.message
    assert message in str(raised.value)


def test_subscription_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"subscriptions\[0\]"):
        validate_patterns(["bad pattern"])


# --- matching ---------------------------------------------------------------------------

MATCH_CASES: list[tuple[str, str, bool]] = [
    ("*", "invoice", True),
    ("*", "invoice.line.added", True),
    ("invoice.paid", "invoice.paid", True),
    ("invoice.paid", "invoice.paid.late", False),
    ("invoice.paid", "invoice", False),
    ("invoice.paid", "Invoice.paid", False),
    ("invoice.*", "invoice.paid", True),
    ("invoice.*", "invoice.line.added", True),
    ("invoice.*", "invoice", False),
    ("invoice.*", "invoices.x", False),
    ("invoice.*", "invoiceX", False),
    ("invoice.*", "user.invoice.paid", False),
    ("invoice.line.*", "invoice.line.added", True),
    ("invoice.line.*", "invoice.paid", False),
    ("invoice.line.*", "invoice.line", False),
    # Invalid event types are matched by nothing, not even "*".
    ("*", "", False),
    ("*", "invoice.", False),
    ("invoice.*", "invoice.", False),
    ("invoice.*", "invoice..x", False),
    # Invalid patterns never match a valid type.
    ("invoice.**", "invoice.paid", False),
    ("", "invoice", False),
    (".*", "invoice", False),
]


@pytest.mark.parametrize(("pattern", "event_type", "expected"), MATCH_CASES)
def test_pattern_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert pattern_matches(pattern, event_type) is expected
    assert (pattern in candidate_patterns(event_type)) is expected


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["invoice.*", "user.created"], "user.created", True),
        (["invoice.*", "user.created"], "invoice.paid", True),
        (["invoice.*", "user.created"], "user.deleted", False),
        (["*"], "anything.at.all", True),
        ([], "invoice.paid", False),
    ],
)
def test_any_matches(patterns: list[str], event_type: str, expected: bool) -> None:
    assert any_matches(patterns, event_type) is expected


@pytest.mark.parametrize(
    ("event_type", "candidates"),
    [
        ("invoice", ["*", "invoice"]),
        ("invoice.paid", ["*", "invoice.*", "invoice.paid"]),
        (
            "invoice.line.added",
            ["*", "invoice.*", "invoice.line.*", "invoice.line.added"],
        ),
        ("", []),
        ("invoice.", []),
        ("not valid", []),
    ],
)
def test_candidate_patterns(event_type: str, candidates: list[str]) -> None:
    assert candidate_patterns(event_type) == candidates


def test_candidate_patterns_are_valid_patterns() -> None:
    longest = ".".join(["a"] * (EVENT_TYPE_MAX_LENGTH // 2))
    candidates = candidate_patterns(longest)
    assert len(candidates) == EVENT_TYPE_MAX_LENGTH // 2 + 1
    for candidate in candidates:
        assert validate_patterns([candidate]) == [candidate]


# --- properties: SQL pre-selection agrees with pattern_matches -----------------------------

# A tiny alphabet makes shared prefixes, and so near misses, common.
segments = st.text(alphabet="ab_-", min_size=1, max_size=3)
event_types = st.lists(segments, min_size=1, max_size=5).map(".".join)
patterns = st.one_of(
    st.just("*"),
    event_types,
    event_types.map(lambda name: name + ".*"),
)


@settings(max_examples=500, deadline=None)
@given(pattern=patterns, event_type=event_types)
def test_candidates_agree_with_pattern_matches(pattern: str, event_type: str) -> None:
    assert validate_patterns([pattern]) == [pattern]
    assert pattern_matches(pattern, event_type) is (pattern in candidate_patterns(event_type))


@settings(max_examples=300, deadline=None)
@given(event_type=event_types)
def test_every_candidate_matches(event_type: str) -> None:
    candidates = candidate_patterns(event_type)
    assert len(set(candidates)) == len(candidates)
    assert all(pattern_matches(candidate, event_type) for candidate in candidates)


@settings(max_examples=300, deadline=None)
@given(pattern=patterns | st.text(max_size=8), event_type=event_types | st.text(max_size=8))
def test_agreement_holds_for_arbitrary_strings(pattern: str, event_type: str) -> None:
    assert pattern_matches(pattern, event_type) is (pattern in candidate_patterns(event_type))
