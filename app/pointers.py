"""JSON Pointers (RFC 6901): how problem answers name the part of a document that is wrong."""

from collections.abc import Iterable


def escape(token: str) -> str:
    # "~" first, or the "~" that escaping "/" introduces would be escaped again.
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def child(pointer: str, key: str | int) -> str:
    """The pointer to member ``key`` (an object key or an array index) of ``pointer``."""
    return f"{pointer}/{escape(str(key))}"


def join(parts: Iterable[str | int], *, base: str = "") -> str:
    pointer = base
    for part in parts:
        pointer = child(pointer, part)
    return pointer


def tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens of ``pointer``; ValueError when it is not a pointer."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON Pointer: it must be empty or start with '/'")
    return [unescape(token) for token in pointer[1:].split("/")]
