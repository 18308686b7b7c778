"""Pull queues: agents claim the next entry under a lease and act on it.

Pull order: the highest priority first (see ``app.queues.priority``), then the one that has
waited longest. A claim holds the entry for ``ANDON_LEASE_SECONDS`` (15 minutes), renewed by
a heartbeat; a lapsed lease returns the entry to the queue — at the next claim in that queue,
or when ``expire_leases`` runs on a schedule. Only the lease holder acts on a claimed entry.

WIP limits: an agent holds at most ``ANDON_WIP_PER_AGENT`` entries (all queues together); a
queue with an ``ANDON_WIP_PER_QUEUE`` limit has at most that many claimed at once. Claims by
one agent are serialised (a row lock on its key) so its limit holds under concurrency; a
queue limit serialises that queue's claims with an advisory lock.

Every change is written to the audit log in the same unit of work. Nothing here commits.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.audit.service import SYSTEM, record
from app.auth.errors import Unauthorized
from app.auth.service import Principal
from app.config import Settings
from app.errors import Conflict, InvalidInput, LimitExceeded, NotFound
from app.items.models import Classification, Item
from app.items.service import contribution
from app.queues import priority, repository
from app.queues.models import QUEUE_NAMES, Correction, PriorityWeights, QueueEntry
from app.queues.repository import EntryState
from app.signal.service import RollupDeltas
from classifiers.text import compose

STATS_WINDOW_HOURS = 24


def snapshot(entry: QueueEntry | EntryState) -> dict[str, Any]:
    return {
        "queue": entry.queue,
        "state": entry.state,
        "claimed_by": entry.claimed_by,
        "lease_expires_at": entry.lease_expires_at.isoformat() if entry.lease_expires_at else None,
        "note": entry.note,
    }


def known_queue(queue: str) -> None:
    if queue not in QUEUE_NAMES:
        raise NotFound(f"no queue {queue!r}; queues: {', '.join(QUEUE_NAMES)}")


def expire_leases(session: Session, now: datetime, queue: str | None = None) -> int:
    """Return lapsed claims to their queues (the scheduler calls this); how many."""
    expired = repository.expire_leases(session, now, queue)
    for lapsed in expired:
        record(
            session,
            actor=SYSTEM,
            action="entry.expire",
            entity="queue_entry",
            entity_id=lapsed.id,
            before={
                "queue": lapsed.queue,
                "state": "claimed",
                "claimed_by": lapsed.claimed_by,
                "lease_expires_at": lapsed.lease_expires_at.isoformat()
                if lapsed.lease_expires_at
                else None,
            },
            after={"queue": lapsed.queue, "state": "open", "claimed_by": None},
        )
    return len(expired)


def claim(
    session: Session, principal: Principal, queue: str, settings: Settings, now: datetime
) -> EntryState | None:
    """The next entry of ``queue`` for ``principal`` under a lease, or None when it is empty.

    See ``claim_with_item`` (which also returns the item and its verdict).
    """
    claimed = claim_with_item(session, principal, queue, settings, now)
    return claimed[0] if claimed is not None else None


def check_claim(principal: Principal, queue: str) -> None:
    """What every claim checks first: the queue exists, the key may work in it."""
    known_queue(queue)
    principal.require_queue(queue)
    if principal.key_id is None:  # pragma: no cover - only keys have the agent role
        raise InvalidInput("claims need an API key")


def claim_audit(
    queue: str, agent: str, lease_until: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A claim's audit before/after, but for the entry's note (a claim keeps it)."""
    after = {
        "queue": queue,
        "state": "claimed",
        "claimed_by": agent,
        "lease_expires_at": lease_until.isoformat(),
    }
    return {**after, "state": "open", "claimed_by": None, "lease_expires_at": None}, after


def claim_with_item(
    session: Session, principal: Principal, queue: str, settings: Settings, now: datetime
) -> tuple[EntryState, Item, Classification | None] | None:
    """Claim the next entry of ``queue`` (None: empty); the entry, its item and verdict.

    The general path, on both backends: the agent's lock, the lapsed-lease scan, the claim
    (``repository.take_next``), its audit row and the item; a queue with a WIP limit adds
    its advisory lock and count. On PostgreSQL the HTTP claim usually takes the fast path
    (``app.queues.fast``) and comes here for what that declines.
    """
    check_claim(principal, queue)
    assert principal.key_id is not None
    queue_limit = settings.wip_per_queue.get(queue)
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    if not repository.lock_agent(session, principal.key_id):
        raise Unauthorized(f"key {principal.name!r} has been revoked")
    if queue_limit is not None:
        repository.lock_queue(session, queue)
    expire_leases(session, now, queue)
    if queue_limit is not None:
        claimed = repository.wip_of_queue(session, queue, now)
        if claimed >= queue_limit:
            _check_agent_limit(session, principal, settings, now)  # the agent's limit first
            raise LimitExceeded(
                f"{queue} has {claimed} entries claimed, its limit is {queue_limit}",
                limit="queue",
                max=queue_limit,
                held=claimed,
            )
    entry = repository.take_next(
        session, queue, principal.name, lease_until, now, settings.wip_per_agent
    )
    if entry is None:
        _check_agent_limit(session, principal, settings, now)
        return None
    before, after = claim_audit(queue, principal.name, lease_until)
    record(
        session,
        actor=principal.name,
        action="entry.claim",
        entity="queue_entry",
        entity_id=entry.id,
        before={**before, "note": entry.note},
        after={**after, "note": entry.note},
    )
    item, verdict = repository.item_and_verdict(session, entry.item_id)
    return entry, item, verdict


def _check_agent_limit(
    session: Session, principal: Principal, settings: Settings, now: datetime
) -> None:
    held = repository.wip_of_agent(session, principal.name, now)
    if held >= settings.wip_per_agent:
        raise LimitExceeded(
            f"{principal.name} holds {held} entries, the limit per agent is "
            f"{settings.wip_per_agent}: resolve or release one first",
            limit="agent",
            max=settings.wip_per_agent,
            held=held,
        )


def get(session: Session, entry_id: int) -> QueueEntry:
    entry = repository.get(session, entry_id)
    if entry is None:
        raise NotFound(f"no entry {entry_id}")
    return entry


def _locked(session: Session, principal: Principal, entry_id: int) -> QueueEntry:
    entry = repository.lock(session, entry_id)
    if entry is None:
        raise NotFound(f"no entry {entry_id}")
    principal.require_queue(entry.queue)
    return entry


def _require_holder(entry: QueueEntry | EntryState, principal: Principal) -> None:
    if entry.state == "claimed" and entry.claimed_by == principal.name:
        return
    if entry.state == "claimed":
        until = entry.lease_expires_at.isoformat() if entry.lease_expires_at else None
        raise Conflict(
            f"entry {entry.id} is held by {entry.claimed_by} until {until}",
            held_by=entry.claimed_by,
            lease_expires_at=until,
        )
    raise Conflict(
        f"entry {entry.id} is {entry.state}, not claimed by {principal.name}", state=entry.state
    )


def close(
    session: Session,
    principal: Principal,
    entry_id: int,
    now: datetime,
    *,
    state: str,
    note: str,
    action: str,
) -> EntryState:
    """Resolve or dismiss: only the lease holder, only in a queue its key may work in.

    Core statements (lock, update, audit row): closing is half of every entry's work.
    """
    entry = repository.lock_state(session, entry_id)
    if entry is None:
        raise NotFound(f"no entry {entry_id}")
    principal.require_queue(entry.queue)
    _require_holder(entry, principal)
    closed = replace(
        entry, state=state, note=note, closed_at=now, lease_expires_at=None, updated_at=now
    )
    repository.close(session, entry.id, state, note, now)
    record(
        session,
        actor=principal.name,
        action=action,
        entity="queue_entry",
        entity_id=entry.id,
        before=snapshot(entry),
        after=snapshot(closed),
    )
    return closed


def resolve(
    session: Session, principal: Principal, entry_id: int, note: str, now: datetime
) -> EntryState:
    return close(
        session, principal, entry_id, now, state="resolved", note=note, action="entry.resolve"
    )


def dismiss(
    session: Session, principal: Principal, entry_id: int, reason: str, now: datetime
) -> EntryState:
    return close(
        session, principal, entry_id, now, state="dismissed", note=reason, action="entry.dismiss"
    )


def heartbeat(
    session: Session, principal: Principal, entry_id: int, settings: Settings, now: datetime
) -> QueueEntry:
    entry = _locked(session, principal, entry_id)
    _require_holder(entry, principal)
    before = snapshot(entry)
    entry.lease_expires_at = now + timedelta(seconds=settings.lease_seconds)
    entry.updated_at = now
    session.flush()
    record(
        session,
        actor=principal.name,
        action="entry.heartbeat",
        entity="queue_entry",
        entity_id=entry.id,
        before=before,
        after=snapshot(entry),
    )
    return entry


def release(session: Session, principal: Principal, entry_id: int, now: datetime) -> QueueEntry:
    entry = _locked(session, principal, entry_id)
    _require_holder(entry, principal)
    before = snapshot(entry)
    entry.state, entry.claimed_by, entry.lease_expires_at = "open", None, None
    entry.updated_at = now
    session.flush()
    record(
        session,
        actor=principal.name,
        action="entry.release",
        entity="queue_entry",
        entity_id=entry.id,
        before=before,
        after=snapshot(entry),
    )
    return entry


def reroute(
    session: Session,
    principal: Principal,
    entry_id: int,
    target: str,
    reason: str,
    now: datetime,
) -> QueueEntry:
    """Move the item to ``target``: a correction for the learning loop; the signal moves.

    The lease holder of a claimed entry may do it, and — without claiming — anyone who may
    work in triage may assign an open triage entry (the triage view's one-click decision).
    """
    known_queue(target)
    entry = _locked(session, principal, entry_id)
    if not (entry.state == "open" and entry.queue == "triage"):
        _require_holder(entry, principal)
    if target == entry.queue:
        raise InvalidInput(f"entry {entry.id} is already in {target}")
    item, verdict = repository.item_with_verdict(session, entry.item_id)
    signal_before = contribution(item, entry, verdict)
    before = snapshot(entry)
    entry.state, entry.closed_at, entry.lease_expires_at = "rerouted", now, None
    entry.note, entry.updated_at = reason, now
    session.flush()  # the old entry leaves "current" before the new one exists
    moved = QueueEntry(
        item_id=item.id,
        queue=target,
        routed_by="agent",
        state="open",
        priority=entry.priority,
        priority_breakdown=dict(entry.priority_breakdown or {}),
        rank=entry.rank,
        waiting_since=entry.waiting_since,
        created_at=now,
        updated_at=now,
    )
    session.add(moved)
    session.add(
        Correction(
            item_id=item.id,
            field="queue",
            old_value=before["queue"],
            new_value=target,
            actor=principal.name,
            reason=reason,
            text=compose(item.text, item.title),
            created_at=now,
        )
    )
    session.flush()
    deltas = RollupDeltas()
    deltas.move(signal_before, contribution(item, moved, verdict))
    deltas.flush(session)
    record(
        session,
        actor=principal.name,
        action="entry.reroute",
        entity="queue_entry",
        entity_id=entry.id,
        before=before,
        after={**snapshot(entry), "new_entry_id": moved.id, "new_queue": target},
    )
    return moved


def correct_sentiment(
    session: Session,
    principal: Principal,
    entry_id: int,
    label: str,
    reason: str | None,
    now: datetime,
) -> QueueEntry:
    """Fix the item's sentiment: a label for the learning loop; signal and priority follow."""
    entry = _locked(session, principal, entry_id)
    if entry.state != "open":
        _require_holder(entry, principal)
    item, verdict = repository.item_with_verdict(session, entry.item_id)
    if verdict is None:
        raise Conflict(f"item {item.id} has not been classified yet")
    old = verdict.sentiment
    if old == label:
        raise InvalidInput(f"the sentiment of item {item.id} is already {label}")
    signal_before = contribution(item, entry, verdict)
    old_priority = entry.priority
    verdict.sentiment = label
    session.add(
        Correction(
            item_id=item.id,
            field="sentiment",
            old_value=old,
            new_value=label,
            actor=principal.name,
            reason=reason,
            text=compose(item.text, item.title),
            created_at=now,
        )
    )
    priority.assign(entry, item, verdict, priority.current(session))
    entry.updated_at = now
    session.flush()
    deltas = RollupDeltas()
    deltas.move(signal_before, contribution(item, entry, verdict))
    deltas.flush(session)
    record(
        session,
        actor=principal.name,
        action="entry.sentiment",
        entity="queue_entry",
        entity_id=entry.id,
        before={"sentiment": old, "priority": old_priority},
        after={"sentiment": label, "priority": entry.priority},
    )
    return entry


def update_weights(
    session: Session, principal: Principal, changes: dict[str, Any]
) -> priority.Weights:
    """Store new priority weights and re-score every open or claimed entry with them."""
    old = priority.current(session)
    merged = priority.Weights.from_dict({**old.as_dict(), **changes})
    stored = repository.weights(session)
    if stored is None:
        stored = PriorityWeights(id=1)
        session.add(stored)
    stored.weights = merged.as_dict()
    stored.updated_by = principal.name
    for entry, item, verdict in repository.open_entries(session):
        priority.assign(entry, item, verdict, merged)
    session.flush()
    record(
        session,
        actor=principal.name,
        action="priority.update",
        entity="priority_weights",
        entity_id=1,
        before=old.as_dict(),
        after=merged.as_dict(),
    )
    return merged


@dataclass(slots=True)
class QueueStats:
    queue: str
    open: int = 0
    claimed: int = 0
    resolved: int = 0
    dismissed: int = 0
    oldest_waiting_since: datetime | None = None
    median_wait_seconds: float | None = None
    arrivals: int = 0
    resolutions: int = 0
    wip: dict[str, int] | None = None


def stats(session: Session, now: datetime) -> dict[str, QueueStats]:
    """Depth, flow and WIP of every queue over the last ``STATS_WINDOW_HOURS`` hours."""
    since = now - timedelta(hours=STATS_WINDOW_HOURS)
    result = {name: QueueStats(queue=name, wip={}) for name in QUEUE_NAMES}

    def of(queue: str) -> QueueStats:
        return result.setdefault(queue, QueueStats(queue=queue, wip={}))

    for queue, state, count, first in repository.state_counts(session, now):
        stats_row = of(queue)
        if state in ("open", "claimed", "resolved", "dismissed"):
            setattr(stats_row, state, getattr(stats_row, state) + count)
        if state == "open" and first is not None:
            earliest = stats_row.oldest_waiting_since
            stats_row.oldest_waiting_since = first if earliest is None else min(earliest, first)
    for queue, count in repository.arrivals(session, since).items():
        of(queue).arrivals = count
    for queue, count in repository.resolutions(session, since).items():
        of(queue).resolutions = count
    waits: dict[str, list[float]] = defaultdict(list)
    for queue, arrived, claimed in repository.first_claims(session, since):
        waits[queue].append(max(0.0, (claimed - arrived).total_seconds()))
    for queue, samples in waits.items():
        of(queue).median_wait_seconds = round(statistics.median(samples), 3)
    for queue, agent, count in repository.wip(session, now):
        wip = of(queue).wip
        assert wip is not None
        wip[agent] = count
    return result


def item_of(
    session: Session, entry: QueueEntry
) -> tuple[Item, Classification | None, QueueEntry | None]:
    row = repository.item_row(session, entry.item_id)
    assert row is not None  # the foreign key guarantees the item
    return row
