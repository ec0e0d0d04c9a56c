"""app.settings: HERALD_* environment parsing and the production safety checks."""

import os
from datetime import timedelta

import pytest
from pydantic import ValidationError

from app.settings import DEVELOPMENT_SECRET_KEY, Settings

LONG_SECRET = "s" * 32
LONG_OPERATOR_KEY = "o" * 32
PRODUCTION = {
    "HERALD_ENV": "production",
    "HERALD_SECRET_KEY": LONG_SECRET,
    "HERALD_OPERATOR_KEY": LONG_OPERATOR_KEY,
    "HERALD_DATABASE_URL": "postgresql+asyncpg://herald@db:5432/herald",
    "HERALD_REDIS_URL": "redis://redis:6379/0",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HERALD_"):
            monkeypatch.delenv(name)


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings.env == "development"
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.retry_schedule == (
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
    )
    assert settings.max_attempts == 5
    assert settings.allow_cidrs == ()
    assert settings.database_url is None
    assert settings.effective_database_url.startswith("postgresql+asyncpg://")
    assert settings.effective_redis_url.startswith("redis://")


def test_retry_schedule_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, HERALD_RETRY_SCHEDULE="1s,2s,3s")
    assert settings.retry_schedule == (
        timedelta(seconds=1),
        timedelta(seconds=2),
        timedelta(seconds=3),
    )
    assert settings.max_attempts == 4


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("HERALD_REQUEST_TIMEOUT", "30s", "request_timeout", timedelta(seconds=30)),
        ("HERALD_REQUEST_TIMEOUT", "2.5", "request_timeout", timedelta(seconds=2.5)),
        ("HERALD_DLQ_RETENTION", "7d", "dlq_retention", timedelta(days=7)),
        ("HERALD_SECRET_ROTATION_GRACE", "90m", "secret_rotation_grace", timedelta(minutes=90)),
        ("HERALD_IDEMPOTENCY_WINDOW", "12h", "idempotency_window", timedelta(hours=12)),
    ],
)
def test_durations_from_env(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: timedelta
) -> None:
    assert getattr(load(monkeypatch, **{name: value}), field) == expected


def test_allow_cidrs_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, HERALD_ALLOW_CIDRS="127.0.0.1/32, 10.0.0.0/8")
    assert settings.allow_cidrs == ("127.0.0.1/32", "10.0.0.0/8")


def test_allow_cidrs_accepts_ipv6_and_empty_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, HERALD_ALLOW_CIDRS="fd00::/8,,")
    assert settings.allow_cidrs == ("fd00::/8",)


@pytest.mark.parametrize("value", ["10.0.0.0/33", "not-a-network", "127.0.0.1/32, 300.1.1.1/32"])
def test_bad_cidr_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(ValidationError, match="allow_cidrs"):
        load(monkeypatch, HERALD_ALLOW_CIDRS=value)


@pytest.mark.parametrize("value", ["1s,0s,3s", "0", "1m,0ms"])
def test_non_positive_retry_step_rejected(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(ValidationError, match="every retry delay must be positive"):
        load(monkeypatch, HERALD_RETRY_SCHEDULE=value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HERALD_RETRY_SCHEDULE", "1s,-2s"),
        ("HERALD_RETRY_SCHEDULE", "1s,later"),
        ("HERALD_REQUEST_TIMEOUT", "soon"),
        ("HERALD_REQUEST_TIMEOUT", "-5"),
        # Used to escape as a bare OverflowError instead of a validation error.
        ("HERALD_REQUEST_TIMEOUT", "inf"),
        ("HERALD_DLQ_RETENTION", "99999999999999d"),
    ],
)
def test_bad_duration_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ValidationError, match="invalid duration"):
        load(monkeypatch, **{name: value})


def test_settings_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    with pytest.raises(ValidationError):
        settings.api_port = 9000  # type: ignore[misc]


def test_development_allows_the_development_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, HERALD_ENV="development")
    assert settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY
    assert settings.operator_key is None


def test_production_accepts_a_complete_config(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, **PRODUCTION)
    assert settings.env == "production"
    assert settings.secret_key.get_secret_value() == LONG_SECRET
    assert settings.operator_key is not None
    assert settings.operator_key.get_secret_value() == LONG_OPERATOR_KEY
    assert settings.effective_database_url == PRODUCTION["HERALD_DATABASE_URL"]
    assert settings.effective_redis_url == PRODUCTION["HERALD_REDIS_URL"]
    assert settings.https_only


def test_development_allows_plain_http_destinations(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load(monkeypatch).https_only


@pytest.mark.parametrize(
    ("overrides", "missing", "message"),
    [
        ({}, "HERALD_SECRET_KEY", "HERALD_SECRET_KEY must be set in production"),
        (
            {"HERALD_SECRET_KEY": DEVELOPMENT_SECRET_KEY},
            None,
            "HERALD_SECRET_KEY must be set in production",
        ),
        ({"HERALD_SECRET_KEY": "s" * 31}, None, "HERALD_SECRET_KEY must be at least 32"),
        ({}, "HERALD_OPERATOR_KEY", "HERALD_OPERATOR_KEY .* is required in production"),
        (
            {"HERALD_OPERATOR_KEY": "o" * 31},
            None,
            "HERALD_OPERATOR_KEY .* is required in production",
        ),
        ({}, "HERALD_DATABASE_URL", "HERALD_DATABASE_URL and HERALD_REDIS_URL are required"),
        ({}, "HERALD_REDIS_URL", "HERALD_DATABASE_URL and HERALD_REDIS_URL are required"),
    ],
)
def test_production_refuses_unsafe_config(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str], missing: str | None, message: str
) -> None:
    env = PRODUCTION | overrides
    if missing is not None:
        del env[missing]
    with pytest.raises(ValidationError, match=message):
        load(monkeypatch, **env)
