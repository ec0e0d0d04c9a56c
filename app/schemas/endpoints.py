from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, Strict, StrictBool, StringConstraints, model_validator

from app.headers import MAX_HEADERS, redact
from app.models import Endpoint
from app.schemas.common import InputModel, Metadata, StorableText, TenantRef

MAX_URL_LENGTH = 2048

Url = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH), StorableText]
Description = Annotated[str, StringConstraints(max_length=1024), StorableText]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=130), StorableText]
Subscriptions = Annotated[list[Pattern], Field(min_length=1, max_length=64)]
HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=128), StorableText]
HeaderValue = Annotated[str, StringConstraints(max_length=4096), StorableText]
Headers = Annotated[dict[HeaderName, HeaderValue], Field(max_length=MAX_HEADERS)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=200), StorableText]
# Strict: pydantic would otherwise read JSON true as 1 (and 1.0 as 1).
RateLimit = Annotated[int, Strict(), Field(ge=1, le=100_000, description="deliveries per second")]


class CircuitBreakerConfig(InputModel):
    """Per-endpoint overrides of the global circuit breaker settings; omitted = global."""

    enabled: StrictBool | None = None
    consecutive_failures: Annotated[int, Strict(), Field(ge=1, le=1000)] | None = None
    # Strict still takes an integer (1), but no longer a boolean.
    failure_rate: Annotated[float, Strict(), Field(gt=0, le=1)] | None = None
    window_s: Annotated[int, Strict(), Field(ge=1, le=86_400)] | None = None
    min_requests: Annotated[int, Strict(), Field(ge=1, le=100_000)] | None = None
    cooldown_s: Annotated[int, Strict(), Field(ge=1, le=86_400)] | None = None
    max_cooldown_s: Annotated[int, Strict(), Field(ge=1, le=604_800)] | None = None

    @model_validator(mode="after")
    def _cooldown_cap_not_below_cooldown(self) -> Self:
        if (
            self.cooldown_s is not None
            and self.max_cooldown_s is not None
            and self.max_cooldown_s < self.cooldown_s
        ):
            raise ValueError("max_cooldown_s must not be less than cooldown_s")
        return self


class EndpointCreate(InputModel):
    tenant_id: TenantRef | None = None
    url: Url
    description: Description | None = None
    subscriptions: Subscriptions = ["*"]
    filter: dict[str, Any] | None = None
    headers: Headers = {}
    secret: Secret | None = None
    rate_limit: RateLimit | None = None
    circuit_breaker: CircuitBreakerConfig | None = None
    enabled: StrictBool = True
    metadata: Metadata = {}


class EndpointUpdate(InputModel):
    """Fields present in the body are replaced; ``null`` clears the optional ones."""

    url: Url | None = None
    description: Description | None = None
    subscriptions: Subscriptions | None = None
    filter: dict[str, Any] | None = None
    headers: Headers | None = None
    rate_limit: RateLimit | None = None
    circuit_breaker: CircuitBreakerConfig | None = None
    enabled: StrictBool | None = None
    metadata: Metadata | None = None


class CircuitOut(BaseModel):
    state: Literal["closed", "open", "half_open"]
    failures: int
    opened_at: datetime | None
    next_probe_at: datetime | None


class EndpointOut(BaseModel):
    id: str
    tenant_id: str
    url: str
    description: str | None
    subscriptions: list[str]
    filter: dict[str, Any] | None
    headers: dict[str, str] = Field(description="sensitive values are shown as [REDACTED]")
    rate_limit: int | None
    circuit_breaker: CircuitBreakerConfig | None
    enabled: bool
    disabled_reason: str | None
    metadata: dict[str, str]
    circuit: CircuitOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: Endpoint) -> "EndpointOut":
        state: Literal["closed", "open", "half_open"] = (
            "open"
            if endpoint.circuit_state == "open"
            else "half_open"
            if endpoint.circuit_state == "half_open"
            else "closed"
        )
        return cls(
            id=endpoint.id,
            tenant_id=endpoint.tenant_id,
            url=endpoint.url,
            description=endpoint.description,
            subscriptions=endpoint.subscriptions,
            filter=endpoint.filter,
            headers=redact(endpoint.headers),
            rate_limit=endpoint.rate_limit,
            circuit_breaker=(
                CircuitBreakerConfig.model_validate(endpoint.circuit_breaker)
                if endpoint.circuit_breaker is not None
                else None
            ),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            metadata=endpoint.metadata_,
            circuit=CircuitOut(
                state=state,
                failures=endpoint.circuit_failures,
                opened_at=endpoint.circuit_opened_at,
                next_probe_at=endpoint.circuit_next_probe_at,
            ),
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


class PreviousSecret(BaseModel):
    secret: str
    expires_at: datetime


class SecretOut(BaseModel):
    secret: str
    previous: list[PreviousSecret]

    @classmethod
    def of(cls, current: str, previous: Iterable[tuple[str, datetime]]) -> "SecretOut":
        """From opened secrets: the current one, and each previous one with its expiry."""
        return cls(
            secret=current,
            previous=[
                PreviousSecret(secret=secret, expires_at=expires_at)
                for secret, expires_at in previous
            ],
        )


class SecretRotate(InputModel):
    secret: Secret | None = Field(default=None, description="omit to generate one")
    grace_period_s: Annotated[int, Strict(), Field(ge=0, le=7 * 86_400)] | None = Field(
        default=None, description="how long the current secret stays valid (default 24 h)"
    )


class DeliveryCounts(BaseModel):
    pending: int
    delivering: int
    succeeded: int
    dead: int
    held: int
    total: int


class LatencyMs(BaseModel):
    p50: float | None
    p95: float | None


class EndpointStatsOut(BaseModel):
    endpoint_id: str
    since: datetime
    until: datetime
    deliveries: DeliveryCounts
    attempts: int
    success_rate: float | None = Field(description="share of attempts answered with 2xx")
    latency_ms: LatencyMs
