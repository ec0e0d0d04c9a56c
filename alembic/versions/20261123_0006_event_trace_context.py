"""event trace context

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:27:34.423380+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("trace_context", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "trace_context")
