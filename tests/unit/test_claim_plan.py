"""worker.claim: which claimed deliveries are held, leased, deferred to their turn or left due."""

from datetime import UTC, datetime, timedelta

import pytest

from worker.claim import Plan, must_hold, plan
from worker.limits import RATE_LIMITED, SLOTS_FULL, Admission

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


# must_hold


@pytest.mark.parametrize(
    ("enabled", "circuit_state", "trigger", "held"),
    [
        (True, "closed", "scheduled", False),
        (True, "closed", "manual", False),
        (True, "closed", "replay", False),
        (True, "closed", "probe", False),
        (True, "open", "scheduled", True),
        (True, "open", "manual", True),
        (True, "open", "probe", True),
        (True, "half_open", "scheduled", True),
        (True, "half_open", "manual", True),
        (True, "half_open", "replay", True),
        (True, "half_open", "probe", False),
        (False, "closed", "scheduled", True),
        (False, "closed", "probe", True),
        (False, "open", "scheduled", True),
        (False, "open", "probe", True),
        (False, "half_open", "scheduled", True),
        (False, "half_open", "probe", True),
    ],
)
def test_must_hold(enabled: bool, circuit_state: str, trigger: str, held: bool) -> None:
    assert must_hold(enabled=enabled, circuit_state=circuit_state, trigger=trigger) is held


# plan: admitted deliveries


def test_everything_admitted_is_leased_in_due_order() -> None:
    decided = plan({"ep_a": ["d1", "d2", "d3"]}, {"ep_a": Admission(3)})

    assert decided == Plan(leased=["d1", "d2", "d3"], deferred=[], rate_limited=0)


def test_the_admitted_prefix_of_each_endpoint_is_leased() -> None:
    first_slot = NOW + timedelta(milliseconds=200)
    waiting = {"ep_a": ids("a", 4), "ep_b": ids("b", 3), "ep_c": ids("c", 2)}
    admissions = {
        "ep_a": Admission(2, ms(first_slot), 100_000, RATE_LIMITED),
        "ep_b": Admission(0),
        "ep_c": Admission(2),
    }

    decided = plan(waiting, admissions)

    assert decided.leased == ["a0", "a1", "c0", "c1"]
    assert decided.deferred == [
        ("a2", first_slot),
        ("a3", first_slot + timedelta(milliseconds=100)),
    ]
    assert decided.rate_limited == 2


def test_nothing_waiting_plans_nothing() -> None:
    assert plan({}, {}) == Plan()


def test_an_admission_larger_than_the_batch_leases_the_batch() -> None:
    decided = plan({"ep_a": ["d0", "d1"]}, {"ep_a": Admission(5)})

    assert decided == Plan(leased=["d0", "d1"])


# plan: deliveries left due (a fast endpoint whose slots are full)


@pytest.mark.parametrize(
    "admission",
    [Admission(0), Admission(1), Admission(1, 0, 0, 0)],
    ids=["none-admitted", "one-admitted", "explicit-zeros"],
)
def test_without_a_deferral_time_the_rest_are_left_due(admission: Admission) -> None:
    waiting = {"ep_a": ids("d", 4)}

    decided = plan(waiting, {"ep_a": admission})

    assert decided.leased == waiting["ep_a"][: admission.admitted]
    assert decided.deferred == []
    assert decided.rate_limited == 0


# plan: rate-limited deliveries


def test_rate_limited_rest_gets_consecutive_slots_from_the_first() -> None:
    first_slot = NOW + timedelta(milliseconds=50)
    waiting = {"ep_a": ids("d", 6)}

    decided = plan(waiting, {"ep_a": Admission(2, ms(first_slot), 50_000, RATE_LIMITED)})

    assert decided.leased == ["d0", "d1"]
    assert decided.deferred == [
        ("d2", first_slot),
        ("d3", first_slot + timedelta(milliseconds=50)),
        ("d4", first_slot + timedelta(milliseconds=100)),
        ("d5", first_slot + timedelta(milliseconds=150)),
    ]
    assert decided.rate_limited == 4


def test_rate_limited_endpoint_with_nothing_admitted() -> None:
    # A queue horizon far ahead: the first slot is not the rate's next one but the queue's end.
    first_slot = NOW + timedelta(seconds=7, milliseconds=730)
    waiting = {"ep_a": ids("d", 3)}

    decided = plan(waiting, {"ep_a": Admission(0, ms(first_slot), 250_000, RATE_LIMITED)})

    assert decided.leased == []
    assert decided.deferred == [
        ("d0", first_slot),
        ("d1", first_slot + timedelta(milliseconds=250)),
        ("d2", first_slot + timedelta(milliseconds=500)),
    ]
    assert decided.rate_limited == 3


def test_spacing_is_kept_to_the_microsecond() -> None:
    # 3 per second: 333.333 ms apart, as the script reports it (floored to microseconds).
    first_slot = NOW + timedelta(milliseconds=334)

    decided = plan({"ep_a": ids("d", 4)}, {"ep_a": Admission(0, ms(first_slot), 333_333, 1)})

    assert [at for _, at in decided.deferred] == [
        first_slot,
        first_slot + timedelta(microseconds=333_333),
        first_slot + timedelta(microseconds=666_666),
        first_slot + timedelta(microseconds=999_999),
    ]


def test_deferrals_are_tz_aware_utc() -> None:
    first_slot = NOW + timedelta(seconds=1)

    decided = plan({"ep_a": ["d0"]}, {"ep_a": Admission(0, ms(first_slot), 1_000_000, 1)})

    ((_, at),) = decided.deferred
    assert at.tzinfo is not None
    assert at.utcoffset() == timedelta(0)
    assert at == first_slot


@pytest.mark.parametrize(
    "epoch_ms",
    [1, 999, 1_740_830_400_001, 1_740_830_400_123, 1_795_442_665_999, 4_102_444_799_999],
)
def test_the_deferral_time_is_exact_to_the_millisecond(epoch_ms: int) -> None:
    decided = plan({"ep_a": ["d0"]}, {"ep_a": Admission(0, epoch_ms, 1_000, SLOTS_FULL)})

    assert decided.deferred == [("d0", EPOCH + timedelta(milliseconds=epoch_ms))]


# plan: deliveries waiting for a slot of a slow endpoint


def test_slots_full_deferrals_are_spaced_but_not_counted_as_rate_limited() -> None:
    # The oldest request has run 600 ms with a cap of 4: one slot every 150 ms.
    first_slot = NOW + timedelta(milliseconds=150)
    waiting = {"ep_a": ids("d", 4)}

    decided = plan(waiting, {"ep_a": Admission(1, ms(first_slot), 150_000, SLOTS_FULL)})

    assert decided.leased == ["d0"]
    assert decided.deferred == [
        ("d1", first_slot),
        ("d2", first_slot + timedelta(milliseconds=150)),
        ("d3", first_slot + timedelta(milliseconds=300)),
    ]
    assert decided.rate_limited == 0


def test_rate_limited_count_covers_only_rate_limited_deferrals() -> None:
    rate_slot = NOW + timedelta(milliseconds=100)
    slow_slot = NOW + timedelta(seconds=1)
    waiting = {
        "ep_rate": ids("r", 5),
        "ep_slow": ids("s", 3),
        "ep_fast": ids("f", 3),
        "ep_idle": ids("i", 1),
    }
    admissions = {
        "ep_rate": Admission(1, ms(rate_slot), 100_000, RATE_LIMITED),
        "ep_slow": Admission(1, ms(slow_slot), 500_000, SLOTS_FULL),
        "ep_fast": Admission(2),
        "ep_idle": Admission(1),
    }

    decided = plan(waiting, admissions)

    assert decided.leased == ["r0", "s0", "f0", "f1", "i0"]
    assert decided.deferred == [
        ("r1", rate_slot),
        ("r2", rate_slot + timedelta(milliseconds=100)),
        ("r3", rate_slot + timedelta(milliseconds=200)),
        ("r4", rate_slot + timedelta(milliseconds=300)),
        ("s1", slow_slot),
        ("s2", slow_slot + timedelta(milliseconds=500)),
    ]
    # f2 is neither leased nor deferred: it stays due for the next claim.
    assert decided.rate_limited == 4
