"""Prefixed, time-sortable identifiers (``ep_01J…``).

The body is a ULID: 48 bits of milliseconds then 80 random bits in Crockford base32,
so ids sort by creation time and cursor pagination can order by id alone.
"""

import os
import time
from typing import Literal

Prefix = Literal["ten", "key", "ep", "evt", "dlv", "att", "job", "sec"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY_LENGTH = 26


def _encode(value: int) -> str:
    chars = []
    for _ in range(_BODY_LENGTH):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: Prefix, *, at_ms: int | None = None) -> str:
    milliseconds = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode((milliseconds << 80) | randomness)}"


def lower_bound_id(prefix: Prefix, at_ms: int) -> str:
    """The smallest id that could have been made at ``at_ms``: for time-range queries on ids."""
    return f"{prefix}_{_encode(at_ms << 80)}"


def looks_like(prefix: Prefix, value: str) -> bool:
    head, _, body = value.partition("_")
    return head == prefix and len(body) == _BODY_LENGTH and all(c in _ALPHABET for c in body)
