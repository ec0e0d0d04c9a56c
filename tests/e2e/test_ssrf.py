"""The SSRF guard end to end: endpoints pointing at forbidden loopback addresses.

Only 127.0.0.1/32 is allowed (tests/conftest.py). Listeners on the forbidden addresses count
TCP connections: zero means the worker never connected, not merely that nothing answered.
"""

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from app.settings import Settings
from tests.e2e.conftest import in_process_worker, make_endpoint, post_event
from tests.receivers import Receiver
from tests.resolvers import StaticResolver
from tests.support import eventually


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


async def attempts_of(api: httpx.AsyncClient, event_id: str) -> list[dict[str, object]]:
    [delivery] = (await api.get(f"/v1/events/{event_id}")).json()["deliveries"]
    response = await eventually(
        lambda: api.get(f"/v1/deliveries/{delivery['id']}"),
        lambda response: bool(response.json()["attempt_log"]),
    )
    attempts: list[dict[str, object]] = response.json()["attempt_log"]
    return attempts


async def test_forbidden_loopback_destinations_are_blocked_without_connecting(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    if not ipv6_loopback_available():
        pytest.skip("this machine has no IPv6 loopback")
    async with (
        Receiver(host="127.0.0.2") as second_loopback,
        Receiver(host="::1") as ipv6,
        Receiver() as allowed,
    ):
        port_v4 = urlsplit(second_loopback.url).port
        port_v6 = urlsplit(ipv6.url).port
        urls = [
            f"http://127.0.0.2:{port_v4}/hook",
            f"http://[::1]:{port_v6}/hook",
            f"http://[::ffff:127.0.0.2]:{port_v4}/hook",
            f"http://rebind.test:{port_v4}/hook",
        ]
        resolver = StaticResolver({"rebind.test": [["127.0.0.2"]]})
        async with in_process_worker(settings, resolver=resolver):
            blocked = []
            for url in urls:
                endpoint = await make_endpoint(api, url)
                blocked.append(await post_event(api, endpoint["tenant_id"], {"url": url}))
            control = await make_endpoint(api, f"{allowed.url}/hook")
            await post_event(api, control["tenant_id"], {"control": True})
            await allowed.wait_for(1)
            for event_id in blocked:
                first = (await attempts_of(api, event_id))[0]
                assert first["error_class"] == "blocked", first
                assert "blocked" in str(first["error_detail"])
                assert first["response_status"] is None

        assert second_loopback.connections == 0
        assert ipv6.connections == 0
        assert allowed.connections >= 1
