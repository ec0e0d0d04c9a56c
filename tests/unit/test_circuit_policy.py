"""app.circuit.BreakerPolicy (settings under endpoint overrides, cool-downs); settings checks."""

import base64
import os
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.circuit import BreakerPolicy
from app.settings import Settings
from app.signing_secrets import generate_secret


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HERALD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings() -> Settings:
    # Not the defaults, so a value taken from the settings cannot pass for a default.
    return Settings(
        _env_file=None,
        circuit_enabled=True,
        circuit_consecutive_failures=7,
        circuit_failure_rate=0.25,
        circuit_window=timedelta(minutes=2),
        circuit_min_requests=20,
        circuit_cooldown=timedelta(seconds=45),
        circuit_max_cooldown=timedelta(minutes=15),
    )


def policy(
    *,
    cooldown: timedelta = timedelta(seconds=30),
    max_cooldown: timedelta = timedelta(minutes=10),
) -> BreakerPolicy:
    return BreakerPolicy(
        enabled=True,
        consecutive_failures=5,
        failure_rate=0.5,
        window=timedelta(seconds=60),
        min_requests=10,
        cooldown=cooldown,
        max_cooldown=max_cooldown,
    )


GLOBAL = BreakerPolicy(
    enabled=True,
    consecutive_failures=7,
    failure_rate=0.25,
    window=timedelta(minutes=2),
    min_requests=20,
    cooldown=timedelta(seconds=45),
    max_cooldown=timedelta(minutes=15),
)


# BreakerPolicy.of


@pytest.mark.parametrize("override", [None, {}])
def test_no_override_is_the_global_settings(
    settings: Settings, override: dict[str, Any] | None
) -> None:
    assert BreakerPolicy.of(settings, override) == GLOBAL


def test_default_settings_give_the_documented_defaults() -> None:
    assert BreakerPolicy.of(Settings(_env_file=None), None) == BreakerPolicy(
        enabled=True,
        consecutive_failures=5,
        failure_rate=0.5,
        window=timedelta(seconds=60),
        min_requests=10,
        cooldown=timedelta(seconds=30),
        max_cooldown=timedelta(minutes=10),
    )


def test_partial_override_replaces_only_its_fields(settings: Settings) -> None:
    override = {"consecutive_failures": 3, "window_s": 10, "failure_rate": 0.9}

    assert BreakerPolicy.of(settings, override) == BreakerPolicy(
        enabled=True,
        consecutive_failures=3,
        failure_rate=0.9,
        window=timedelta(seconds=10),
        min_requests=20,
        cooldown=timedelta(seconds=45),
        max_cooldown=timedelta(minutes=15),
    )


def test_full_override(settings: Settings) -> None:
    override = {
        "enabled": True,
        "consecutive_failures": 2,
        "failure_rate": 1,
        "window_s": 30,
        "min_requests": 4,
        "cooldown_s": 5,
        "max_cooldown_s": 60,
    }

    assert BreakerPolicy.of(settings, override) == BreakerPolicy(
        enabled=True,
        consecutive_failures=2,
        failure_rate=1,
        window=timedelta(seconds=30),
        min_requests=4,
        cooldown=timedelta(seconds=5),
        max_cooldown=timedelta(seconds=60),
    )


def test_override_can_turn_the_breaker_off(settings: Settings) -> None:
    off = BreakerPolicy.of(settings, {"enabled": False})

    assert off.enabled is False
    assert off == replace(GLOBAL, enabled=False)


def test_override_can_turn_the_breaker_on_when_globally_off() -> None:
    settings = Settings(_env_file=None, circuit_enabled=False)

    assert BreakerPolicy.of(settings, None).enabled is False
    assert BreakerPolicy.of(settings, {"enabled": True}).enabled is True


def test_cooldown_cap_below_the_cooldown_is_raised_to_it(settings: Settings) -> None:
    # Only settings enforce the order; stored overrides are taken as they are.
    both = BreakerPolicy.of(settings, {"cooldown_s": 120, "max_cooldown_s": 60})
    assert (both.cooldown, both.max_cooldown) == (timedelta(seconds=120),) * 2

    # A cooldown above the global cap raises the cap with it.
    long_cooldown = BreakerPolicy.of(settings, {"cooldown_s": 3600})
    assert (long_cooldown.cooldown, long_cooldown.max_cooldown) == (timedelta(hours=1),) * 2

    # A cap below the global cooldown is the cooldown.
    low_cap = BreakerPolicy.of(settings, {"max_cooldown_s": 5})
    assert (low_cap.cooldown, low_cap.max_cooldown) == (timedelta(seconds=45),) * 2


def test_cap_above_the_cooldown_is_kept(settings: Settings) -> None:
    raised = BreakerPolicy.of(settings, {"max_cooldown_s": 3600})

    assert raised.max_cooldown == timedelta(hours=1)
    assert raised.cooldown == timedelta(seconds=45)


# cooldown_after


def test_cooldown_doubles_with_each_reopen_up_to_the_cap() -> None:
    rule = policy(cooldown=timedelta(seconds=30), max_cooldown=timedelta(minutes=10))

    assert [rule.cooldown_after(n).total_seconds() for n in range(8)] == [
        30,
        60,
        120,
        240,
        480,
        600,
        600,
        600,
    ]


@pytest.mark.parametrize("reopens", [31, 32, 33, 64, 1000, 10**9])
def test_cooldown_stays_capped_after_many_reopens(reopens: int) -> None:
    rule = policy(cooldown=timedelta(seconds=30), max_cooldown=timedelta(minutes=10))

    assert rule.cooldown_after(reopens) == timedelta(minutes=10)


def test_cooldown_equal_to_its_cap_never_grows() -> None:
    rule = policy(cooldown=timedelta(seconds=45), max_cooldown=timedelta(seconds=45))

    assert {rule.cooldown_after(n) for n in range(40)} == {timedelta(seconds=45)}


def test_cooldown_is_never_above_the_cap_nor_below_the_cooldown(settings: Settings) -> None:
    rule = BreakerPolicy.of(settings, {"cooldown_s": 7, "max_cooldown_s": 1000})

    waits = [rule.cooldown_after(n) for n in range(40)]

    assert waits == sorted(waits)
    assert waits[0] == timedelta(seconds=7)
    assert waits[-1] == timedelta(seconds=1000)


@pytest.mark.parametrize(
    ("cooldown_s", "reopens"),
    [(86_400, 30), (21_600, 32), (86_400, 33), (86_400, 64), (86_400, 65), (86_400, 10**9)],
)
def test_long_cooldown_stays_capped_after_many_reopens(cooldown_s: int, reopens: int) -> None:
    # The largest cooldown the API accepts, doubled past what a timedelta can hold.
    rule = BreakerPolicy.of(
        Settings(_env_file=None), {"cooldown_s": cooldown_s, "max_cooldown_s": 604_800}
    )

    assert rule.cooldown_after(reopens) == timedelta(days=7)


def test_cooldown_that_would_overflow_a_timedelta_returns_the_cap() -> None:
    rule = policy(cooldown=timedelta(days=1), max_cooldown=timedelta(days=7))

    with pytest.raises(OverflowError):  # what doubling it as a timedelta would do
        _ = rule.cooldown * 2**30

    assert rule.cooldown_after(30) == timedelta(days=7)
    assert rule.cooldown_after(2) == timedelta(days=4)
    assert rule.cooldown_after(3) == timedelta(days=7)


def test_fractional_cooldown_doubles_exactly() -> None:
    rule = policy(cooldown=timedelta(milliseconds=500), max_cooldown=timedelta(seconds=2))

    assert [rule.cooldown_after(n) for n in range(5)] == [
        timedelta(milliseconds=500),
        timedelta(seconds=1),
        timedelta(seconds=2),
        timedelta(seconds=2),
        timedelta(seconds=2),
    ]


# Settings validation


def test_circuit_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_CIRCUIT_COOLDOWN", "1m")
    monkeypatch.setenv("HERALD_CIRCUIT_MAX_COOLDOWN", "1h")
    monkeypatch.setenv("HERALD_CIRCUIT_ENABLED", "false")
    monkeypatch.setenv("HERALD_ENDPOINT_MAX_IN_FLIGHT", "3")
    monkeypatch.setenv("HERALD_RATE_LIMIT_BURST", "250ms")

    settings = Settings(_env_file=None)

    assert settings.circuit_cooldown == timedelta(minutes=1)
    assert settings.circuit_max_cooldown == timedelta(hours=1)
    assert settings.circuit_enabled is False
    assert settings.endpoint_max_in_flight == 3
    assert settings.rate_limit_burst == timedelta(milliseconds=250)


def test_max_cooldown_below_cooldown_is_refused() -> None:
    with pytest.raises(ValidationError, match="HERALD_CIRCUIT_MAX_COOLDOWN"):
        Settings(
            _env_file=None,
            circuit_cooldown=timedelta(minutes=5),
            circuit_max_cooldown=timedelta(minutes=1),
        )


def test_max_cooldown_below_the_default_cooldown_is_refused() -> None:
    with pytest.raises(ValidationError, match="HERALD_CIRCUIT_MAX_COOLDOWN"):
        Settings(_env_file=None, circuit_max_cooldown=timedelta(seconds=10))


def test_max_cooldown_equal_to_cooldown_is_accepted() -> None:
    settings = Settings(
        _env_file=None,
        circuit_cooldown=timedelta(minutes=5),
        circuit_max_cooldown=timedelta(minutes=5),
    )

    assert BreakerPolicy.of(settings, None).cooldown_after(3) == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("circuit_consecutive_failures", 0),
        ("circuit_failure_rate", 0),
        ("circuit_failure_rate", 1.5),
        ("circuit_min_requests", 0),
        ("endpoint_max_in_flight", 0),
        ("endpoint_max_in_flight", 10_001),
    ],
)
def test_out_of_range_circuit_and_limit_settings_are_refused(name: str, value: float) -> None:
    fields: dict[str, Any] = {name: value}
    with pytest.raises(ValidationError, match=name):
        Settings(_env_file=None, **fields)


@pytest.mark.parametrize(
    "url",
    [
        "https://ops.example.com/herald",
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
    ],
)
def test_operational_webhook_url_accepts_http_and_https(url: str) -> None:
    assert Settings(_env_file=None, operational_webhook_url=url).operational_webhook_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://ops.example.com/hook",
        "file:///etc/passwd",
        "ops.example.com/hook",
        "javascript:alert(1)",
        # http(s), but no host to send to
        "https://",
        "http:///hook",
        "https://:443/hook",
        "http://user@/hook",
        "https:ops.example.com",
    ],
)
def test_operational_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an http or https URL with a host") as caught:
        Settings(_env_file=None, operational_webhook_url=url)

    assert caught.value.errors()[0]["loc"] == ("operational_webhook_url",)


def test_operational_webhook_url_from_environment_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_OPERATIONAL_WEBHOOK_URL", "gopher://ops.example.com/")

    with pytest.raises(ValidationError, match="operational_webhook_url"):
        Settings(_env_file=None)


def test_empty_operational_webhook_settings_are_unset() -> None:
    settings = Settings(_env_file=None, operational_webhook_url="", operational_webhook_secret="")

    assert settings.operational_webhook_url is None
    assert settings.operational_webhook_secret is None


def test_empty_operational_webhook_variables_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a deployment template leaves them: HERALD_OPERATIONAL_WEBHOOK_URL=
    monkeypatch.setenv("HERALD_OPERATIONAL_WEBHOOK_URL", "")
    monkeypatch.setenv("HERALD_OPERATIONAL_WEBHOOK_SECRET", "")

    settings = Settings(_env_file=None)

    assert settings.operational_webhook_url is None
    assert settings.operational_webhook_secret is None


def test_operational_webhook_secret_accepts_a_whsec_secret() -> None:
    secret = generate_secret()

    settings = Settings(_env_file=None, operational_webhook_secret=secret)

    assert settings.operational_webhook_secret is not None
    assert settings.operational_webhook_secret.get_secret_value() == secret
    assert secret not in repr(settings)


def _whsec(raw_bytes: int) -> str:
    return "whsec_" + base64.b64encode(b"k" * raw_bytes).decode()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("not-a-secret", "must start with 'whsec_'"),
        (base64.b64encode(b"k" * 32).decode(), "must start with 'whsec_'"),
        ("whsec_not base64!", "standard base64"),
        (_whsec(23), "24 to 64 bytes"),
        (_whsec(65), "24 to 64 bytes"),
        ("whsec_", "24 to 64 bytes"),
    ],
)
def test_operational_webhook_secret_must_be_valid(secret: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as caught:
        Settings(_env_file=None, operational_webhook_secret=secret)

    assert caught.value.errors()[0]["loc"] == ("operational_webhook_secret",)


@pytest.mark.parametrize("raw_bytes", [24, 64])
def test_operational_webhook_secret_size_limits_are_inclusive(raw_bytes: int) -> None:
    assert Settings(_env_file=None, operational_webhook_secret=_whsec(raw_bytes))


def test_rejected_operational_webhook_secret_is_not_echoed() -> None:
    nearly_a_secret = "whsec_" + base64.b64encode(b"s" * 20).decode()

    with pytest.raises(ValidationError, match="24 to 64 bytes") as caught:
        Settings(_env_file=None, operational_webhook_secret=nearly_a_secret)

    assert nearly_a_secret not in str(caught.value)
    assert nearly_a_secret not in repr(caught.value)


def test_rejected_operational_webhook_secret_from_environment_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nearly_a_secret = "whsec_" + base64.b64encode(b"t" * 20).decode()
    monkeypatch.setenv("HERALD_OPERATIONAL_WEBHOOK_SECRET", nearly_a_secret)

    with pytest.raises(ValidationError, match="operational_webhook_secret") as caught:
        Settings(_env_file=None)

    assert nearly_a_secret not in str(caught.value)


def test_rejected_operational_webhook_url_is_not_echoed() -> None:
    # A URL may carry credentials.
    url = "ftp://ops:hunter2-credential@ops.example.com/hook"

    with pytest.raises(ValidationError, match="operational_webhook_url") as caught:
        Settings(_env_file=None, operational_webhook_url=url)

    assert "hunter2-credential" not in str(caught.value)
