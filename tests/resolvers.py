"""A stand-in for DNS, so tests can make any name resolve to a loopback address."""

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    """Stands in for DNS: each lookup of a name returns its next answer set (the last
    one repeats), which is exactly what the guard sees from a real resolver."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        asked = self.calls.count(host)
        self.calls.append(host)
        if host not in self._answers:
            raise OSError(f"{host} is not in the test table")
        sets = self._answers[host]
        return [
            ResolveResult(
                hostname=host,
                host=answer,
                port=port,
                family=socket.AF_INET6 if ":" in answer else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for answer in sets[min(asked, len(sets) - 1)]
        ]

    async def close(self) -> None:
        pass
