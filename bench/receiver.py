"""A fast webhook receiver for the benchmark: raw asyncio HTTP/1.1 on 127.0.0.1, uvloop.

Run as its own process (``python -m bench.receiver``): it binds a free port and prints one
JSON line ``{"port": N}`` on stdout once it listens. Every request is answered ``200 ok``
on a keep-alive connection (or ``Connection: close`` when asked), after the full body has
arrived (``Content-Length`` only; chunked bodies get a 411). For each request it records the
arrival time (``time.time()``, when headers and body were in), the ``webhook-id`` header and
the body size, per path (query string excluded).

Paths starting with ``/slow`` answer after ``--slow-delay`` seconds (default 1) without
blocking anything else; other requests on that connection wait their turn, as HTTP/1.1 wants.

Control paths (never recorded):

* ``GET /_stats`` → ``{"count", "by_path": {path: n}, "bytes_by_path": {path: bytes},
  "arrivals": [[webhook_id, t], ...]}``; ``?path=/x`` limits arrivals to one path,
  ``?arrivals=0`` leaves them out (cheap to poll).
* ``POST /_reset`` forgets everything.
* ``GET /_health`` → ``ok``.
"""

import argparse
import asyncio
import json
import signal
import socket
import sys
import time
from typing import cast
from urllib.parse import parse_qs

import uvloop

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_OK_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
_LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_MAX_HEAD = 64 * 1024


class Recorder:
    """What arrived, per path: ``[(webhook_id bytes, time)]`` and byte counts."""

    def __init__(self) -> None:
        self.arrivals: dict[bytes, list[tuple[bytes, float]]] = {}
        self.bytes: dict[bytes, int] = {}
        self.count = 0

    def reset(self) -> None:
        self.arrivals = {}
        self.bytes = {}
        self.count = 0

    def stats(self, query: bytes) -> bytes:
        params = parse_qs(query.decode("latin-1"))
        only = params.get("path", [None])[0]
        with_arrivals = params.get("arrivals", ["1"])[0] not in ("0", "false")
        document: dict[str, object] = {
            "count": self.count,
            "by_path": {p.decode("latin-1"): len(a) for p, a in self.arrivals.items()},
            "bytes_by_path": {p.decode("latin-1"): n for p, n in self.bytes.items()},
        }
        if with_arrivals:
            paths = [only.encode("latin-1")] if only is not None else list(self.arrivals)
            document["arrivals"] = [
                [webhook_id.decode("latin-1"), t]
                for path in paths
                for webhook_id, t in self.arrivals.get(path, ())
            ]
        return json.dumps(document, separators=(",", ":")).encode()


class Connection(asyncio.Protocol):
    __slots__ = ("_buffer", "_busy", "_closed", "_loop", "_recorder", "_slow_delay", "_transport")

    def __init__(self, recorder: Recorder, slow_delay: float) -> None:
        self._recorder = recorder
        self._slow_delay = slow_delay
        self._buffer = bytearray()
        self._busy = False
        self._closed = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._process()

    def _write(self, reply: bytes, *, close: bool = False) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(reply)
        if close:
            transport.close()
            self._closed = True

    def _process(self) -> None:
        buffer = self._buffer
        while not self._busy and not self._closed:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._write(_BAD_REQUEST, close=True)
                return
            head = bytes(buffer[:end])
            lower = head.lower()
            length = 0
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                try:
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                except ValueError:
                    self._write(_BAD_REQUEST, close=True)
                    return
            elif b"\r\ntransfer-encoding:" in lower:
                self._write(_LENGTH_REQUIRED, close=True)
                return
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            first_space = head.find(b" ")
            second_space = head.find(b" ", first_space + 1)
            if first_space < 0 or second_space < 0:
                self._write(_BAD_REQUEST, close=True)
                return
            target = head[first_space + 1 : second_space]
            path, _, query = target.partition(b"?")
            close = b"\r\nconnection: close" in lower
            if path.startswith(b"/_"):
                self._control(head[:first_space], path, query, close)
                continue
            webhook_id = b""
            at = lower.find(b"\r\nwebhook-id:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                webhook_id = head[at + 13 : stop if stop >= 0 else len(head)].strip()
            recorder = self._recorder
            arrivals = recorder.arrivals.get(path)
            if arrivals is None:
                arrivals = recorder.arrivals[path] = []
                recorder.bytes[path] = 0
            arrivals.append((webhook_id, time.time()))
            recorder.bytes[path] += length
            recorder.count += 1
            if path.startswith(b"/slow"):
                self._busy = True
                self._loop.call_later(self._slow_delay, self._slow_done, close)
                return
            self._write(_OK_CLOSE if close else _OK, close=close)

    def _slow_done(self, close: bool) -> None:
        self._busy = False
        self._write(_OK_CLOSE if close else _OK, close=close)
        if self._buffer and not self._closed:
            self._process()

    def _control(self, method: bytes, path: bytes, query: bytes, close: bool) -> None:
        if path == b"/_stats" and method == b"GET":
            body = self._recorder.stats(query)
            kind = b"application/json"
        elif path == b"/_reset" and method == b"POST":
            self._recorder.reset()
            body, kind = b"ok", b"text/plain"
        elif path == b"/_health":
            body, kind = b"ok", b"text/plain"
        else:
            self._write(_NOT_FOUND)
            return
        reply = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
            kind,
            len(body),
            b"Connection: close\r\n" if close else b"",
            body,
        )
        self._write(reply, close=close)


async def serve(host: str, port: int, slow_delay: float) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    server = await loop.create_server(
        lambda: Connection(recorder, slow_delay), sock=listener, backlog=4096
    )
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    sys.stdout.write(json.dumps({"port": listener.getsockname()[1]}) + "\n")
    sys.stdout.flush()
    await stopped.wait()
    # Stop at once: open keep-alive connections close with the loop, nobody waits for them.
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fast webhook receiver for the benchmark.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--slow-delay", type=float, default=1.0, help="seconds, for /slow*")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.slow_delay))


if __name__ == "__main__":
    main()
