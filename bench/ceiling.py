"""The machine's ceiling: a bare aiohttp (uvloop) loop POSTing webhooks to the receiver.

Run as its own process, like a worker: ``python -m bench.ceiling`` reads one JSON document on
stdin ``{"url", "body_b64", "headers", "concurrency", "count", "seconds"}`` and prints one
JSON result on stdout. ``concurrency`` requests are in flight at once over one keep-alive
connection pool (the worker's ``HERALD_WORKER_CONCURRENCY``); it stops after ``count``
requests or ``seconds``, whichever comes first. Nothing is signed or logged per request:
the same body bytes and headers go out every time.
"""

import asyncio
import base64
import json
import sys
import time
from dataclasses import asdict, dataclass

import aiohttp
import uvloop


@dataclass(frozen=True)
class CeilingSpec:
    url: str
    body: bytes
    headers: dict[str, str]
    concurrency: int
    count: int
    seconds: float

    def to_json(self) -> str:
        document = asdict(self)
        document["body_b64"] = base64.b64encode(document.pop("body")).decode()
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> "CeilingSpec":
        document = json.loads(text)
        return cls(
            url=str(document["url"]),
            body=base64.b64decode(document["body_b64"]),
            headers={str(k): str(v) for k, v in document["headers"].items()},
            concurrency=int(document["concurrency"]),
            count=int(document["count"]),
            seconds=float(document["seconds"]),
        )


@dataclass(frozen=True)
class CeilingResult:
    sent: int
    ok: int
    errors: int
    elapsed_s: float
    client_rps: float


async def run_ceiling(spec: CeilingSpec) -> CeilingResult:
    connector = aiohttp.TCPConnector(limit=spec.concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=30)
    issued = ok = errors = 0
    started = time.perf_counter()
    deadline = started + spec.seconds
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:

        async def loop() -> None:
            nonlocal issued, ok, errors
            while issued < spec.count and time.perf_counter() < deadline:
                issued += 1
                try:
                    async with session.post(
                        spec.url, data=spec.body, headers=spec.headers, allow_redirects=False
                    ) as response:
                        await response.read()
                        if 200 <= response.status < 300:
                            ok += 1
                        else:
                            errors += 1
                except (aiohttp.ClientError, OSError, TimeoutError):
                    errors += 1

        await asyncio.gather(*(loop() for _ in range(spec.concurrency)))
    elapsed = time.perf_counter() - started
    return CeilingResult(issued, ok, errors, elapsed, ok / elapsed if elapsed > 0 else 0.0)


def main() -> None:
    spec = CeilingSpec.from_json(sys.stdin.read())
    result = uvloop.run(run_ceiling(spec))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
