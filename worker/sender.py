"""One HTTP attempt with aiohttp: POST, read a bounded response, classify what went wrong."""

import asyncio
import ssl
import time
from dataclasses import dataclass

import aiohttp

from worker.retry import ErrorClass, Outcome
from worker.ssrf import is_blocked_error

RESPONSE_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    response_headers: dict[str, str] | None
    response_body: str | None
    duration_ms: int
    error_detail: str | None = None


def classify(error: BaseException) -> ErrorClass:
    if is_blocked_error(error) is not None:
        return "blocked"
    if isinstance(error, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls"
    return "connect"


def _error_text(error: BaseException) -> str:
    return _storable(f"{type(error).__name__}: {error}"[:1000])


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a receiver's bytes must not make the log unwritable.
    return text.replace("\x00", "\ufffd")


async def _read_bounded(response: aiohttp.ClientResponse) -> str:
    if response.content_length is not None and response.content_length <= RESPONSE_BODY_LIMIT:
        return _storable((await response.read()).decode("utf-8", errors="replace"))
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_BODY_LIMIT:
            break
    return _storable(b"".join(chunks)[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace"))


async def send(
    session: aiohttp.ClientSession, *, url: str, headers: dict[str, str], body: bytes
) -> AttemptResult:
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            text = await _read_bounded(response)
            status = response.status
            outcome = Outcome(
                status=status,
                error_class=None if 200 <= status < 300 else "http_status",
                retry_after=response.headers.get("retry-after"),
            )
            return AttemptResult(
                outcome=outcome,
                response_headers={str(k): _storable(v) for k, v in response.headers.items()},
                response_body=text,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
        return AttemptResult(
            outcome=Outcome(status=None, error_class=classify(error)),
            response_headers=None,
            response_body=None,
            duration_ms=round((time.perf_counter() - started) * 1000),
            error_detail=_error_text(error),
        )
