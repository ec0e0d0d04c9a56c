"""A scriptable webhook receiver for end-to-end tests: a real aiohttp server on loopback.

    async with Receiver() as receiver:
        receiver.script("/hook", [always(503), always(500)], then=always(204))
        ...  # point a subscription at f"{receiver.url}/hook"
        first, second, third = await receiver.wait_for(3, path="/hook")

Every request is recorded (path, headers, exact body bytes, arrival time) *before* its reply is
computed, so `wait_for` sees requests whose replies are slow or never come. Replies come from a
per-path script; a script entry is either a fixed `Reply` or an async callable (`slow`, `hang`,
or your own) that receives the recorded request. `connections` counts accepted TCP connections,
which lets tests check keep-alive reuse. `stop()` cancels in-flight handlers, so it is fast even
when a reply hangs forever.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "DEFAULT_REPLY",
    "ReceivedRequest",
    "Receiver",
    "Reply",
    "Responder",
    "ScriptEntry",
    "always",
    "hang",
    "slow",
]

Reply = tuple[int, Mapping[str, str], bytes]
"""status, headers, body"""

Responder = Callable[["ReceivedRequest"], Awaitable[Reply]]
ScriptEntry = Reply | Responder

DEFAULT_REPLY: Reply = (200, {}, b"ok")

# Seconds aiohttp waits for a handler at shutdown before cancelling it (applied twice at most);
# stop() cancels handlers itself first, so this is only a backstop.
_SHUTDOWN_TIMEOUT = 0.1


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: Mapping[str, str]
    """A case-insensitive copy: `headers["webhook-id"]` and `headers["Webhook-Id"]` both work."""
    body: bytes
    received_at: float
    """`time.monotonic()` when the request (headers and body) had been read."""
    method: str = "POST"
    query_string: str = ""


def always(status: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Reply:
    """A fixed reply."""
    return (status, dict(headers or {}), body)


def slow(seconds: float, reply: Reply = DEFAULT_REPLY) -> Responder:
    """A reply sent only after `seconds` (the request is recorded immediately)."""

    async def respond(_: ReceivedRequest) -> Reply:
        await asyncio.sleep(seconds)
        return reply

    return respond


def hang() -> Responder:
    """A reply that never comes: the handler waits until the client goes away or stop()."""

    async def respond(_: ReceivedRequest) -> Reply:
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")  # pragma: no cover

    return respond


@dataclass
class _Script:
    replies: list[ScriptEntry]
    then: Reply
    served: int = 0

    def next_entry(self) -> ScriptEntry:
        index = self.served
        self.served += 1
        return self.replies[index] if index < len(self.replies) else self.then


@dataclass
class _Counter:
    value: int = 0


class _CountingServer(web.Server):
    """aiohttp's low-level server, counting each accepted TCP connection."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        counter: _Counter,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._counter = counter

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._counter.value += 1
        super().connection_made(handler, transport)


class Receiver:
    """An aiohttp server on 127.0.0.1:<free port> that records every request and answers from a
    script.

    One receiver serves any number of paths (`f"{receiver.url}/hook-a"`); unscripted paths get
    `(200, {}, b"ok")`. Usable as `async with Receiver() as receiver:` or via start()/stop().
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[ReceivedRequest] = []
        self._connections = _Counter()
        self._scripts: dict[str, _Script] = {}
        self._arrived = asyncio.Condition()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("receiver already started")
        # handler_cancellation: a client that gives up (timeout) cancels its hanging handler.
        server = _CountingServer(self._handle, self._connections, handler_cancellation=True)
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{site.port}"

    async def stop(self) -> None:
        """Stop listening, cancel in-flight handlers and close every connection. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._in_flight):
            task.cancel()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- configuration and inspection ------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash; append a path per endpoint."""
        if self._url is None:
            raise RuntimeError("receiver not started")
        return self._url

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (not requests)."""
        return self._connections.value

    def script(self, path: str, replies: Sequence[ScriptEntry], then: Reply | None = None) -> None:
        """From now on, the n-th request to `path` gets `replies[n]`, later ones get `then`.

        Scripting a path again replaces its script and starts counting from zero.
        """
        self._scripts[path] = _Script(list(replies), DEFAULT_REPLY if then is None else then)

    def for_path(self, path: str) -> list[ReceivedRequest]:
        return [request for request in self.requests if request.path == path]

    async def wait_for(
        self,
        count: int,
        *,
        path: str | None = None,
        timeout: float = 10.0,
    ) -> list[ReceivedRequest]:
        """Wait until `count` requests (to `path`, or to any path) have arrived; return the first
        `count` of them. Raises TimeoutError saying how many did arrive."""

        def matching() -> list[ReceivedRequest]:
            return self.requests if path is None else self.for_path(path)

        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = matching()
            where = "in total" if path is None else f"to {path}"
            others = sorted({request.path for request in self.requests})
            raise TimeoutError(
                f"waited {timeout}s for {count} request(s) {where}, {len(seen)} arrived "
                f"({len(self.requests)} in total, paths seen: {others})"
            ) from None
        return matching()[:count]

    # -- serving ---------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            body = await request.read()
            received = ReceivedRequest(
                path=request.path,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body=body,
                received_at=time.monotonic(),
                method=request.method,
                query_string=request.query_string,
            )
            self.requests.append(received)
            async with self._arrived:
                self._arrived.notify_all()

            script = self._scripts.get(request.path)
            entry = DEFAULT_REPLY if script is None else script.next_entry()
            status, headers, reply_body = (
                entry if isinstance(entry, tuple) else await entry(received)
            )
            return web.Response(status=status, headers=dict(headers), body=reply_body)
        finally:
            if task is not None:
                self._in_flight.discard(task)
