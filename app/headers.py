"""Custom endpoint headers: what a tenant may set, and what the API and logs must hide."""

import re
from collections.abc import Mapping

from app import pointers
from app.errors import Invalid

MAX_HEADERS = 32
MAX_HEADER_NAME_LENGTH = 128
MAX_HEADER_VALUE_LENGTH = 4096
REDACTED = "[REDACTED]"

# RFC 9110 token characters. Use fullmatch: "$" alone also matches before a trailing "\n".
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_RESERVED_EXACT = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "user-agent",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "expect",
    }
)
_RESERVED_PREFIXES = ("webhook-",)
_SENSITIVE_FRAGMENTS = ("authorization", "token", "secret", "key", "cookie", "password")


def is_reserved(name: str) -> bool:
    lowered = name.lower()
    return lowered in _RESERVED_EXACT or lowered.startswith(_RESERVED_PREFIXES)


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(fragment in lowered for fragment in _SENSITIVE_FRAGMENTS)


def validate_custom_headers(headers: Mapping[str, str], *, pointer: str = "/headers") -> None:
    if len(headers) > MAX_HEADERS:
        raise Invalid(pointer, f"at most {MAX_HEADERS} headers are allowed")
    seen: set[str] = set()
    for name, value in headers.items():
        where = pointers.child(pointer, name)
        if not name or len(name) > MAX_HEADER_NAME_LENGTH or not _TOKEN.fullmatch(name):
            raise Invalid(where, "is not a valid header name")
        if is_reserved(name):
            raise Invalid(where, "is reserved and set by Herald")
        if name.lower() in seen:
            raise Invalid(where, "repeats a header name (names are case-insensitive)")
        seen.add(name.lower())
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            raise Invalid(where, f"value is longer than {MAX_HEADER_VALUE_LENGTH} characters")
        if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in value):
            raise Invalid(where, "value contains control characters")
        if value != value.strip():
            raise Invalid(where, "value has leading or trailing whitespace")


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if is_sensitive(name) else value for name, value in headers.items()}


def merge_redacted(
    new: Mapping[str, str], stored: Mapping[str, str], *, pointer: str = "/headers"
) -> dict[str, str]:
    """Keep the stored value where a client sent back the redaction marker it was shown.

    A marker for a header that has no stored value would store the marker itself as the
    value, and every delivery would then send it: that is an error at the header's pointer.
    """
    stored_by_name = {name.lower(): value for name, value in stored.items()}
    merged = {}
    for name, value in new.items():
        if value == REDACTED:
            if name.lower() not in stored_by_name:
                raise Invalid(
                    pointers.child(pointer, name),
                    f"is the redaction marker {REDACTED} but this endpoint has no stored "
                    "value for the header to keep; send the real value",
                )
            value = stored_by_name[name.lower()]
        merged[name] = value
    return merged
