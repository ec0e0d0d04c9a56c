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
    # The deliveries indexes are built CONCURRENTLY (outside the migration's transaction) so
    # a large installation keeps ingesting and delivering while they build.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_deliveries_held",
            "deliveries",
            ["endpoint_id", "next_attempt_at"],
            postgresql_where=sa.text("status = 'held'"),
            postgresql_concurrently=True,
        )
        # Held rows keep their due time now; they must not sit in the claim's index.
        op.create_index(
            "ix_deliveries_due_pending",
            "deliveries",
            ["next_attempt_at"],
            postgresql_where=sa.text("status = 'pending'"),
            postgresql_concurrently=True,
        )
        op.drop_index(
            "ix_deliveries_due",
            table_name="deliveries",
            postgresql_concurrently=True,
        )
    op.execute("ALTER INDEX ix_deliveries_due_pending RENAME TO ix_deliveries_due")


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
