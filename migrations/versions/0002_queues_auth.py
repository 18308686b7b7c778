"""Queues, leases, API keys and the audit log (issue 7).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("queues", JSON, nullable=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_key_name")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=100), nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_entity", ["entity", "entity_id"], unique=False)

    op.create_table(
        "priority_weights",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weights", JSON, nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_priority_weights")),
    )
    with op.batch_alter_table("queue_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority_breakdown", JSON, nullable=False, server_default="{}")
        )
        batch_op.add_column(
            sa.Column("rank", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column(
                "waiting_since",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch_op.add_column(
            sa.Column("first_claimed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.drop_index("ix_queue_entry_pull")
        batch_op.create_index("ix_queue_entry_pull", ["queue", "state", "rank", "id"], unique=False)
        batch_op.create_index("ix_queue_entry_lease", ["state", "lease_expires_at"], unique=False)
    # Entries from before: they started waiting when they were created.
    op.execute("UPDATE queue_entry SET waiting_since = created_at")
    with op.batch_alter_table("queue_entry", schema=None) as batch_op:
        batch_op.alter_column("priority_breakdown", server_default=None)
        batch_op.alter_column("rank", server_default=None)
        batch_op.alter_column("waiting_since", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("queue_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_entry_lease")
        batch_op.drop_index("ix_queue_entry_pull")
        batch_op.create_index(
            "ix_queue_entry_pull", ["queue", "state", "priority", "created_at"], unique=False
        )
        batch_op.drop_column("first_claimed_at")
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("rank")
        batch_op.drop_column("priority_breakdown")
    op.drop_table("priority_weights")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_entity")
    op.drop_table("audit_event")
    op.drop_table("api_key")
