"""Values that PostgreSQL refuses: checked on input so the answer can point at them.

``text`` columns cannot hold NUL, ``jsonb`` rejects the ``\\u0000`` escape, UTF-8 cannot encode
a lone surrogate (Python's json module decodes ``"\\ud800"`` into one), and JSON has no NaN or
Infinity (Python's json module accepts them, and reads ``1e400`` as infinity). Integers beyond
64 bits are refused too: JSON allows them, but the encoder cannot write them back exactly.
"""

import math
import re
from collections.abc import Mapping

from app import pointers

_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_MESSAGE = "must not contain NUL characters (\\u0000)"
SURROGATE_MESSAGE = "must not contain lone surrogates (\\ud800-\\udfff); they are not valid Unicode"
NON_FINITE_MESSAGE = "must be a finite number (JSON has no NaN or Infinity)"
# What 64-bit JSON implementations (Herald's encoder among them) carry exactly.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**64 - 1
INTEGER_RANGE_MESSAGE = f"must be an integer from {MIN_INTEGER} to {MAX_INTEGER}"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    if _SURROGATE.search(value):
        return SURROGATE_MESSAGE
    return None


def scalar_problem(value: object) -> str | None:
    """Why a JSON scalar cannot be stored in jsonb, or None (containers are not inspected)."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE_MESSAGE
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        return INTEGER_RANGE_MESSAGE
    return None


def document_problem(document: object, pointer: str) -> tuple[str, str] | None:
    """The (pointer, message) of the first value or key of ``document`` jsonb cannot store.

    Iterative, so a deeply nested document cannot exhaust Python's recursion limit; the
    reported pointer is ``pointer`` extended into the document.
    """
    pending: list[tuple[object, str, object]] = [(document, pointer, None)]
    while pending:
        node, where, key = pending.pop()
        if isinstance(key, str) and (problem := text_problem(key)) is not None:
            return where, f"key {problem}"
        if isinstance(node, Mapping):
            children: list[tuple[object, object]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            if (problem := scalar_problem(node)) is not None:
                return where, problem
            continue
        # Reversed so that the first problem in document order is the one reported.
        pending.extend(
            (value, pointers.child(where, str(name)), name) for name, value in reversed(children)
        )
    return None
