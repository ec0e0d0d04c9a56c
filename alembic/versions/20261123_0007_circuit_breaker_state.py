"""circuit breaker state; held deliveries leave the due index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:23:12.132659+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("circuit_reopens", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index(
        "ix_endpoints_circuit",
        "endpoints",
        ["circuit_next_probe_at"],
        postgresql_where=sa.text("circuit_state <> 'closed'"),
    )
    op.create_index(
        "ix_deliveries_held",
        "deliveries",
        ["endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'held'"),
    )
    # Held rows keep their due time now; they must not sit in the claim's index.
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'held')"),
    )
    op.drop_index("ix_deliveries_held", table_name="deliveries")
    op.drop_index("ix_endpoints_circuit", table_name="endpoints")
    op.drop_column("endpoints", "circuit_reopens")
