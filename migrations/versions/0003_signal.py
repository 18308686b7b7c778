"""Demand signal: dedupe groups, identities, spikes, themes (issue 8).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "author_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_author_identity")),
    )
    op.create_table(
        "identity_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("linked_by", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["author_identity.id"],
            name=op.f("fk_identity_key_identity_id_author_identity"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_key")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_identity_key_kind_value")),
    )
    with op.batch_alter_table("identity_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_key_identity_id"), ["identity_id"])

    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dedupe_group_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dedupe_reason", sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f("ix_item_identity_id"), ["identity_id"])
        batch_op.create_index(batch_op.f("ix_item_dedupe_group_id"), ["dedupe_group_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_item_identity_id_author_identity"),
            "author_identity",
            ["identity_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "signal_author",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket_start", UTC, nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("author_key", sa.String(length=80), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity",
            "bucket_start",
            "queue",
            "channel",
            "author_key",
            name=op.f("pk_signal_author"),
        ),
    )
    op.create_table(
        "signal_bucket",
        sa.Column("granularity", sa.String(length=1), nullable=False),
        sa.Column("bucket_start", UTC, nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("neutral", sa.Integer(), nullable=False),
        sa.Column("positive", sa.Integer(), nullable=False),
        sa.Column("compound_sum", sa.Float(), nullable=False),
        sa.Column("demand", sa.Float(), nullable=False),
        sa.Column("authors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity", "bucket_start", "queue", "channel", name=op.f("pk_signal_bucket")
        ),
    )
    op.create_table(
        "feed_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_feed_event_item_id_item"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_event")),
    )
    with op.batch_alter_table("feed_event", schema=None) as batch_op:
        batch_op.create_index("ix_feed_event_queue_id", ["queue", "id"])
        batch_op.create_index(batch_op.f("ix_feed_event_item_id"), ["item_id"])

    op.create_table(
        "spike",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("bucket_start", UTC, nullable=False),
        sa.Column("last_bucket_start", UTC, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("scale", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("exemplars", JSON, nullable=False),
        sa.Column("raised_at", UTC, nullable=False),
        sa.Column("acknowledged_at", UTC, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("notified_at", UTC, nullable=True),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spike")),
    )
    with op.batch_alter_table("spike", schema=None) as batch_op:
        batch_op.create_index("ix_spike_open", ["state", "scope", "key", "metric"])

    op.create_table(
        "theme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("fitted_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_theme")),
    )
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.create_index("ix_theme_queue", ["queue"])

    op.create_table(
        "theme_member",
        sa.Column("theme_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_theme_member_item_id_item"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["theme_id"],
            ["theme.id"],
            name=op.f("fk_theme_member_theme_id_theme"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("theme_id", "item_id", name=op.f("pk_theme_member")),
    )
    with op.batch_alter_table("theme_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_theme_member_item_id"), ["item_id"])


def downgrade() -> None:
    op.drop_table("theme_member")
    op.drop_table("theme")
    op.drop_table("spike")
    op.drop_table("feed_event")
    op.drop_table("signal_bucket")
    op.drop_table("signal_author")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_item_identity_id_author_identity"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_item_dedupe_group_id"))
        batch_op.drop_index(batch_op.f("ix_item_identity_id"))
        batch_op.drop_column("dedupe_reason")
        batch_op.drop_column("dedupe_group_id")
        batch_op.drop_column("identity_id")
    op.drop_table("identity_key")
    op.drop_table("author_identity")
