"""Item metric history and upstream deletions (issue 4).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "item_metric_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("delta", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["item.id"],
            name=op.f("fk_item_metric_snapshot_item_id_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_metric_snapshot")),
    )
    with op.batch_alter_table("item_metric_snapshot", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_item_metric_snapshot_item_id"), ["item_id"], unique=False
        )
        batch_op.create_index("ix_item_metric_snapshot_observed", ["observed_at"], unique=False)
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table("item_metric_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_item_metric_snapshot_observed")
        batch_op.drop_index(batch_op.f("ix_item_metric_snapshot_item_id"))
    op.drop_table("item_metric_snapshot")
