"""Configuration from ``HERALD_*`` environment variables (and ``.env``).

Settings are built once per process by its entry point and passed down explicitly;
nothing reads the environment at import time.
"""

import tempfile
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.durations import parse_duration, parse_schedule
from app.signing_secrets import secret_problem

DEVELOPMENT_SECRET_KEY = "herald-development-secret-key-do-not-use-in-production"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/herald"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _schedule(value: object) -> object:
    return parse_schedule(value) if isinstance(value, str) else value


def _csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Settings(BaseSettings):
    # Errors name the setting but never echo its value: it may be a secret.
    model_config = SettingsConfigDict(
        env_prefix="HERALD_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    env: Literal["development", "production"] = "development"
    database_url: str | None = None
    redis_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    operator_key: SecretStr | None = None
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)

    retry_schedule: Annotated[tuple[Duration, ...], NoDecode, BeforeValidator(_schedule)] = (
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
    )
    request_timeout: Duration = timedelta(seconds=30)
    allow_cidrs: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_csv)] = ()
    dlq_retention: Duration = timedelta(days=30)
    retention: Duration = timedelta(days=30)
    retention_interval: Duration = timedelta(minutes=5)
    retention_batch: int = Field(default=1000, ge=1, le=100_000)
    operational_webhook_url: str | None = None
    operational_webhook_secret: SecretStr | None = None

    # Circuit breaker defaults; an endpoint's ``circuit_breaker`` overrides each of them.
    circuit_enabled: bool = True
    circuit_consecutive_failures: int = Field(default=5, ge=1, le=1000)
    circuit_failure_rate: float = Field(default=0.5, gt=0, le=1)
    circuit_window: Duration = timedelta(seconds=60)
    circuit_min_requests: int = Field(default=10, ge=1)
    circuit_cooldown: Duration = timedelta(seconds=30)
    circuit_max_cooldown: Duration = timedelta(minutes=10)
    circuit_hold_limit: Duration = timedelta(hours=24)
    circuit_disable_limit: Duration = timedelta(days=5)
    # Requests in flight to one endpoint across all workers, so one slow receiver cannot
    # take every worker's slots.
    endpoint_max_in_flight: int = Field(default=20, ge=1, le=10_000)
    # How far ahead of its steady rate a rate-limited endpoint may be sent to: a limit of
    # 100/s with 100 ms allows bursts of 10.
    rate_limit_burst: Duration = timedelta(milliseconds=100)

    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    secret_rotation_grace: Duration = timedelta(hours=24)
    idempotency_window: Duration = timedelta(hours=24)
    strict_event_types: bool = False
    queue_name: str = "herald:queue"
    worker_concurrency: int = Field(default=200, ge=1, le=10_000)
    worker_claim_batch: int = Field(default=100, ge=1, le=1000)
    worker_lease: Duration = timedelta(seconds=90)
    worker_idle_poll: Duration = timedelta(seconds=1)
    worker_poll_delay: Duration = timedelta(milliseconds=10)
    worker_shutdown_grace: Duration = timedelta(seconds=10)
    job_batch: int = Field(default=500, ge=1, le=10_000)
    db_pool_size: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    otel_enabled: bool = False
    worker_metrics_host: str = "127.0.0.1"
    worker_heartbeat_file: Path = Path(tempfile.gettempdir()) / "herald-worker.heartbeat"
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535, description="0 turns it off")

    @field_validator("allow_cidrs")
    @classmethod
    def _valid_cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            ip_network(cidr, strict=True)
        return cidrs

    @field_validator("operational_webhook_url", "operational_webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("operational_webhook_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        return url

    @field_validator("operational_webhook_secret")
    @classmethod
    def _signing_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and (problem := secret_problem(secret.get_secret_value())):
            raise ValueError(problem)
        return secret

    @field_validator("retry_schedule")
    @classmethod
    def _positive_steps(cls, schedule: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if any(step.total_seconds() <= 0 for step in schedule):
            raise ValueError("every retry delay must be positive")
        return schedule

    @model_validator(mode="after")
    def _cooldown_cap_not_below_cooldown(self) -> Self:
        if self.circuit_max_cooldown < self.circuit_cooldown:
            raise ValueError("HERALD_CIRCUIT_MAX_COOLDOWN must not be less than the cooldown")
        return self

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> Self:
        # A lease that ended mid-request would let a second worker send the same attempt.
        if self.worker_lease <= self.request_timeout:
            raise ValueError("HERALD_WORKER_LEASE must be longer than HERALD_REQUEST_TIMEOUT")
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Self:
        if self.env != "production":
            return self
        if self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY:
            raise ValueError("HERALD_SECRET_KEY must be set in production")
        if len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("HERALD_SECRET_KEY must be at least 32 characters")
        if self.operator_key is None or len(self.operator_key.get_secret_value()) < 32:
            raise ValueError(
                "HERALD_OPERATOR_KEY (at least 32 characters) is required in production"
            )
        if self.database_url is None or self.redis_url is None:
            raise ValueError("HERALD_DATABASE_URL and HERALD_REDIS_URL are required in production")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or DEFAULT_DATABASE_URL

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def https_only(self) -> bool:
        """Production sends webhooks only over https."""
        return self.env == "production"

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1
