from datetime import UTC, datetime, timedelta

import pytest

from worker.retry import Decision, Outcome, decide, retry_after_delay

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)


def failure(status: int | None = 500, retry_after: str | None = None) -> Outcome:
    if status is None:
        return Outcome(status=None, error_class="connect")
    return Outcome(status=status, error_class="http_status", retry_after=retry_after)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_any_2xx_succeeds(status: int) -> None:
    outcome = Outcome(status=status, error_class=None)
    assert decide(outcome, attempts_made=1, schedule=SCHEDULE, now=NOW) == Decision("succeeded")


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [(1, timedelta(minutes=1)), (2, timedelta(minutes=5)), (4, timedelta(hours=2))],
)
def test_failures_follow_the_schedule(attempts_made: int, delay: timedelta) -> None:
    decision = decide(failure(), attempts_made=attempts_made, schedule=SCHEDULE, now=NOW)
    assert decision == Decision("pending", next_attempt_at=NOW + delay)


@pytest.mark.parametrize("outcome", [failure(500), failure(302), failure(None)])
def test_fifth_failure_dead_letters(outcome: Outcome) -> None:
    decision = decide(outcome, attempts_made=5, schedule=SCHEDULE, now=NOW)
    assert decision == Decision("dead", dead_reason="exhausted")


def test_gone_disables_at_any_attempt() -> None:
    decision = decide(failure(410), attempts_made=1, schedule=SCHEDULE, now=NOW)
    assert decision == Decision("dead", dead_reason="gone", disable_endpoint=True)


@pytest.mark.parametrize(
    ("status", "header", "delay"),
    [
        (429, "30", timedelta(minutes=1)),  # sooner than the schedule: schedule wins
        (429, "90", timedelta(seconds=90)),  # within bounds: honoured
        (503, "3600", timedelta(minutes=2)),  # beyond twice the step: capped
        (503, "Mon, 23 Nov 2026 12:01:30 GMT", timedelta(seconds=90)),
        (429, "soon", timedelta(minutes=1)),  # unusable: ignored
        (500, "90", timedelta(minutes=1)),  # only 429 and 503 carry Retry-After
    ],
)
def test_retry_after_within_bounds(status: int, header: str, delay: timedelta) -> None:
    decision = decide(failure(status, header), attempts_made=1, schedule=SCHEDULE, now=NOW)
    assert decision.next_attempt_at == NOW + delay


def test_retry_after_parsing() -> None:
    assert retry_after_delay(None, now=NOW) is None
    assert retry_after_delay(" 12 ", now=NOW) == timedelta(seconds=12)
    assert retry_after_delay("Mon, 23 Nov 2026 11:00:00 GMT", now=NOW) == timedelta(0)
    assert retry_after_delay("-5", now=NOW) is None
