"""PostgreSQL: ``andon_claim``, a claim in one statement (the agents' hot path).

A claim is the agent's lock (its WIP limit holds under concurrency, a revoked key is
refused), a check for lapsed leases in the queue, the ``UPDATE … FOR UPDATE SKIP LOCKED``
with the WIP count inside, its audit row, and the item with its verdict for the answer. The
WIP count must be read in a snapshot taken *after* the agent's lock is held, so in plain SQL
the claim is two statements in a transaction: four round trips with BEGIN and COMMIT. In a
VOLATILE PL/pgSQL function every statement takes a fresh snapshot (READ COMMITTED), so the
same steps run server-side in one call, in autocommit (``app.queues.fast``).

The function returns no row when the fast path must not decide: the key is revoked or
unknown, a lease in the queue has lapsed (expiring it writes the previous holder's audit
rows), or nothing was claimed (the queue is empty or the agent is at its limit). The caller
then runs the general path (``app.queues.service.claim_with_item``), which handles each
case. SQLite has no functions: there the general path is the only one.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION andon_claim(
    p_key_id integer, p_queue varchar, p_agent varchar, p_lease_until timestamptz,
    p_now timestamptz, p_agent_limit integer, p_audit_at timestamptz,
    p_before jsonb, p_after jsonb)
RETURNS TABLE (claimed_entry queue_entry, claimed_item item, claimed_verdict classification)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    taken queue_entry;
BEGIN
    -- The agent's lock serialises its claims; the count below sees all its other claims.
    PERFORM 1 FROM api_key WHERE id = p_key_id AND revoked_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM 1 FROM queue_entry
        WHERE state = 'claimed' AND lease_expires_at < p_now AND queue = p_queue LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    UPDATE queue_entry SET state = 'claimed', claimed_by = p_agent,
           lease_expires_at = p_lease_until,
           first_claimed_at = coalesce(first_claimed_at, p_now), updated_at = p_now
    WHERE id = (SELECT id FROM queue_entry WHERE queue = p_queue AND state = 'open'
                ORDER BY rank DESC, id ASC LIMIT 1 FOR UPDATE SKIP LOCKED)
      AND state = 'open'
      AND p_agent_limit > (SELECT count(id) FROM queue_entry
                           WHERE state = 'claimed' AND claimed_by = p_agent
                             AND lease_expires_at >= p_now)
    RETURNING * INTO taken;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The audit row's before/after come from the caller but for the note, which a claim
    -- keeps: added here.
    INSERT INTO audit_event (at, actor, action, entity, entity_id, before, after)
    VALUES (p_audit_at, p_agent, 'entry.claim', 'queue_entry', CAST(taken.id AS varchar),
            p_before || jsonb_build_object('note', taken.note),
            p_after || jsonb_build_object('note', taken.note));
    RETURN QUERY SELECT taken, i, c FROM item AS i
        LEFT OUTER JOIN classification AS c ON c.item_id = i.id
        WHERE i.id = taken.item_id;
END
$$
"""

DROP = (
    "DROP FUNCTION IF EXISTS andon_claim("
    "integer, varchar, varchar, timestamptz, timestamptz, integer, timestamptz, jsonb, jsonb)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP)
