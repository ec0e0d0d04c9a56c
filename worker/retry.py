"""What happens to a delivery after an attempt: a pure function of the attempt's outcome.

Kept free of I/O so every branch of the schedule is tested directly.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

ErrorClass = Literal["timeout", "connect", "dns", "tls", "blocked", "http_status"]
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt came to."""

    status: int | None
    error_class: ErrorClass | None
    retry_after: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error_class is None and self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Decision:
    status: Literal["succeeded", "pending", "dead"]
    next_attempt_at: datetime | None = None
    dead_reason: Literal["exhausted", "gone"] | None = None
    disable_endpoint: bool = False


def retry_after_delay(value: str | None, *, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as a delay, or None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment - now, timedelta(0))


def decide(
    outcome: Outcome,
    *,
    attempts_made: int,
    schedule: tuple[timedelta, ...],
    now: datetime,
) -> Decision:
    """``attempts_made`` counts the attempt just finished (1 after the first request)."""
    if outcome.succeeded:
        return Decision("succeeded")
    if outcome.status == 410:
        return Decision("dead", dead_reason="gone", disable_endpoint=True)
    if attempts_made > len(schedule):
        return Decision("dead", dead_reason="exhausted")
    step = schedule[attempts_made - 1]
    delay = step
    if outcome.status in RETRY_AFTER_STATUSES:
        asked = retry_after_delay(outcome.retry_after, now=now)
        # Honour the receiver within bounds: never sooner than the schedule, at most twice it.
        if asked is not None:
            delay = min(max(asked, step), step * 2)
    return Decision("pending", next_attempt_at=now + delay)
