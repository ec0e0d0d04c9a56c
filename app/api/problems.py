"""RFC 9457 problem details for every error the API answers, and the request size cap."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import HeraldError

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
    503: ("Service unavailable", "service-unavailable"),
}


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
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _pointer(parts: Sequence[int | str]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _validation_problem(error: RequestValidationError) -> JSONResponse:
    errors = []
    for item in error.errors():
        location, *path = item.get("loc", ("body",))
        errors.append(
            ProblemFieldError(location=str(location), pointer=_pointer(path), message=item["msg"])
        )
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
    return problem_response(error.status, error.detail, errors=errors or None)


async def _on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return _validation_problem(error)


async def _on_http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    headers = dict(error.headers) if error.headers else None
    return problem_response(error.status_code, detail, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HeraldError, _on_herald_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)


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
    for status in (400, 401, 403, 404, 409, 413, 422)
}
