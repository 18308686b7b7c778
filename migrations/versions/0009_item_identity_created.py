"""Items by customer and time: one index on (identity_id, created_at) replaces identity_id's.

Dedupe asks, for each page, for the latest items of the page's customers inside a time
window; with an index on identity_id alone every item of those customers was read to find
the few in the window (200 per customer at a million bench items). The composite index
serves that range and every lookup by identity the old one served.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_item_identity_created", "item", ["identity_id", "created_at"])
    op.drop_index("ix_item_identity_id", table_name="item")


def downgrade() -> None:
    op.create_index("ix_item_identity_id", "item", ["identity_id"])
    op.drop_index("ix_item_identity_created", table_name="item")
