"""Requests whose URL holds a NUL character, answered before any route sees them.

PostgreSQL cannot compare text with NUL, so such a path id or query value would turn a plain
lookup into a database error. No id holds NUL, so the path is simply not found.
"""

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from app import pointers
from app.api.problems import ProblemFieldError, problem_response
from app.storable import NUL_MESSAGE


class NulInUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if "\x00" in scope["path"]:
                response = problem_response(404, "nothing has a NUL character in its path")
                await response(scope, receive, send)
                return
            name = _query_name_with_nul(scope.get("query_string", b""))
            if name is not None:
                pointer = pointers.child("", name)
                error = ProblemFieldError(location="query", pointer=pointer, message=NUL_MESSAGE)
                response = problem_response(422, f"query {pointer}: {NUL_MESSAGE}", errors=[error])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _query_name_with_nul(query_string: bytes) -> str | None:
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None
    # Decoded as Starlette decodes it for the routes.
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name
    return None
