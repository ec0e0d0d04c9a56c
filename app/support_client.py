"""A small typed client for the Herald REST API, used by the support commands of ``herald``.

Every failure surfaces as one of two exceptions: :class:`ApiError` for an answer that is an
error (an RFC 9457 problem, usually), :class:`ApiUnreachable` when no answer came at all.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict, cast
from urllib.parse import quote

import httpx

from app import __version__

JsonObject = dict[str, Any]
Params = Mapping[str, str | int | None]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivering = "delivering"
    succeeded = "succeeded"
    dead = "dead"
    held = "held"


class DeadReason(StrEnum):
    exhausted = "exhausted"
    gone = "gone"
    circuit_open = "circuit_open"


class ErrorClass(StrEnum):
    timeout = "timeout"
    connect = "connect"
    dns = "dns"
    tls = "tls"
    blocked = "blocked"
    http_status = "http_status"


class Job(TypedDict):
    id: str
    kind: str
    status: JobStatus
    total: int
    done: int
    failed: int
    created_at: str
    updated_at: str
    error: NotRequired[str | None]


@dataclass
class ApiError(Exception):
    """The API answered with an error status."""

    status: int
    title: str
    detail: str

    def __str__(self) -> str:
        head = f"{self.status} {self.title}"
        return f"{head}: {self.detail}" if self.detail else head

    @classmethod
    def of(cls, response: httpx.Response) -> "ApiError":
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "title" in body:
            return cls(response.status_code, str(body["title"]), str(body.get("detail") or ""))
        # Not a problem document: a proxy's page, or not Herald at all.
        first_line = next(iter(response.text.strip().splitlines()), "")
        return cls(response.status_code, response.reason_phrase or "Error", first_line[:200])


@dataclass
class ApiUnreachable(Exception):
    """No answer: refused, timed out, name not resolved, not a usable URL."""

    url: str
    reason: str

    def __str__(self) -> str:
        return f"cannot reach the Herald API at {self.url}: {self.reason}"


class Page(TypedDict):
    data: list[JsonObject]
    next_cursor: str | None
    has_more: bool


class HeraldClient:
    """Synchronous access to the routes support staff need, over one ``httpx.Client``."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": f"herald-cli/{__version__}", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> "HeraldClient":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Any:
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request(method, path, params=query, json=body)
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise ApiUnreachable(self.base_url, str(error) or type(error).__name__) from error
        if response.is_error:
            raise ApiError.of(response)
        try:
            return response.json()
        except ValueError as error:
            raise ApiError(
                response.status_code, "Unexpected answer", "the response is not JSON"
            ) from error

    def collect(self, path: str, params: Params, *, follow: bool) -> tuple[list[JsonObject], bool]:
        """The items of one page, or of every page with ``follow``; and whether more remain."""
        items: list[JsonObject] = []
        cursor: str | None = None
        while True:
            page = cast(Page, self._request("GET", path, params={**params, "cursor": cursor}))
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if not page["has_more"] or cursor is None:
                return items, False
            if not follow:
                return items, True

    def delivery(self, delivery_id: str) -> JsonObject:
        """The delivery with its ``attempt_log``, oldest attempt first."""
        return cast(JsonObject, self._request("GET", f"/v1/deliveries/{_segment(delivery_id)}"))

    def resend(self, delivery_id: str) -> JsonObject:
        path = f"/v1/deliveries/{_segment(delivery_id)}/resend"
        return cast(JsonObject, self._request("POST", path))

    def reset_circuit(self, endpoint_id: str) -> JsonObject:
        path = f"/v1/endpoints/{_segment(endpoint_id)}/circuit/reset"
        return cast(JsonObject, self._request("POST", path))

    def start_dlq_replay(self, where: Mapping[str, str | None]) -> Job:
        body = {name: value for name, value in where.items() if value is not None}
        return cast(Job, self._request("POST", "/v1/dlq/replay", body=body))

    def job(self, job_id: str) -> Job:
        return cast(Job, self._request("GET", f"/v1/jobs/{_segment(job_id)}"))


def _segment(value: str) -> str:
    """An id as one path segment: ``../x`` must not address another route."""
    return quote(value, safe="")
