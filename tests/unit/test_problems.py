"""app.api.problems: database errors caused by input, and the catch-all 500."""

import json
import logging

import httpx
import pytest
from asyncpg.exceptions import (
    CharacterNotInRepertoireError,
    DataError,
    InvalidTextRepresentationError,
    StringDataRightTruncationError,
    UniqueViolationError,
    UntranslatableCharacterError,
)
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, StatementError

from app.api.problems import (
    UNSTORABLE_DETAIL,
    UnexpectedErrors,
    install_problem_handlers,
    problem_response,
    unstorable_value_detail,
)


def database_error(cause: BaseException) -> DBAPIError:
    """Shaped as SQLAlchemy raises it: the driver's adapted error wraps asyncpg's."""
    adapted = Exception("adapted driver error")
    adapted.__cause__ = cause
    return DBAPIError("INSERT INTO t VALUES ($1)", {}, adapted)


def encoding_error() -> DataError:
    error = DataError("invalid input for query argument $1")
    error.__cause__ = UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
    return error


@pytest.mark.parametrize(
    "cause",
    [
        CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00'),
        UntranslatableCharacterError("unsupported Unicode escape sequence"),
        InvalidTextRepresentationError("invalid input syntax for type json"),
        encoding_error(),
    ],
)
def test_unstorable_values_are_named(cause: BaseException) -> None:
    assert unstorable_value_detail(database_error(cause)) == UNSTORABLE_DETAIL


def test_other_data_errors_are_input_errors_too() -> None:
    error = database_error(StringDataRightTruncationError("value too long"))
    assert unstorable_value_detail(error) == "the request contains a value PostgreSQL cannot store"


def test_other_database_errors_are_not_the_request_s_fault() -> None:
    assert unstorable_value_detail(database_error(UniqueViolationError("duplicate"))) is None


def test_serialisation_errors_before_the_database_are_input_errors() -> None:
    failed_bind = StatementError("bind failed", "INSERT", {}, ValueError("Out of range float"))
    assert unstorable_value_detail(failed_bind) == UNSTORABLE_DETAIL
    other = StatementError("bind failed", "INSERT", {}, TypeError("not serialisable"))
    assert unstorable_value_detail(other) is None


def failing_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(UnexpectedErrors)

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    @app.get("/nul")
    async def nul() -> None:
        raise database_error(CharacterNotInRepertoireError("0x00"))

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise database_error(UniqueViolationError("duplicate key"))

    return app


async def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=failing_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


@pytest.mark.parametrize("path", ["/bug", "/duplicate"])
async def test_unexpected_errors_are_a_logged_problem_500(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="herald.api"):
        response = await get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://herald.dev/problems/internal-error"
    [record] = [r for r in caplog.records if r.name == "herald.api"]
    assert record.exc_info is not None
    assert f"GET {path}" in record.getMessage()


async def test_a_value_postgresql_refused_is_a_422() -> None:
    response = await get("/nul")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == UNSTORABLE_DETAIL


def test_problem_documents_can_quote_lone_surrogates() -> None:
    response = problem_response(422, "body /a\ud800: is bad")
    assert json.loads(bytes(response.body))["detail"] == "body /a\ud800: is bad"
