"""Storing what connectors return, and classifying it.

``store_page`` upserts on (source, external_id): a new item is inserted, a changed item
is updated in place, an identical one is left alone. Items whose text is new or changed
are classified in one batch; each gets a queue entry, and the demand signal moves with
it. Nothing here commits: the caller's unit of work does, together with the cursor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.dedupe.service import follow_upstream, link_new_items
from app.items import repository
from app.items.models import Classification, Item, ItemMetricSnapshot
from app.learning.service import Classifier, current_rules, facts_for
from app.ops import metrics
from app.queues import priority
from app.queues.models import QueueEntry
from app.signal.service import Contribution, RollupDeltas, contribution_of
from classifiers.routing import TRIAGE
from classifiers.text import compose
from connectors.base import SourceItem


@dataclass(slots=True)
class StoreCounts:
    pulled: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0


def content_hash(title: str | None, text: str) -> str:
    return hashlib.sha256(f"{title or ''}\x1f{text}".encode()).hexdigest()


def without_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string in it.

    PostgreSQL cannot store NUL in text or JSONB, and one such character would fail the
    whole page; in feedback it carries no meaning, so it is dropped on every backend.
    """
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, Mapping):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value


def _fields(source_item: SourceItem) -> dict[str, Any]:
    author = source_item.author
    fields: dict[str, Any] = {
        "channel": source_item.channel,
        "kind": source_item.kind,
        "title": source_item.title,
        "text": source_item.text,
        "author_id": author.id,
        "author_handle": author.handle,
        "author_name": author.display_name,
        "author_email": author.email,
        "author_followers": author.followers,
        "created_at": source_item.created_at,
        "updated_at": source_item.updated_at,
        "url": source_item.url,
        "metrics": dict(source_item.metrics),
        "lang": source_item.lang,
        "thread_id": source_item.thread_id,
        "raw": dict(source_item.raw),
    }
    fields = without_nul(fields)
    fields["content_hash"] = content_hash(fields["title"], fields["text"])
    return fields


def contribution(
    item: Item, entry: QueueEntry | None, verdict: Classification | None
) -> Contribution | None:
    """What an item adds to the demand signal, or None while it is not routed."""
    return contribution_of(item, entry, verdict)


def metric_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What changed in each numeric metric (a new metric counts from zero)."""
    delta: dict[str, Any] = {}
    for name, value in after.items():
        old = before.get(name, 0)
        if isinstance(value, int | float) and isinstance(old, int | float) and value != old:
            delta[name] = value - old
    return delta


def deleted_upstream(source_item: SourceItem) -> bool:
    """Connectors flag a record deleted upstream with ``raw["andon"]["deleted"]``."""
    marker = source_item.raw.get("andon")
    return isinstance(marker, Mapping) and marker.get("deleted") is True


def dismiss_deleted(session: Session, items: Sequence[Item], now: datetime) -> None:
    """Open work on a record deleted upstream is dismissed; its demand stays counted.

    An entry an agent holds is left to the agent, who sees the deletion on the item.
    """
    if not items:
        return
    for entry in repository.current_entries(session, [item.id for item in items]).values():
        if entry.state == "open":
            entry.state, entry.note, entry.closed_at = "dismissed", "deleted upstream", now
    session.flush()


def store_page(
    session: Session, source_id: int, source_items: Sequence[SourceItem], classifier: Classifier
) -> StoreCounts:
    counts = StoreCounts(pulled=len(source_items))
    latest: dict[str, SourceItem] = {}
    for source_item in source_items:  # the same id twice in a page: the last one wins
        latest[without_nul(source_item.external_id)] = source_item
    existing = repository.by_external_ids(session, source_id, list(latest))
    ids = [item.id for item in existing.values()]
    verdicts = repository.classifications(session, ids)
    entries = repository.current_entries(session, ids)
    deltas = RollupDeltas()
    to_classify: list[Item] = []
    fresh: list[Item] = []  # new items: linked to a customer and dedupe group before classifying
    previous: dict[int, Contribution | None] = {}  # what re-classified items contributed
    snapshots: list[tuple[Item, dict[str, Any]]] = []
    deleted: list[Item] = []
    now = utcnow()
    for external_id, source_item in latest.items():
        values = _fields(source_item)
        item = existing.get(external_id)
        if item is None:
            item = Item(source_id=source_id, external_id=external_id, seen_at=now, **values)
            session.add(item)
            to_classify.append(item)
            fresh.append(item)
            counts.new += 1
            if item.metrics:  # the first sight is the baseline: gains are observed changes
                snapshots.append((item, {}))
        else:
            item.seen_at = now
            changed = {n: v for n, v in values.items() if getattr(item, n) != v}
            if not changed:
                counts.unchanged += 1
            else:
                counts.updated += 1
                before = contribution(item, entries.get(item.id), verdicts.get(item.id))
                if "metrics" in changed:
                    snapshots.append((item, metric_delta(item.metrics, changed["metrics"])))
                for name, value in changed.items():
                    setattr(item, name, value)
                follow_upstream(session, item)
                if "content_hash" in changed:  # only new words are worth a new verdict
                    previous[item.id] = before
                    to_classify.append(item)
                else:
                    after = contribution(item, entries.get(item.id), verdicts.get(item.id))
                    deltas.move(before, after)
        if deleted_upstream(source_item) and item.deleted_at is None:
            item.deleted_at = now
            deleted.append(item)
    session.flush()
    for item, delta in snapshots:
        session.add(
            ItemMetricSnapshot(item_id=item.id, observed_at=now, metrics=item.metrics, delta=delta)
        )
    link_new_items(session, fresh)
    classify_items(session, to_classify, classifier, deltas=deltas, previous=previous)
    deltas.flush(session)
    dismiss_deleted(session, deleted, now)
    return counts


def classify_items(
    session: Session,
    items: Sequence[Item],
    classifier: Classifier,
    *,
    deltas: RollupDeltas | None = None,
    previous: Mapping[int, Contribution | None] | None = None,
) -> int:
    """Classify ``items`` in one batch; route open entries; keep the signal in step.

    An entry an agent holds or closed keeps its queue (nobody's work is yanked away), and
    an entry a person re-routed keeps the person's decision.
    """
    if not items:
        return 0
    own_deltas = deltas is None
    deltas = deltas or RollupDeltas()
    ids = [item.id for item in items]
    verdicts = repository.classifications(session, ids)
    entries = repository.current_entries(session, ids)
    texts = [compose(item.text, item.title) for item in items]
    facts, rules = facts_for(session, items), current_rules(session)
    with metrics.CLASSIFICATION_SECONDS.time():  # issue 9: classification latency
        # operators' rules first, then language, then the model
        results = classifier.classify(texts, facts=facts, rules=rules)
    metrics.CLASSIFIED_ITEMS.inc(len(items))
    weights = priority.current(session)
    now = utcnow()
    for item, result in zip(items, results, strict=True):
        route, sentiment = result.route, result.sentiment
        verdict = verdicts.get(item.id)
        entry = entries.get(item.id)
        if previous is not None and item.id in previous:
            before = previous[item.id]  # the item changed before it got here
        else:
            before = contribution(item, entry, verdict)
        if verdict is None:
            verdict = Classification(item_id=item.id)
            session.add(verdict)
        verdict.sentiment = sentiment.label
        verdict.compound = round(sentiment.compound, 4)
        verdict.queue = route.queue
        verdict.confidence = route.confidence
        verdict.triage = route.triage
        verdict.reason = route.reason
        verdict.scores = dict(route.scores)
        verdict.model_version = classifier.model_version
        verdict.sentiment_version = classifier.sentiment_version
        verdict.content_hash = item.content_hash
        verdict.classified_at = now
        target = TRIAGE if route.triage else route.queue
        if entry is None:
            entry = QueueEntry(item_id=item.id, queue=target, state="open", created_at=now)
            session.add(entry)
        elif entry.state == "open" and entry.routed_by == "model":
            entry.queue = target
        if entry.state == "open":
            priority.assign(entry, item, verdict, weights)
        deltas.move(before, contribution(item, entry, verdict))
    session.flush()
    if own_deltas:
        deltas.flush(session)
    return len(items)
