"""Domain errors raised by services; the API renders them as RFC 9457 problem details.

Services never import FastAPI: they raise these, and ``app.api.problems`` maps each to
its status code and ``application/problem+json`` body.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One invalid input: ``pointer`` is a JSON Pointer into the request body."""

    pointer: str
    message: str
    location: str = "body"


@dataclass
class HeraldError(Exception):
    detail: str
    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail


class NotFound(HeraldError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 404, "Not found", "not-found")


class Conflict(HeraldError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 409, "Conflict", "conflict")


class Forbidden(HeraldError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 403, "Forbidden", "forbidden")


class Unauthorized(HeraldError):
    """No usable credentials; the challenge tells clients how to authenticate (RFC 6750)."""

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        super().__init__(
            detail, 401, "Unauthorized", "unauthorized", headers={"WWW-Authenticate": challenge}
        )


class Invalid(HeraldError):
    """Well-formed JSON that breaks a rule (422), pointing at the offending field."""

    def __init__(self, pointer: str, message: str, *, location: str = "body") -> None:
        super().__init__(
            f"{location} {pointer}: {message}" if pointer else message,
            422,
            "Validation failed",
            "validation-failed",
            [FieldError(pointer, message, location)],
        )
