"""delivery chains and attempt error detail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:25:23.255144+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("attempts", sa.Column("error_detail", sa.Text(), nullable=True))
    op.add_column(
        "deliveries", sa.Column("chain_attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "deliveries",
        sa.Column("trigger", sa.String(length=16), server_default="scheduled", nullable=False),
    )
    op.add_column("deliveries", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("deliveries", "finished_at")
    op.drop_column("deliveries", "trigger")
    op.drop_column("deliveries", "chain_attempts")
    op.drop_column("attempts", "error_detail")
