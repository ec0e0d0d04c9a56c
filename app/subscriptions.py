"""Event-type subscription patterns.

An endpoint subscribes with a list of patterns, each one of:

* an exact event type name: ``invoice.paid``;
* a prefix wildcard ``<prefix>.*``: every type strictly below the prefix, at any depth
  (``invoice.*`` matches ``invoice.paid`` and ``invoice.line.added``, but neither
  ``invoice`` itself nor ``invoices.x``);
* ``*``: every event type.

Event type names are 1 to ``EVENT_TYPE_MAX_LENGTH`` characters of ``[A-Za-z0-9_.-]``,
made of non-empty segments separated by dots. Matching is case-sensitive.

Endpoints are selected in SQL with ``subscriptions && :candidates`` (array overlap, GIN
indexed), where ``candidates = candidate_patterns(event_type)``. That is only correct if
a pattern matches a type exactly when it is one of the type's candidates, so both
functions share one rule, and both treat an invalid event type as matched by nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "EVENT_TYPE_MAX_LENGTH",
    "EVENT_TYPE_PATTERN",
    "MAX_PATTERNS",
    "WILDCARD",
    "SubscriptionError",
    "any_matches",
    "candidate_patterns",
    "is_event_type",
    "pattern_matches",
    "validate_patterns",
]

EVENT_TYPE_MAX_LENGTH: Final = 128
# No lookarounds, so the same string works in pydantic's Rust regex engine and in
# OpenAPI/JSON Schema (ECMA-262); pair it with max_length=EVENT_TYPE_MAX_LENGTH.
EVENT_TYPE_PATTERN: Final = r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$"
MAX_PATTERNS: Final = 64
WILDCARD: Final = "*"
_PREFIX_SUFFIX: Final = ".*"

_EVENT_TYPE: Final = re.compile(EVENT_TYPE_PATTERN)


class SubscriptionError(ValueError):
    """Invalid subscription patterns; `index` is the offending pattern's position, if any."""

    message: str
    index: int | None

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message, index)
        self.message = message
        self.index = index

    def __str__(self) -> str:
        return self.message


def is_event_type(name: str) -> bool:
    # fullmatch, because "$" in the shared pattern would also accept a trailing newline.
    return len(name) <= EVENT_TYPE_MAX_LENGTH and _EVENT_TYPE.fullmatch(name) is not None


def validate_patterns(patterns: Sequence[str]) -> list[str]:
    """Check 1..MAX_PATTERNS patterns; return them deduplicated, first occurrence kept."""
    # A lone string is a Sequence[str] too, and would otherwise be read one letter at a time.
    if isinstance(patterns, str) or not isinstance(patterns, Sequence):
        raise SubscriptionError("subscriptions must be a list of patterns")
    if not patterns:
        raise SubscriptionError("subscriptions must contain at least one pattern")
    if len(patterns) > MAX_PATTERNS:
        raise SubscriptionError(f"subscriptions must contain at most {MAX_PATTERNS} patterns")
    for index, pattern in enumerate(patterns):
        problem = _pattern_problem(pattern)
        if problem is not None:
            raise SubscriptionError(f"subscriptions[{index}]: {problem}", index)
    return list(dict.fromkeys(patterns))


def _pattern_problem(pattern: object) -> str | None:
    if not isinstance(pattern, str):
        return f"pattern must be a string, not {type(pattern).__name__}"
    if len(pattern) > EVENT_TYPE_MAX_LENGTH:
        return f"pattern must be at most {EVENT_TYPE_MAX_LENGTH} characters"
    if pattern == WILDCARD:
        return None
    name = pattern.removesuffix(_PREFIX_SUFFIX)
    if is_event_type(name):
        return None
    return (
        f"{pattern!r} is not a valid pattern: use an event type such as 'invoice.paid', "
        "a prefix such as 'invoice.*', or '*'; names use letters, digits, '_', '-' and "
        "non-empty '.'-separated segments"
    )


def pattern_matches(pattern: str, event_type: str) -> bool:
    if not is_event_type(event_type):
        return False
    if pattern == WILDCARD:
        return True
    if pattern.endswith(_PREFIX_SUFFIX):
        # Keep the dot: "invoice.*" must not match "invoices.x", and since an event type
        # cannot end with a dot, anything after "invoice." is at least one segment.
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def any_matches(patterns: Sequence[str], event_type: str) -> bool:
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


def candidate_patterns(event_type: str) -> list[str]:
    """Every pattern that matches `event_type`, most general first.

    ``candidate_patterns("invoice.line.added")`` is
    ``["*", "invoice.*", "invoice.line.*", "invoice.line.added"]``.
    """
    if not is_event_type(event_type):
        return []
    segments = event_type.split(".")
    prefixes = [".".join(segments[:count]) + _PREFIX_SUFFIX for count in range(1, len(segments))]
    return [WILDCARD, *prefixes, event_type]
