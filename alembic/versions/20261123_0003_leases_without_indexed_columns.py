"""leases without indexed columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 11:56:37.543560+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_deliveries_tenant_id_event_type_id"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_tenant_id_status_id"), table_name="deliveries")
    # In-flight deliveries stay "pending" and carry a lease instead of a status.
    op.execute(
        "UPDATE deliveries SET status = 'pending', lease_expires_at = next_attempt_at "
        "WHERE status = 'delivering'"
    )
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_deliveries_status"),
        "deliveries",
        "status IN ('pending', 'succeeded', 'dead', 'held')",
    )
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'held')"),
    )
    op.execute("ALTER TABLE deliveries SET (fillfactor = 80)")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'delivering', 'held')"),
    )
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_deliveries_status"),
        "deliveries",
        "status IN ('pending', 'delivering', 'succeeded', 'dead', 'held')",
    )
    op.create_index(
        op.f("ix_deliveries_tenant_id_status_id"),
        "deliveries",
        ["tenant_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_deliveries_tenant_id_event_type_id"),
        "deliveries",
        ["tenant_id", "event_type", "id"],
        unique=False,
    )
