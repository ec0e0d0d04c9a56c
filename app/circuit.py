"""Circuit breaker rules shared by the API and the workers: thresholds, cool-downs, Redis keys.

The state an operator sees (closed / open / half-open, failures, when it opened, when the
next probe goes) lives on the endpoint row in PostgreSQL, where the claim reads it. The
counters behind the decision to open (consecutive failures, a sliding window of outcomes)
live in Redis, shared by every worker: losing them only restarts the count.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from app.settings import Settings

# The window is kept as this many buckets; older buckets fall out as time moves on.
WINDOW_BUCKETS = 10


def counters_key(endpoint_id: str) -> str:
    return f"herald:circuit:{endpoint_id}"


@dataclass(frozen=True)
class BreakerPolicy:
    enabled: bool
    consecutive_failures: int
    failure_rate: float
    window: timedelta
    min_requests: int
    cooldown: timedelta
    max_cooldown: timedelta

    @classmethod
    def of(cls, settings: Settings, override: Mapping[str, Any] | None) -> "BreakerPolicy":
        """The global settings with an endpoint's ``circuit_breaker`` fields on top."""
        override = override or {}

        def seconds(name: str, default: timedelta) -> timedelta:
            value = override.get(name)
            return timedelta(seconds=value) if value is not None else default

        return cls(
            enabled=override.get("enabled", settings.circuit_enabled),
            consecutive_failures=override.get(
                "consecutive_failures", settings.circuit_consecutive_failures
            ),
            failure_rate=override.get("failure_rate", settings.circuit_failure_rate),
            window=seconds("window_s", settings.circuit_window),
            min_requests=override.get("min_requests", settings.circuit_min_requests),
            cooldown=seconds("cooldown_s", settings.circuit_cooldown),
            max_cooldown=max(
                seconds("max_cooldown_s", settings.circuit_max_cooldown),
                seconds("cooldown_s", settings.circuit_cooldown),
            ),
        )

    def cooldown_after(self, reopens: int) -> timedelta:
        """The wait before the next probe: doubled by each failed probe, capped."""
        # In seconds: a timedelta of a day doubled thirty times would overflow.
        doubled = self.cooldown.total_seconds() * 2 ** min(reopens, 64)
        return timedelta(seconds=min(doubled, self.max_cooldown.total_seconds()))


async def reset_counters(redis: Redis, endpoint_ids: Sequence[str]) -> None:
    """Forget the outcomes that opened these circuits, so a closed circuit starts afresh."""
    if endpoint_ids:
        await redis.delete(*map(counters_key, endpoint_ids))
