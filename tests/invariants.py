"""What must hold in a database after any crash, restart or load: one function, the report.

Used by the crash tests and the soak (``python -m tests.soak``). ``check`` returns the
problems it found (an empty list is a consistent database) and the counts it saw:

- every item is stored once per (source, external id) and classified once;
- every item has exactly one current queue entry (re-routed ones are history);
- every entry is in a known state with the fields that state needs: a claimed entry has
  a holder and a lease end, an open one neither, a closed one a close time and no lease;
- a claim whose lease has lapsed is not still counted against a dead agent: it is either
  returned to the queue or past ``now`` only by less than ``lease_grace`` (an expiry pass
  has not run yet);
- the audit log replays to each entry's state: every event's ``before.state`` is the
  previous event's ``after.state`` (an entry starts open), and the last event names the
  entry's state now — except dismissals of upstream deletions, which are not audited;
- the rollups equal a from-scratch recomputation (``app.signal.service.recompute``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.db import as_utc, utcnow
from app.items.models import Classification, Item
from app.queues.models import CLOSED_STATES, ENTRY_STATES, QueueEntry
from app.signal.service import recompute, stored


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    items: int = 0
    classified: int = 0
    states: Counter[str] = field(default_factory=Counter)
    audit_events: int = 0
    rollup_rows: int = 0
    rollup_total: int = 0

    def __bool__(self) -> bool:
        return not self.problems


def check(
    session: Session, *, now: datetime | None = None, lease_grace: timedelta | None = None
) -> Report:
    now = now or utcnow()
    report = Report()
    problems = report.problems

    report.items = session.scalar(select(func.count()).select_from(Item)) or 0
    distinct = session.scalar(
        select(func.count()).select_from(
            select(Item.source_id, Item.external_id).distinct().subquery()
        )
    )
    if distinct != report.items:
        problems.append(f"{report.items} items but {distinct} distinct (source, external id)")
    report.classified = session.scalar(select(func.count()).select_from(Classification)) or 0
    if report.classified != report.items:
        problems.append(f"{report.items} items but {report.classified} classifications")

    entries = list(session.scalars(select(QueueEntry).order_by(QueueEntry.id)))
    current = Counter(entry.item_id for entry in entries if entry.state != "rerouted")
    item_ids = set(session.scalars(select(Item.id)))
    missing = item_ids - set(current)
    if missing:
        problems.append(f"{len(missing)} items without a current entry, e.g. {sorted(missing)[:5]}")
    doubled = [item for item, count in current.items() if count > 1]
    if doubled:
        problems.append(f"items with several current entries: {doubled[:5]}")

    for entry in entries:
        report.states[entry.state] += 1
        problems.extend(_entry_problems(entry, now, lease_grace))

    problems.extend(_audit_problems(session, entries, report))

    state, fresh = stored(session), recompute(session)
    report.rollup_rows = len(state.rollups)
    report.rollup_total = sum(values[0] for values in state.rollups.values())
    if state.rollups != fresh.rollups:
        problems.append(
            f"rollups differ from a recomputation: {_diff(state.rollups, fresh.rollups)}"
        )
    if state.buckets != fresh.buckets:
        problems.append(
            f"buckets differ from a recomputation: {_diff(state.buckets, fresh.buckets)}"
        )
    return report


def _entry_problems(entry: QueueEntry, now: datetime, grace: timedelta | None) -> list[str]:
    name = f"entry {entry.id} ({entry.state})"
    if entry.state not in ENTRY_STATES:
        return [f"{name}: unknown state"]
    found = []
    lease = as_utc(entry.lease_expires_at) if entry.lease_expires_at else None
    if entry.state == "claimed":
        if not entry.claimed_by or lease is None:
            found.append(f"{name}: claimed without a holder or a lease end")
        elif grace is not None and lease + grace < now:
            found.append(f"{name}: {entry.claimed_by}'s lease ended at {lease}, still held")
    elif entry.state == "open":
        if entry.claimed_by is not None or lease is not None:
            found.append(f"{name}: open but held by {entry.claimed_by} until {lease}")
    elif entry.state in CLOSED_STATES and (entry.closed_at is None or lease is not None):
        found.append(f"{name}: closed without a close time, or with a lease")
    return found


def _audit_problems(session: Session, entries: list[QueueEntry], report: Report) -> list[str]:
    events: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "queue_entry").order_by(AuditEvent.id)
    ):
        events[event.entity_id].append(event)
    report.audit_events = sum(len(chain) for chain in events.values())
    found = []
    for entry in entries:
        state = "open"
        holder: str | None = None
        for event in events.get(str(entry.id), []):
            before, after = event.before or {}, event.after or {}
            if "state" not in before or "state" not in after:
                continue  # a sentiment correction: no state change
            if before["state"] != state:
                found.append(
                    f"entry {entry.id}: {event.action} #{event.id} starts from "
                    f"{before['state']}, the log had it {state}"
                )
            state, holder = after["state"], after.get("claimed_by")
        if state != entry.state and not (
            entry.state == "dismissed" and entry.note == "deleted upstream"
        ):
            found.append(f"entry {entry.id} is {entry.state}, its audit log ends {state}")
        elif entry.state == "claimed" and holder != entry.claimed_by:
            found.append(f"entry {entry.id} is held by {entry.claimed_by}, the log says {holder}")
    return found


def _diff(stored_rows: dict[Any, Any], fresh_rows: dict[Any, Any]) -> str:
    keys = sorted(set(stored_rows) ^ set(fresh_rows), key=str)[:3]
    keys += [k for k in stored_rows if k in fresh_rows and stored_rows[k] != fresh_rows[k]][:3]
    return "; ".join(f"{k}: {stored_rows.get(k)} != {fresh_rows.get(k)}" for k in keys)
