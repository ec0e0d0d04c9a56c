"""app.headers: validation, redaction and redaction-aware merging of custom headers."""

import pytest

from app.errors import Invalid
from app.headers import (
    MAX_HEADER_NAME_LENGTH,
    MAX_HEADER_VALUE_LENGTH,
    MAX_HEADERS,
    REDACTED,
    is_reserved,
    is_sensitive,
    merge_redacted,
    redact,
    validate_custom_headers,
)


def pointer_of(headers: dict[str, str], *, pointer: str = "/headers") -> str:
    with pytest.raises(Invalid) as caught:
        validate_custom_headers(headers, pointer=pointer)
    assert caught.value.status == 422
    assert len(caught.value.errors) == 1
    return caught.value.errors[0].pointer


def message_of(headers: dict[str, str]) -> str:
    with pytest.raises(Invalid) as caught:
        validate_custom_headers(headers)
    return caught.value.errors[0].message


def test_accepts_ordinary_headers() -> None:
    validate_custom_headers(
        {
            "Authorization": "Bearer abc.def",
            "X-Tenant": "acme",
            "x_custom~id": "a\tb",
            "A" * MAX_HEADER_NAME_LENGTH: "v" * MAX_HEADER_VALUE_LENGTH,
            "X-Unicode": "café",
        }
    )
    validate_custom_headers({})
    validate_custom_headers({f"X-H{i}": "v" for i in range(MAX_HEADERS)})


@pytest.mark.parametrize(
    "name",
    [
        "Content-Type",
        "content-length",
        "HOST",
        "User-Agent",
        "Transfer-Encoding",
        "TE",
        "Connection",
        "webhook-id",
        "Webhook-Signature",
        "WEBHOOK-TIMESTAMP",
        "webhook-anything-else",
    ],
)
def test_reserved_names_rejected(name: str) -> None:
    assert is_reserved(name)
    assert pointer_of({"X-Ok": "1", name: "value"}) == f"/headers/{name}"
    assert message_of({name: "value"}) == "is reserved and set by Herald"


@pytest.mark.parametrize("name", ["X-Webhook-Id", "Webhooks", "Hosting", "X-Content-Type"])
def test_names_merely_resembling_reserved_ones_are_allowed(name: str) -> None:
    assert not is_reserved(name)
    validate_custom_headers({name: "value"})


@pytest.mark.parametrize(
    "name",
    [
        "",
        "X Header",
        "X:Header",
        "X-Héader",
        "X(Header)",
        'X"Q"',
        "X-Header\r\n",
        "X-Header\n",  # "$" in the pattern used to accept a trailing newline
        "A" * (MAX_HEADER_NAME_LENGTH + 1),
    ],
)
def test_invalid_names_rejected(name: str) -> None:
    assert message_of({name: "value"}) == "is not a valid header name"


def test_pointer_escapes_json_pointer_characters() -> None:
    assert pointer_of({"a/b": "1"}) == "/headers/a~1b"
    assert pointer_of({"X~A": "1", "x~a": "2"}) == "/headers/x~0a"


def test_pointer_prefix_is_configurable() -> None:
    assert pointer_of({"Host": "x"}, pointer="/endpoints/0/headers") == "/endpoints/0/headers/Host"


@pytest.mark.parametrize(
    "value",
    ["a\r\nX-Injected: 1", "a\nb", "a\rb", "nul\x00", "bell\x07", "del\x7f", "\x1b[31m"],
)
def test_control_characters_in_values_rejected(value: str) -> None:
    assert pointer_of({"X-Ok": "fine", "X-Bad": value}) == "/headers/X-Bad"
    assert message_of({"X-Bad": value}) == "value contains control characters"


@pytest.mark.parametrize("value", [" lead", "trail ", "\ttab"])
def test_surrounding_whitespace_rejected(value: str) -> None:
    assert message_of({"X-Bad": value}) == "value has leading or trailing whitespace"


def test_too_long_value_rejected() -> None:
    assert pointer_of({"X-Long": "v" * (MAX_HEADER_VALUE_LENGTH + 1)}) == "/headers/X-Long"


def test_too_many_headers_rejected() -> None:
    headers = {f"X-H{i}": "v" for i in range(MAX_HEADERS + 1)}
    assert pointer_of(headers) == "/headers"
    assert message_of(headers) == f"at most {MAX_HEADERS} headers are allowed"


def test_duplicate_names_differing_in_case_rejected() -> None:
    headers = {"X-Tenant": "a", "x-tenant": "b"}
    assert pointer_of(headers) == "/headers/x-tenant"
    assert message_of(headers) == "repeats a header name (names are case-insensitive)"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "X-Api-Key",
        "X-Auth-Token",
        "client_secret",
        "Cookie",
        "X-Password",
    ],
)
def test_sensitive_names_are_redacted(name: str) -> None:
    assert is_sensitive(name)
    headers = {name: "s3cret-value", "X-Tenant": "acme"}
    assert redact(headers) == {name: REDACTED, "X-Tenant": "acme"}
    assert headers[name] == "s3cret-value"


@pytest.mark.parametrize("name", ["X-Tenant", "Accept", "X-Request-Id", "X-Region"])
def test_ordinary_names_are_not_redacted(name: str) -> None:
    assert not is_sensitive(name)
    assert redact({name: "visible"}) == {name: "visible"}


def test_merge_redacted_restores_stored_value_where_marker_sent_back() -> None:
    stored = {"authorization": "Bearer s3cret", "X-Api-Key": "k-123", "X-Tenant": "old"}
    new = {"Authorization": REDACTED, "X-Api-Key": "k-456", "X-Tenant": "acme"}
    assert merge_redacted(new, stored) == {
        "Authorization": "Bearer s3cret",
        "X-Api-Key": "k-456",
        "X-Tenant": "acme",
    }


def test_merge_redacted_drops_headers_not_sent() -> None:
    stored = {"Authorization": "Bearer s3cret", "X-Tenant": "old"}
    assert merge_redacted({"X-Tenant": "new"}, stored) == {"X-Tenant": "new"}
    assert merge_redacted({}, stored) == {}


def test_merge_redacted_round_trips_what_redact_showed() -> None:
    stored = {"Authorization": "Bearer s3cret", "X-Tenant": "acme"}
    assert merge_redacted(redact(stored), stored) == stored


@pytest.mark.parametrize("stored", [{}, {"X-Other": "v"}])
def test_merge_redacted_rejects_a_marker_with_nothing_to_keep(stored: dict[str, str]) -> None:
    with pytest.raises(Invalid, match="redaction marker") as caught:
        merge_redacted({"X-Ok": "v", "Authorization": REDACTED}, stored)
    assert caught.value.errors[0].pointer == "/headers/Authorization"


def test_merge_redacted_marker_pointer_is_escaped_and_prefixable() -> None:
    with pytest.raises(Invalid) as caught:
        merge_redacted({"a/b~token": REDACTED}, {}, pointer="/endpoints/0/headers")
    assert caught.value.errors[0].pointer == "/endpoints/0/headers/a~1b~0token"
