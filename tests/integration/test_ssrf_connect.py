"""The SSRF guard against real aiohttp clients and servers, on loopback only.

Listeners count accepted connections (the server's protocol factory runs once per
accepted TCP connection, before any HTTP is parsed), so "zero" means no connection was
made at all, not merely that no request was answered.  The blocked URLs are also shown
to reach their listeners through an unguarded connector, so a zero is not vacuous.
Names such as ``rebind.test`` are answered by an in-process resolver, never by DNS.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import ResolveResult

from tests.resolvers import StaticResolver
from worker.ssrf import AddressPolicy, BlockedDestination, guarded_connector, is_blocked_error

TEST_POLICY = AddressPolicy.from_cidrs(["127.0.0.1/32"])
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class Listener:
    host: str
    port: int
    connections: int = 0
    requests: int = 0

    def url(self, host: str | None = None) -> str:
        shown = host or self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"


@asynccontextmanager
async def _listen(host: str, port: int = 0) -> AsyncIterator[Listener]:
    listener = Listener(host, port)

    async def handle(request: web.BaseRequest) -> web.Response:
        listener.requests += 1
        await request.read()
        return web.Response(text="ok")

    http = web.Server(handle)

    def accept() -> asyncio.Protocol:
        listener.connections += 1
        return http()

    server = await asyncio.get_running_loop().create_server(accept, host, port)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await http.shutdown()
        await server.wait_closed()


@pytest.fixture
async def allowed() -> AsyncIterator[Listener]:
    async with _listen("127.0.0.1") as listener:
        yield listener


@pytest.fixture
async def forbidden() -> AsyncIterator[Listener]:
    # Linux routes all of 127.0.0.0/8 to lo, so 127.0.0.2 binds without setup.
    async with _listen("127.0.0.2") as listener:
        yield listener


@pytest.fixture
async def twins() -> AsyncIterator[tuple[Listener, Listener]]:
    """Listeners on 127.0.0.1 and 127.0.0.2 sharing one port, so that one URL reaches
    either, depending only on what its name resolves to."""
    for _ in range(5):
        async with _listen("127.0.0.1") as first:
            try:
                second_context = _listen("127.0.0.2", first.port)
                second = await second_context.__aenter__()
            except OSError:
                continue
            try:
                yield first, second
            finally:
                await second_context.__aexit__(None, None, None)
            return
    pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
async def ipv6_loopback() -> AsyncIterator[Listener]:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    async with _listen("::1") as listener:
        yield listener


def _rebind_resolver() -> StaticResolver:
    return StaticResolver({"rebind.test": [["127.0.0.2"]]})


async def _post(connector: aiohttp.BaseConnector, url: str, proxy: str | None = None) -> int:
    async with (
        aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
        session.post(url, json={"event": "ping"}, proxy=proxy) as response,
    ):
        await response.read()
        return response.status


async def _post_blocked(
    connector: aiohttp.BaseConnector, url: str, proxy: str | None = None
) -> aiohttp.ClientConnectorError:
    with pytest.raises(aiohttp.ClientConnectorError) as excinfo:
        await _post(connector, url, proxy)
    blocked = is_blocked_error(excinfo.value)
    assert isinstance(blocked, BlockedDestination), excinfo.value
    return excinfo.value


async def test_allowed_destination_is_delivered(allowed: Listener) -> None:
    assert await _post(guarded_connector(TEST_POLICY), allowed.url()) == 200
    assert (allowed.connections, allowed.requests) == (1, 1)


@pytest.mark.parametrize(
    ("host", "via_dns"),
    [("127.0.0.2", False), ("::ffff:127.0.0.2", False), ("rebind.test", True)],
)
async def test_blocked_destination_is_never_connected(
    allowed: Listener, forbidden: Listener, host: str, via_dns: bool
) -> None:
    connector = guarded_connector(TEST_POLICY, resolver=_rebind_resolver())
    error = await _post_blocked(connector, forbidden.url(host))

    # Resolver blocks arrive as the DNS flavour; IP literals never reach the resolver
    # (aiohttp short-circuits them) and are stopped by the socket factory instead.
    assert isinstance(error, aiohttp.ClientConnectorDNSError) is via_dns
    blocked = is_blocked_error(error)
    assert blocked is not None
    assert "127.0.0.2 is in a loopback range" in blocked.reason
    assert forbidden.connections == 0
    assert allowed.connections == 0


async def test_blocked_urls_do_reach_listener_without_guard(forbidden: Listener) -> None:
    resolver = _rebind_resolver()
    for host in ("127.0.0.2", "::ffff:127.0.0.2", "rebind.test"):
        assert await _post(aiohttp.TCPConnector(resolver=resolver), forbidden.url(host)) == 200
    assert forbidden.connections == 3
    # Documents aiohttp's IP-literal short-circuit the guard has to cover: only the
    # name was ever handed to the resolver.
    assert resolver.calls == ["rebind.test"]


async def test_ipv6_loopback_is_blocked(ipv6_loopback: Listener) -> None:
    error = await _post_blocked(guarded_connector(TEST_POLICY), ipv6_loopback.url())
    assert "::1 is in a loopback range" in str(error)
    assert ipv6_loopback.connections == 0

    assert await _post(aiohttp.TCPConnector(), ipv6_loopback.url()) == 200
    assert ipv6_loopback.connections == 1


async def test_localhost_is_blocked_when_nothing_is_allowed(allowed: Listener) -> None:
    # The real default resolver: localhost comes from /etc/hosts, not DNS.
    error = await _post_blocked(guarded_connector(AddressPolicy()), allowed.url("localhost"))
    assert isinstance(error, aiohttp.ClientConnectorDNSError)
    assert allowed.connections == 0

    assert await _post(aiohttp.TCPConnector(), allowed.url("localhost")) == 200
    assert allowed.connections == 1


async def test_mixed_answers_block_the_whole_host(twins: tuple[Listener, Listener]) -> None:
    first, second = twins
    resolver = StaticResolver({"mixed.test": [["127.0.0.1", "127.0.0.2"]]})
    connector = guarded_connector(TEST_POLICY, resolver=resolver)
    await _post_blocked(connector, first.url("mixed.test"))
    # Not even the allowed answer is tried.
    assert (first.connections, second.connections) == (0, 0)

    assert await _post(aiohttp.TCPConnector(resolver=resolver), first.url("mixed.test")) == 200
    assert first.connections + second.connections == 1


async def test_rebinding_between_requests_is_caught(twins: tuple[Listener, Listener]) -> None:
    first, second = twins
    resolver = StaticResolver({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    # No DNS cache and no pooled connection, so the second request resolves afresh.
    connector = guarded_connector(
        TEST_POLICY, resolver=resolver, use_dns_cache=False, force_close=True
    )
    url = first.url("rebind.test")
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        async with session.post(url, json={}) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorDNSError) as excinfo:
            await session.post(url, json={})
    assert is_blocked_error(excinfo.value) is not None
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert (first.connections, second.connections) == (1, 0)


async def test_poisoned_dns_cache_is_caught_at_connect(forbidden: Listener) -> None:
    resolver = StaticResolver({})
    connector = guarded_connector(TEST_POLICY, resolver=resolver)
    # Simulates a cache entry that never passed the resolver check (aiohttp internals):
    # the socket factory still judges the address actually being connected to.
    connector._cached_hosts.add(
        ("poisoned.test", forbidden.port),
        [
            ResolveResult(
                hostname="poisoned.test",
                host="127.0.0.2",
                port=forbidden.port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
        ],
    )
    error = await _post_blocked(connector, forbidden.url("poisoned.test"))
    assert not isinstance(error, aiohttp.ClientConnectorDNSError)
    assert resolver.calls == []
    assert forbidden.connections == 0


async def test_proxied_requests_are_refused(allowed: Listener) -> None:
    # The proxy itself is allowed, but through it the destination could not be vetted.
    proxy = f"http://127.0.0.1:{allowed.port}"
    await _post_blocked(guarded_connector(TEST_POLICY), allowed.url(), proxy)
    assert allowed.connections == 0


async def test_ordinary_failures_are_not_reported_as_blocked() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(aiohttp.ClientConnectorError) as excinfo:
        await _post(guarded_connector(TEST_POLICY), f"http://127.0.0.1:{closed_port}/")
    assert is_blocked_error(excinfo.value) is None
