"""Storing what connectors return, and classifying it.

``store_page`` upserts on (source, external_id): a new item is inserted, a changed item
is updated in place, an identical one is left alone. Items whose text is new or changed
are classified in one batch; each gets a queue entry, and the demand signal moves with
it. Nothing here commits: the caller's unit of work does, together with the cursor.

New items — the bulk of every sync — never become ORM objects: they are written with
one multi-row ``INSERT`` per table (items, identities and their keys, verdicts, queue
entries, metric snapshots, feed events, rollups), so a page of a thousand costs a few
statements. Updated items go through the ORM (their old contribution to the signal must
be read before it changes).

The verdicts may arrive with the page: the sync runner classifies the next page in
worker processes while this one is stored (``PreparedPage``). A verdict is used only for
the exact content it was computed on; anything else is classified here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.db import utcnow
from app.dedupe.service import follow_upstream, group_new
from app.identity.service import assign as assign_identities
from app.items import repository
from app.items.models import Classification, Item
from app.learning.service import Classifier, Verdict, current_rules, facts_for
from app.ops import metrics
from app.queues import priority
from app.queues.models import QueueEntry
from app.signal.service import (
    Contribution,
    RollupDeltas,
    contribution_from,
    contribution_of,
    current_weights,
)
from classifiers.routing import TRIAGE
from classifiers.rules import ItemFacts, RuleSet
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """``value`` with every string in it made storable: NUL removed, lone surrogates replaced.

    PostgreSQL cannot store NUL in text or JSONB, and one such character would fail the
    whole page; in feedback it carries no meaning, so it is dropped on every backend. A
    lone surrogate (an emoji cut in half by an upstream's truncation, sent as a ``\\ud83d``
    escape) is not encodable as UTF-8 by any database: it becomes U+FFFD, the replacement
    character, so the rest of the text is kept.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                value = _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, Mapping):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def _unstorable(value: Any) -> bool:
    # The payload is stored as JSON anyway: one C-speed dump tells whether any string in
    # it holds a NUL (JSON escapes it as \u0000) or a lone surrogate (orjson refuses it), so
    # the walk runs only when one does.
    try:
        return b"\\u0000" in orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # not plain JSON (an integer beyond 64 bits), or a surrogate: walk it
        return True


def item_fields(source_item: SourceItem) -> dict[str, Any]:
    """The item's columns as stored (NUL removed), with its content hash."""
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
    fields = storable(fields) if _unstorable(fields) else fields
    fields["content_hash"] = content_hash(fields["title"], fields["text"])
    return fields


def facts_of(fields: Mapping[str, Any], source_name: str | None) -> ItemFacts:
    """What rules may look at, from an item's stored fields."""
    return ItemFacts(
        text=compose(fields["text"], fields["title"]),
        channel=fields["channel"],
        kind=fields["kind"],
        source=source_name,
        author=tuple(
            value
            for value in (fields["author_handle"], fields["author_id"], fields["author_email"])
            if value
        ),
        lang=fields["lang"],
    )


def facts_of_stored(item: repository.StoredItem, source_name: str | None) -> ItemFacts:
    """What rules may look at, for a stored item."""
    return ItemFacts(
        text=compose(item.text, item.title),
        channel=item.channel,
        kind=item.kind,
        source=source_name,
        author=tuple(v for v in (item.author_handle, item.author_id, item.author_email) if v),
        lang=item.lang,
    )


@dataclass(slots=True)
class PreparedPage:
    """A page's items as they will be stored, and verdicts computed ahead for some of them.

    ``fields`` maps external id → ``item_fields`` (the last record of an id in the page
    wins). ``verdicts`` maps (external id, content hash) → the verdict on that content.
    ``records`` is how many records the page had (the same id twice counts twice).
    """

    fields: dict[str, dict[str, Any]]
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)
    records: int = 0


def prepare(source_items: Sequence[SourceItem]) -> PreparedPage:
    fields: dict[str, dict[str, Any]] = {}
    for source_item in source_items:  # the same id twice in a page: the last one wins
        fields[storable(source_item.external_id)] = item_fields(source_item)
    return PreparedPage(fields, records=len(source_items))


@dataclass(slots=True)
class NewItem:
    """A new item as inserted: what identity, dedupe and the signal read of it."""

    id: int
    source_id: int
    external_id: str
    channel: str
    kind: str
    title: str | None
    text: str
    author_id: str | None
    author_handle: str | None
    author_name: str | None
    author_email: str | None
    author_followers: int | None
    created_at: datetime
    metrics: dict[str, Any]
    raw: dict[str, Any]
    lang: str | None
    content_hash: str
    identity_id: int | None = None
    dedupe_group_id: int | None = None
    dedupe_reason: str | None = None


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


def deleted_upstream(raw: Mapping[str, Any]) -> bool:
    """Connectors flag a record deleted upstream with ``raw["andon"]["deleted"]``."""
    marker = raw.get("andon")
    return isinstance(marker, Mapping) and marker.get("deleted") is True


def dismiss_deleted(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    """Open work on a record deleted upstream is dismissed; its demand stays counted.

    An entry an agent holds is left to the agent, who sees the deletion on the item. Each
    dismissal is in the audit log, by ``system``, like every other state change.
    """
    if not item_ids:
        return
    for entry in repository.current_entries(session, item_ids).values():
        if entry.state == "open":
            entry.state, entry.note, entry.closed_at = "dismissed", "deleted upstream", now
            audit.record(
                session,
                actor=audit.SYSTEM,
                action="entry.dismiss",
                entity="queue_entry",
                entity_id=entry.id,
                before={"queue": entry.queue, "state": "open"},
                after={"queue": entry.queue, "state": "dismissed", "note": "deleted upstream"},
            )
    session.flush()


def store_page(
    session: Session,
    source_id: int,
    source_items: Sequence[SourceItem],
    classifier: Classifier,
    *,
    prepared: PreparedPage | None = None,
) -> StoreCounts:
    """Store a page: ``source_items``, or, when ``prepared`` is given, the items it holds
    (``source_items`` is then not read)."""
    page = prepared if prepared is not None else prepare(source_items)
    counts = StoreCounts(pulled=page.records)
    existing = repository.by_external_ids(session, source_id, list(page.fields))
    ids = [item.id for item in existing.values()]
    verdicts = repository.classifications(session, ids)
    entries = repository.current_entries(session, ids)
    deltas = RollupDeltas()
    to_classify: list[Item] = []
    previous: dict[int, Contribution | None] = {}  # what re-classified items contributed
    snapshots: list[dict[str, Any]] = []
    deleted: list[int] = []
    new_ids: list[str] = []
    now = utcnow()
    for external_id, values in page.fields.items():
        item = existing.get(external_id)
        if item is None:
            new_ids.append(external_id)
            continue
        item.seen_at = now
        changed = {n: v for n, v in values.items() if getattr(item, n) != v}
        if not changed:
            counts.unchanged += 1
        else:
            counts.updated += 1
            before = contribution(item, entries.get(item.id), verdicts.get(item.id))
            if "metrics" in changed:
                delta = metric_delta(item.metrics, changed["metrics"])
                snapshots.append(_snapshot(item.id, changed["metrics"], delta, now))
            for name, value in changed.items():
                setattr(item, name, value)
            follow_upstream(session, item)
            if "content_hash" in changed:  # only new words are worth a new verdict
                previous[item.id] = before
                to_classify.append(item)
            else:
                after = contribution(item, entries.get(item.id), verdicts.get(item.id))
                deltas.move(before, after)
        if deleted_upstream(values["raw"]) and item.deleted_at is None:
            item.deleted_at = now
            deleted.append(item.id)
    session.flush()
    counts.new = len(new_ids)
    fresh = _insert_new(session, source_id, [(e, page.fields[e]) for e in new_ids], now)
    snapshots.extend(_snapshot(item.id, item.metrics, {}, now) for item in fresh if item.metrics)
    repository.insert_snapshots(session, snapshots)
    _route_new(session, fresh, page, classifier, deltas, now)
    classify_items(
        session,
        to_classify,
        classifier,
        deltas=deltas,
        previous=previous,
        prepared=page.verdicts,
    )
    deltas.flush(session)
    dismiss_deleted(session, deleted, now)
    return counts


def _snapshot(
    item_id: int, values: Mapping[str, Any], delta: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    return {"item_id": item_id, "observed_at": now, "metrics": dict(values), "delta": dict(delta)}


_NEW_ITEM_FIELDS = tuple(
    name
    for name in NewItem.__dataclass_fields__
    if name
    not in ("id", "source_id", "external_id", "identity_id", "dedupe_group_id", "dedupe_reason")
)


def _insert_new(
    session: Session,
    source_id: int,
    pending: Sequence[tuple[str, dict[str, Any]]],
    now: datetime,
) -> list[NewItem]:
    """Insert new items in page order: identities first (so each row carries its customer),
    then the rows, then their dedupe groups."""
    if not pending:
        return []
    items = [
        NewItem(
            id=0,
            source_id=source_id,
            external_id=external_id,
            **{name: values[name] for name in _NEW_ITEM_FIELDS},
        )
        for external_id, values in pending
    ]
    assign_identities(session, items)
    rows = [
        {
            **values,
            "source_id": source_id,
            "external_id": external_id,
            "identity_id": item.identity_id,
            "ingested_at": now,
            "seen_at": now,
            "deleted_at": now if deleted_upstream(values["raw"]) else None,
        }
        for (external_id, values), item in zip(pending, items, strict=True)
    ]
    ids = repository.insert_items(session, rows)
    for item in items:
        item.id = ids[item.external_id]
    group_new(session, items)
    repository.set_dedupe_groups(
        session,
        [
            (item.id, item.dedupe_group_id, item.dedupe_reason)
            for item in items
            if item.dedupe_group_id is not None
        ],
    )
    return items


def _verdicts_for(
    keys: Sequence[tuple[str, str]],
    facts_of_missing: Callable[[Sequence[int]], Sequence[ItemFacts]],
    classifier: Classifier,
    prepared: Mapping[tuple[str, str], Verdict],
    rules_of: Callable[[], RuleSet],
) -> list[Verdict]:
    """Verdicts for ``keys`` (external id, content hash): computed ahead, else here.

    ``facts_of_missing`` gives the facts of the items at these positions: only those
    without a verdict computed ahead are classified, so only theirs are needed.
    """
    missing = [i for i, key in enumerate(keys) if key not in prepared]
    computed: dict[int, Verdict] = {}
    if missing:
        facts = facts_of_missing(missing)
        with metrics.CLASSIFICATION_SECONDS.time():  # issue 9: classification latency
            # operators' rules first, then language, then the model
            results = classifier.classify(
                [fact.text for fact in facts], facts=facts, rules=rules_of()
            )
        computed = dict(zip(missing, results, strict=True))
    metrics.CLASSIFIED_ITEMS.inc(len(keys))
    return [prepared[key] if i not in computed else computed[i] for i, key in enumerate(keys)]


def _route_new(
    session: Session,
    items: Sequence[NewItem],
    page: PreparedPage,
    classifier: Classifier,
    deltas: RollupDeltas,
    now: datetime,
) -> None:
    """Verdicts and queue entries of new items, in bulk, and their place in the signal."""
    if not items:
        return

    def facts(positions: Sequence[int]) -> list[ItemFacts]:
        names = repository.source_names(session, [items[0].source_id])
        return [
            facts_of(page.fields[items[i].external_id], names.get(items[i].source_id))
            for i in positions
        ]

    hashes = [page.fields[item.external_id]["content_hash"] for item in items]
    results = _verdicts_for(
        [(item.external_id, digest) for item, digest in zip(items, hashes, strict=True)],
        facts,
        classifier,
        page.verdicts,
        lambda: current_rules(session),
    )
    weights = priority.current(session)
    demand = current_weights()
    verdict_rows: list[dict[str, Any]] = []
    entry_rows: list[dict[str, Any]] = []
    for item, digest, result in zip(items, hashes, results, strict=True):
        label, compound = result.sentiment.label, round(result.sentiment.compound, 4)
        verdict_rows.append(_verdict_row(item.id, result, classifier, digest, now))
        target = TRIAGE if result.route.triage else result.route.queue
        score = _score(weights, item, label, compound, now)
        deleted = deleted_upstream(item.raw)
        entry_rows.append(_entry_row(item.id, target, score, now, deleted=deleted))
        deltas.move(None, contribution_from(item, target, label, compound, demand))
    repository.insert_classifications(session, verdict_rows)
    repository.insert_entries(session, entry_rows)


def _verdict_row(
    item_id: int, result: Verdict, classifier: Classifier, digest: str, now: datetime
) -> dict[str, Any]:
    route, sentiment = result.route, result.sentiment
    return {
        "item_id": item_id,
        "sentiment": sentiment.label,
        "compound": round(sentiment.compound, 4),
        "queue": route.queue,
        "confidence": route.confidence,
        "triage": route.triage,
        "reason": route.reason,
        "scores": dict(route.scores),
        "model_version": classifier.model_version,
        "sentiment_version": classifier.sentiment_version,
        "content_hash": digest,
        "classified_at": now,
    }


def _score(
    weights: priority.Weights, item: Any, label: str, compound: float, waiting_since: datetime
) -> priority.Score:
    return priority.score(
        weights,
        label=label,
        compound=compound,
        followers=item.author_followers,
        metrics=item.metrics or {},
        channel=item.channel,
        waiting_since=waiting_since,
    )


def _entry_row(
    item_id: int, queue: str, score: priority.Score, now: datetime, *, deleted: bool = False
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "queue": queue,
        "state": "dismissed" if deleted else "open",
        "note": "deleted upstream" if deleted else None,
        "closed_at": now if deleted else None,
        "routed_by": "model",
        "priority": score.static,
        "priority_breakdown": score.breakdown,
        "rank": score.rank,
        "waiting_since": now,
        "created_at": now,
        "updated_at": now,
    }


def rescore(
    session: Session,
    batch: Sequence[repository.StoredItem],
    verdicts: Sequence[Verdict],
    classifier: Classifier,
) -> int:
    """Apply verdicts computed for stored items, in bulk; how many were applied.

    ``verdicts`` were computed on ``batch`` as it was read. An item whose content changed
    since is skipped (the sync that changed it classified it). Open entries the model
    routed move with their new verdict; an entry an agent holds or closed, or a person
    re-routed, keeps its queue; a sentiment a person corrected stays. The current
    entries are locked first (PostgreSQL), so no claim lands between reading and
    writing them; the signal moves by the same deltas.
    """
    if not batch:
        return 0
    ids = [item.id for item in batch]
    entries = repository.current_entry_views(session, ids, lock=True)
    stored = {item.id: item for item in repository.stored_items(session, ids)}
    before = repository.verdict_views(session, ids)
    corrected = repository.corrected_sentiments(session, ids)
    weights = priority.current(session)
    demand = current_weights()
    now = utcnow()
    deltas = RollupDeltas()
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    new_entries: list[dict[str, Any]] = []
    for read, result in zip(batch, verdicts, strict=True):
        item = stored.get(read.id)
        if item is None or item.content_hash != read.content_hash:
            continue
        row = _verdict_row(item.id, result, classifier, item.content_hash, now)
        if item.id in corrected:  # a person's sentiment stays
            row["sentiment"] = corrected[item.id]
        old = before.get(item.id)
        (updates if old is not None else inserts).append(row)
        entry = entries.get(item.id)
        label, compound = str(row["sentiment"]), float(row["compound"])
        target = TRIAGE if result.route.triage else result.route.queue
        if entry is None:
            score = _score(weights, item, label, compound, now)
            new_entries.append(_entry_row(item.id, target, score, now))
            deltas.move(None, contribution_from(item, target, label, compound, demand))
            continue
        queue = entry.queue
        if entry.state == "open":
            if entry.routed_by == "model":
                queue = target
            score = _score(weights, item, label, compound, entry.waiting_since)
            moved.append(
                {
                    "id": entry.id,
                    "queue": queue,
                    "priority": score.static,
                    "priority_breakdown": score.breakdown,
                    "rank": score.rank,
                    "updated_at": now,
                }
            )
        old_signal = (
            contribution_from(item, entry.queue, old.sentiment, old.compound, demand)
            if old is not None
            else None
        )
        deltas.move(old_signal, contribution_from(item, queue, label, compound, demand))
    repository.update_classifications(session, updates)
    repository.insert_classifications(session, inserts)
    repository.update_entries(session, moved)
    repository.insert_entries(session, new_entries)
    deltas.flush(session)
    metrics.CLASSIFIED_ITEMS.inc(len(updates) + len(inserts))
    return len(updates) + len(inserts)


def classify_items(
    session: Session,
    items: Sequence[Item],
    classifier: Classifier,
    *,
    deltas: RollupDeltas | None = None,
    previous: Mapping[int, Contribution | None] | None = None,
    prepared: Mapping[tuple[str, str], Verdict] | None = None,
) -> int:
    """Classify stored ``items`` in one batch; route open entries; keep the signal in step.

    An entry an agent holds or closed keeps its queue (nobody's work is yanked away), and
    an entry a person re-routed keeps the person's decision. ``prepared`` holds verdicts
    computed ahead, by (external id, content hash).
    """
    if not items:
        return 0
    own_deltas = deltas is None
    deltas = deltas or RollupDeltas()
    ids = [item.id for item in items]
    verdicts = repository.classifications(session, ids)
    entries = repository.current_entries(session, ids)
    results = _verdicts_for(
        [(item.external_id, item.content_hash) for item in items],
        lambda positions: facts_for(session, [items[i] for i in positions]),
        classifier,
        prepared or {},
        lambda: current_rules(session),
    )
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


__all__ = [
    "NewItem",
    "PreparedPage",
    "StoreCounts",
    "classify_items",
    "content_hash",
    "item_fields",
    "prepare",
    "store_page",
]
