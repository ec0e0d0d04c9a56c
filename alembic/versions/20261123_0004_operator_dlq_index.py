"""operator dlq index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:03:11.553612+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_dead_at",
        "deliveries",
        ["dead_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'dead'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_deliveries_dead_at",
        table_name="deliveries",
        postgresql_where=sa.text("status = 'dead'"),
    )
