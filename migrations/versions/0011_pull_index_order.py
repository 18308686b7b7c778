"""Claim indexes: the pull index in the pull order; the claimed entries in two small indexes.

A claim takes the open entry with the highest rank, the oldest (lowest id) first among equal
ranks: ``ORDER BY rank DESC, id ASC``. The index of 0002 was (queue, state, rank, id); read
backwards it gives ``rank DESC, id DESC``, which is not that order, so every claim read
*every* open entry of the queue and sorted them before taking one (on PostgreSQL 530 buffers
and 1.2 ms for a claim with 4,000 entries open; SQLite sorted in a temporary B-tree the same
way): a claim's cost grew with the queue's depth. With ``rank DESC`` in the index the scan
stops at the first entry it can lock.

The checks a claim makes read claimed entries only: a lapsed lease in the queue, the agent's
work in progress (its WIP limit), the queue's. They read ``ix_queue_entry_lease`` (state,
lease_expires_at), which holds every version of every entry ever claimed until VACUUM: the
agent's count ran as a bitmap scan over all of them (6,400 index entries and 220 heap pages
per claim after 6,000 claims), and a bitmap scan never marks a dead entry for the next scan
to skip. Two partial indexes ``WHERE state = 'claimed'`` replace it: (queue,
lease_expires_at) for the queue's checks and the lease sweep, (claimed_by, lease_expires_at)
for the agent's count; each is as small as the work in progress plus the versions the last
VACUUM has not yet removed.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CLAIMED = sa.text("state = 'claimed'")


def upgrade() -> None:
    op.drop_index("ix_queue_entry_pull", table_name="queue_entry")
    op.create_index(
        "ix_queue_entry_pull", "queue_entry", ["queue", "state", sa.text("rank DESC"), "id"]
    )
    op.drop_index("ix_queue_entry_lease", table_name="queue_entry")
    for name, column in (
        ("ix_queue_entry_lease", "queue"),
        ("ix_queue_entry_holder", "claimed_by"),
    ):
        op.create_index(
            name,
            "queue_entry",
            [column, "lease_expires_at"],
            sqlite_where=CLAIMED,
            postgresql_where=CLAIMED,
        )


def downgrade() -> None:
    op.drop_index("ix_queue_entry_holder", table_name="queue_entry")
    op.drop_index("ix_queue_entry_lease", table_name="queue_entry")
    op.create_index("ix_queue_entry_lease", "queue_entry", ["state", "lease_expires_at"])
    op.drop_index("ix_queue_entry_pull", table_name="queue_entry")
    op.create_index("ix_queue_entry_pull", "queue_entry", ["queue", "state", "rank", "id"])
