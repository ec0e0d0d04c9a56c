"""tests.receivers: the scriptable loopback webhook receiver used by end-to-end tests."""

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.receivers import ReceivedRequest, Receiver, Reply, always, hang, slow

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as started:
        yield started


async def _post(
    url: str, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_url_is_loopback_with_a_free_port(receiver: Receiver) -> None:
    assert receiver.url.startswith("http://127.0.0.1:")
    assert int(receiver.url.rsplit(":", 1)[1]) > 0
    assert not receiver.url.endswith("/")


async def test_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = Receiver().url


async def test_unscripted_path_gets_200_ok(receiver: Receiver) -> None:
    status, _, body = await _post(f"{receiver.url}/anything")
    assert (status, body) == (200, b"ok")
    assert [request.path for request in receiver.requests] == ["/anything"]


async def test_script_is_followed_in_order_per_path(receiver: Receiver) -> None:
    receiver.script("/a", [always(500), always(503), always(201)])
    receiver.script("/b", [always(410)])

    statuses = [
        (await _post(f"{receiver.url}{path}"))[0] for path in ["/a", "/b", "/a", "/b", "/a", "/a"]
    ]

    # /a: 500, 503, 201 then the default; /b: 410 then the default.
    assert statuses == [500, 410, 503, 200, 201, 200]
    assert len(receiver.for_path("/a")) == 4
    assert len(receiver.for_path("/b")) == 2
    assert receiver.for_path("/c") == []


async def test_then_is_used_once_the_script_runs_out(receiver: Receiver) -> None:
    receiver.script("/hook", [always(500)], then=always(204))
    statuses = [(await _post(f"{receiver.url}/hook"))[0] for _ in range(4)]
    assert statuses == [500, 204, 204, 204]


async def test_empty_script_with_then_answers_every_request(receiver: Receiver) -> None:
    receiver.script("/gone", [], then=always(410, body=b"gone"))
    for _ in range(2):
        status, _, body = await _post(f"{receiver.url}/gone")
        assert (status, body) == (410, b"gone")


async def test_rescripting_a_path_restarts_its_script(receiver: Receiver) -> None:
    receiver.script("/hook", [always(500)])
    assert (await _post(f"{receiver.url}/hook"))[0] == 500
    assert (await _post(f"{receiver.url}/hook"))[0] == 200
    receiver.script("/hook", [always(429)])
    assert (await _post(f"{receiver.url}/hook"))[0] == 429


async def test_reply_status_headers_and_body_are_sent_exactly(receiver: Receiver) -> None:
    receiver.script("/hook", [always(429, {"Retry-After": "7", "X-Custom": "Yes"}, b"\x00slow")])
    status, headers, body = await _post(f"{receiver.url}/hook")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert headers["X-Custom"] == "Yes"
    assert body == b"\x00slow"


async def test_headers_and_body_are_recorded_exactly(receiver: Receiver) -> None:
    body = b'{"type":"invoice.paid"}\x00\xff\xfe\n'
    before = time.monotonic()
    await _post(
        f"{receiver.url}/hook?x=1",
        body,
        {
            "Content-Type": "application/json",
            "Webhook-Id": "msg_123",
            "Webhook-Signature": "v1,c2lnbmF0dXJl v1,b3RoZXI=",
        },
    )
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert request.method == "POST"
    assert request.query_string == "x=1"
    assert request.body == body
    assert request.headers["Webhook-Id"] == "msg_123"
    assert request.headers["webhook-id"] == "msg_123"  # case-insensitive lookup
    assert request.headers["WEBHOOK-SIGNATURE"] == "v1,c2lnbmF0dXJl v1,b3RoZXI="
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Length"] == str(len(body))
    assert before <= request.received_at <= time.monotonic()


async def test_wait_for_returns_once_enough_requests_arrive(receiver: Receiver) -> None:
    waiting = asyncio.create_task(receiver.wait_for(2, path="/hook", timeout=5))
    await asyncio.sleep(0)
    assert not waiting.done()

    await _post(f"{receiver.url}/other")
    await _post(f"{receiver.url}/hook", b"1")
    await asyncio.sleep(0)
    assert not waiting.done()
    await _post(f"{receiver.url}/hook", b"2")

    got = await asyncio.wait_for(waiting, 5)
    assert [request.body for request in got] == [b"1", b"2"]


async def test_wait_for_any_path_and_already_arrived(receiver: Receiver) -> None:
    await _post(f"{receiver.url}/a")
    await _post(f"{receiver.url}/b")
    await _post(f"{receiver.url}/c")
    got = await receiver.wait_for(2, timeout=0.5)
    assert [request.path for request in got] == ["/a", "/b"]  # the first `count`, in order


async def test_wait_for_times_out_saying_how_many_arrived(receiver: Receiver) -> None:
    await _post(f"{receiver.url}/hook")
    await _post(f"{receiver.url}/elsewhere")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"3 request\(s\) to /hook, 1 arrived") as excinfo:
        await receiver.wait_for(3, path="/hook", timeout=0.2)
    assert 0.15 <= time.monotonic() - started < 2
    assert "/elsewhere" in str(excinfo.value)


async def test_one_keep_alive_session_counts_one_connection(receiver: Receiver) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for _ in range(2):
            async with session.post(f"{receiver.url}/hook", data=b"{}") as response:
                assert response.status == 200
                await response.read()
    assert len(receiver.requests) == 2
    assert receiver.connections == 1


async def test_two_sessions_count_two_connections(receiver: Receiver) -> None:
    await _post(f"{receiver.url}/hook")
    await _post(f"{receiver.url}/hook")
    assert len(receiver.requests) == 2
    assert receiver.connections == 2


async def test_slow_reply_is_delayed_but_recorded_on_arrival(receiver: Receiver) -> None:
    receiver.script("/slow", [slow(0.3, always(202))])
    started = time.monotonic()
    pending = asyncio.create_task(_post(f"{receiver.url}/slow"))

    (request,) = await receiver.wait_for(1, path="/slow", timeout=5)
    assert request.received_at - started < 0.3
    assert not pending.done()
    # Other paths are answered meanwhile.
    assert (await _post(f"{receiver.url}/fast"))[0] == 200
    assert not pending.done()

    status, _, _ = await pending
    assert status == 202
    assert time.monotonic() - started >= 0.3


async def test_callable_reply_sees_the_recorded_request(receiver: Receiver) -> None:
    async def echo(request: ReceivedRequest) -> Reply:
        return (200, {"X-Echo-Id": request.headers["webhook-id"]}, request.body[::-1])

    receiver.script("/echo", [echo])
    status, headers, body = await _post(f"{receiver.url}/echo", b"abc", {"Webhook-Id": "msg_9"})
    assert (status, headers["X-Echo-Id"], body) == (200, "msg_9", b"cba")


async def test_stop_with_a_hanging_handler_returns_quickly() -> None:
    cancelled = asyncio.Event()

    async def hang_and_notice(_: ReceivedRequest) -> Reply:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    receiver = Receiver()
    await receiver.start()
    receiver.script("/hang", [hang_and_notice, hang()])
    first = asyncio.create_task(_post(f"{receiver.url}/hang"))
    second = asyncio.create_task(_post(f"{receiver.url}/hang"))
    await receiver.wait_for(2, path="/hang", timeout=5)

    started = time.monotonic()
    await receiver.stop()
    assert time.monotonic() - started < 1
    assert cancelled.is_set()

    for client in (first, second):
        with pytest.raises(aiohttp.ClientError):
            await asyncio.wait_for(client, 5)

    await receiver.stop()  # idempotent


async def test_client_giving_up_cancels_its_hanging_handler(receiver: Receiver) -> None:
    cancelled = asyncio.Event()

    async def hang_and_notice(_: ReceivedRequest) -> Reply:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    receiver.script("/hang", [hang_and_notice])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session:
        with pytest.raises(TimeoutError):
            await session.post(f"{receiver.url}/hang", data=b"{}")
    await asyncio.wait_for(cancelled.wait(), 5)
    assert len(receiver.for_path("/hang")) == 1


async def test_context_manager_stops_the_server() -> None:
    async with Receiver() as receiver:
        url = receiver.url
        assert (await _post(f"{url}/x"))[0] == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        await _post(f"{url}/x")
