"""RFC 9457 problem details for every error the API answers, and the request size cap."""

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from asyncpg.exceptions import (
    CharacterNotInRepertoireError,
    DataError,
    InvalidTextRepresentationError,
    UntranslatableCharacterError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, StatementError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import pointers
from app.errors import HeraldError

log = logging.getLogger("herald.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://herald.dev/problems/"

_TITLES = {
    400: ("Bad request", "bad-request"),
    401: ("Unauthorized", "unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    409: ("Conflict", "conflict"),
    413: ("Content too large", "content-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Validation failed", "validation-failed"),
    500: ("Internal server error", "internal-error"),
    503: ("Service unavailable", "service-unavailable"),
}

UNSTORABLE_DETAIL = (
    "the request contains a value PostgreSQL cannot store: "
    "NUL character, lone surrogate or non-finite number"
)
# What PostgreSQL (or asyncpg, encoding a parameter) says about such values.
_UNSTORABLE_CAUSES = (
    CharacterNotInRepertoireError,  # NUL in text
    UntranslatableCharacterError,  # \u0000 in jsonb
    InvalidTextRepresentationError,  # lone surrogate escape, NaN or Infinity in jsonb
    UnicodeError,  # a lone surrogate cannot be encoded as UTF-8
)


class ProblemFieldError(BaseModel):
    location: str
    pointer: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] | None = None


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Sequence[ProblemFieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title, slug = _TITLES.get(status, ("Error", "error"))
    problem = Problem(
        type=PROBLEM_TYPE_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        errors=list(errors) if errors is not None else None,
    )
    return ProblemResponse(
        problem.model_dump(exclude_none=True), status_code=status, headers=headers
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE

    def render(self, content: Any) -> bytes:
        # ASCII escapes: a pointer or detail may quote a lone surrogate from the request,
        # which UTF-8 cannot encode; escaped, it reads back exactly as the client sent it.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = current.orig if isinstance(current, StatementError) else None
        current = wrapped or current.__cause__ or current.__context__


def unstorable_value_detail(error: StatementError) -> str | None:
    """The 422 detail when ``error`` was caused by a value from the request, else None.

    Input checks reject such values with a pointer before they reach the database; this is
    the net under every path those checks do not cover.
    """
    causes = list(_causes(error))
    if any(isinstance(cause, _UNSTORABLE_CAUSES) for cause in causes):
        return UNSTORABLE_DETAIL
    if isinstance(error, DBAPIError):
        if any(isinstance(cause, DataError) for cause in causes):
            return "the request contains a value PostgreSQL cannot store"
        return None
    # Not from the database: binding a parameter failed while serialising it.
    if isinstance(error.orig, ValueError):
        return UNSTORABLE_DETAIL
    return None


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    main, _, subtype = media_type.partition("/")
    return main == "application" and (subtype == "json" or subtype.endswith("+json"))


def _json_syntax_problem(error: RequestValidationError) -> JSONResponse | None:
    """400 for a body that is not JSON at all: a character offset is no JSON Pointer."""
    for item in error.errors():
        if item.get("type") != "json_invalid":
            continue
        position = item["loc"][-1] if isinstance(item["loc"][-1], int) else 0
        document = error.body if isinstance(error.body, str) else ""
        line = document.count("\n", 0, position) + 1
        column = position - document.rfind("\n", 0, position)
        reason = item.get("ctx", {}).get("error", "syntax error")
        return problem_response(
            400,
            f"the body is not valid JSON: {reason}: line {line} column {column} (char {position})",
        )
    return None


def _media_type_problem(request: Request, error: RequestValidationError) -> JSONResponse | None:
    """415 when a body arrived unparsed because its content type is not JSON."""
    content_type = request.headers.get("content-type")
    if not isinstance(error.body, bytes | bytearray) or not error.body or _is_json(content_type):
        return None
    sent = f"'{content_type}'" if content_type else "no content type"
    return problem_response(415, f"the body must be sent as 'application/json', not with {sent}")


def _field_error(item: Any) -> ProblemFieldError:
    location, *path = item.get("loc", ("body",))
    message = item["msg"]
    if path and path[-1] == "[key]":
        # pydantic reports a bad object key as ("metadata", "the key", "[key]").
        path, message = path[:-1], f"key {message}"
    return ProblemFieldError(location=str(location), pointer=pointers.join(path), message=message)


def _validation_problem(request: Request, error: RequestValidationError) -> JSONResponse:
    special = _json_syntax_problem(error) or _media_type_problem(request, error)
    if special is not None:
        return special
    errors = [_field_error(item) for item in error.errors()]
    first = errors[0] if errors else None
    detail = (
        f"{first.location} {first.pointer or '(document)'}: {first.message}"
        if first
        else "the request is not valid"
    )
    return problem_response(422, detail, errors=errors)


async def _on_herald_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HeraldError)
    errors = [
        ProblemFieldError(location=item.location, pointer=item.pointer, message=item.message)
        for item in error.errors
    ]
    return problem_response(
        error.status, error.detail, errors=errors or None, headers=error.headers or None
    )


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return _validation_problem(request, error)


async def _on_http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    headers = dict(error.headers) if error.headers else None
    return problem_response(error.status_code, detail, headers=headers)


async def _on_database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StatementError)
    detail = unstorable_value_detail(error)
    if detail is None:
        return _internal_error(request.method, request.url.path, error)
    # Worth a warning: an input check that would have pointed at the value is missing.
    log.warning("%s %s: %s (%s)", request.method, request.url.path, detail, error.orig)
    return problem_response(422, detail)


def _internal_error(method: str, path: str, error: BaseException) -> JSONResponse:
    log.error("%s %s failed", method, path, exc_info=error)
    return problem_response(500, "the server failed to answer this request; it has been logged")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HeraldError, _on_herald_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(StatementError, _on_database_error)


class UnexpectedErrors:
    """The catch-all: any other exception becomes a logged problem+json 500.

    A middleware rather than ``add_exception_handler(Exception, ...)``: Starlette re-raises
    after such a handler answers, so the server would log every traceback a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started:
                # Too late for a problem document; let the server abort the response.
                raise
            response = _internal_error(scope["method"], scope["path"], error)
            await response(scope, receive, send)


class BodySizeLimit:
    """Answers 413 before reading more than ``max_bytes`` of any request body."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, self._detail(), headers={"connection": "close"})
        await response(scope, receive, send)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": _TITLES[status][0],
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 500)
}
