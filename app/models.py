"""The PostgreSQL schema: SQLAlchemy 2 models. Every change needs an alembic revision."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


def _tenant_fk() -> Mapped[str]:
    return mapped_column(String(40), ForeignKey("tenants.id", ondelete="CASCADE"))


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("scope IN ('operator', 'tenant')", name="scope"),
        CheckConstraint("(scope = 'tenant') = (tenant_id IS NOT NULL)", name="tenant_scope"),
        Index(None, "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("tenants.id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(256))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EventType(Base):
    __tablename__ = "event_types"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    schema: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    archived: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Endpoint(Base):
    __tablename__ = "endpoints"
    __table_args__ = (
        CheckConstraint("circuit_state IN ('closed', 'open', 'half_open')", name="circuit_state"),
        Index(None, "tenant_id", "id"),
        # The workers' circuit keeper: endpoints whose circuit is not closed.
        Index(
            "ix_endpoints_circuit",
            "circuit_next_probe_at",
            postgresql_where=text("circuit_state <> 'closed'"),
        ),
        # Fan-out selects enabled endpoints whose patterns overlap the event's candidates.
        Index(
            "ix_endpoints_subscriptions",
            "subscriptions",
            postgresql_using="gin",
            postgresql_where=text("enabled"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    subscriptions: Mapped[list[str]] = mapped_column(ARRAY(Text))
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, server_default="{}")
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    circuit_breaker: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    circuit_state: Mapped[str] = mapped_column(String(16), server_default="closed")
    circuit_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    circuit_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    circuit_next_probe_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed probes since the circuit opened; each doubles the cool-down (up to the cap).
    circuit_reopens: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class EndpointSecret(Base):
    """One signing secret; the current one has no ``expires_at``, rotated ones expire."""

    __tablename__ = "endpoint_secrets"
    __table_args__ = (Index(None, "endpoint_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("endpoints.id", ondelete="CASCADE")
    )
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index(None, "tenant_id", "id"),
        Index(None, "tenant_id", "type", "id"),
        Index(
            "uq_events_tenant_idempotency_key",
            "tenant_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "uq_events_tenant_caller_id",
            "tenant_id",
            "caller_id",
            unique=True,
            postgresql_where=text("caller_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB(none_as_null=True))
    caller_id: Mapped[str | None] = mapped_column(String(256))
    idempotency_key: Mapped[str | None] = mapped_column(String(256))
    delivery_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # W3C traceparent of the ingest span, so attempts join the caller's trace.
    trace_context: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created_at()


class Delivery(Base):
    """One event to one endpoint.

    A delivery in flight is stored as "pending" with a live lease and shown as "delivering":
    taking the lease touches no indexed column, so PostgreSQL can do it as a HOT update.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'dead', 'held')", name="status"),
        Index(None, "tenant_id", "id"),
        Index(None, "endpoint_id", "id"),
        Index(None, "event_id"),
        # The claim loop's view: only rows that may be sent. Held rows stay out of it, so a
        # backlog held for an open circuit costs the claim nothing.
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Held rows by endpoint in due order: released, probed and expired per endpoint.
        Index(
            "ix_deliveries_held",
            "endpoint_id",
            "next_attempt_at",
            postgresql_where=text("status = 'held'"),
        ),
        Index(
            "ix_deliveries_dead",
            "tenant_id",
            "dead_at",
            "id",
            postgresql_where=text("status = 'dead'"),
        ),
        # The operator's DLQ across all tenants, newest dead first.
        Index(
            "ix_deliveries_dead_at",
            "dead_at",
            "id",
            postgresql_where=text("status = 'dead'"),
        ),
        # Room on each page for the lease update to stay on the page (a HOT update).
        {"postgresql_with": {"fillfactor": "80"}},
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    event_id: Mapped[str] = mapped_column(String(40), ForeignKey("events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # Attempts in the current chain; a resend or replay starts a new chain at 0.
    chain_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    trigger: Mapped[str] = mapped_column(String(16), server_default="scheduled")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_by: Mapped[str | None] = mapped_column(String(128))
    dead_reason: Mapped[str | None] = mapped_column(String(32))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        Index(None, "delivery_id", "number"),
        Index(None, "endpoint_id", "id"),
        Index(None, "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    delivery_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("deliveries.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[str] = mapped_column(String(40))
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    request_headers: Mapped[dict[str, str]] = mapped_column(JSONB(none_as_null=True))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONB(none_as_null=True))
    response_body: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    error_class: Mapped[str | None] = mapped_column(String(16))
    error_detail: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created_at()


class Job(Base):
    """A durable bulk operation (DLQ replay, endpoint recover), worked off in batches.

    ``position`` is the id of the last delivery handled; it moves in the same transaction as
    the deliveries it covers, so a worker killed mid-job resumes without redoing any.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('dlq_replay', 'recover')", name="kind"),
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index(
            "ix_jobs_runnable",
            "id",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("tenants.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB(none_as_null=True))
    total: Mapped[int] = mapped_column(Integer, server_default="0")
    done: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")
    position: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    leased_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
