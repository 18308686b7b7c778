"""Grouping the same complaint posted twice so a customer's demand is counted once.

Rules, applied to each new item at ingest (cheap: only one customer's recent items are
compared, never the whole table):

* **upstream** — an ideas portal merged the post into another (``raw["andon"]
  ["duplicate_of"]`` names the original's external id in the same source): the item
  joins the original's group; the original carries the demand (its votes already include
  the merged ones).
* **exact** — the same customer (identity, app/identity) posted the same normalised text
  (lower case, no URLs, @mentions or punctuation) within ``ANDON_DEDUPE_WINDOW_HOURS``
  (48) of it, on any channel.
* **near** — the same customer, within the window, and the two texts share at least
  ``MIN_SHARED`` (3) content words (stop words dropped, plural/-ed/-ing endings folded)
  that make up at least ``MIN_OVERLAP`` (0.35) of the shorter text's words (the overlap
  coefficient). The demo's four tweet+ticket pairs score 0.38-0.78; the closest other
  pair of one customer's posts scores 0.31.

Only a customer's ``MAX_CANDIDATES`` (10) most recent earlier items in the window are
compared (the newest first wins a tie): a person repeats a complaint within a few posts, and
the cap keeps a page's cost flat however many items a customer (or a bot posing as one)
piles up.

Different customers saying the same thing are *not* grouped: that is demand from two
customers. The group's id is its first item's id; that item carries the demand, members
count as items with zero demand and show the group on ``GET /items``. ``detach``
undoes a grouping.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sqlalchemy.orm import Session

from app.config import get_settings
from app.dedupe import repository
from app.items import repository as items_repository
from app.items.models import Item
from app.signal.service import Contribution, RollupDeltas, contribution_of

MIN_SHARED = 3
MAX_CANDIDATES = 10
MIN_OVERLAP = 0.35
_NOISE = re.compile(r"https?://\S+|@\w+")
_WORD = re.compile(r"[^\W_]+|\$\d+")


def normalised(title: str | None, text: str) -> str:
    body = _NOISE.sub(" ", f"{title or ''} {text}".lower())
    return " ".join(_WORD.findall(body))


def _fold(word: str) -> str:
    for ending in ("ing", "ed", "es", "s"):
        if len(word) > 4 and word.endswith(ending):
            return word[: -len(ending)]
    return word


def _words_of(text: str) -> tuple[str, ...]:
    """The content words of a normalised text (interned: many texts share them)."""
    return tuple(
        sys.intern(_fold(word))
        for word in text.split()
        if len(word) > 1 and word not in ENGLISH_STOP_WORDS
    )


class _FeatureCache:
    """Each text's (normalised-text hash, content words), kept across pages.

    Consecutive pages compare new items with largely the same earlier items of the same
    customers; normalising them again on every page (and reading their texts again) made a
    page's cost grow with how much each customer had posted. Keyed by item id and content
    hash, so an edited text is a miss. Bounded (oldest first out), shared by the threads of
    a process.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, int], tuple[int, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(item: Groupable) -> tuple[int, int]:
        return item.id, int(item.content_hash[:16], 16)

    def known(self, items: Sequence[Groupable]) -> dict[int, tuple[int, frozenset[str]]]:
        """The features of those of ``items`` already seen, by item id."""
        with self._lock:
            found = [(item.id, self._entries.get(self.key(item))) for item in items]
        return {id_: (hit[0], frozenset(hit[1])) for id_, hit in found if hit is not None}

    def features(self, item: Groupable) -> tuple[int, frozenset[str]]:
        """``item``'s features (computed from its title and text when not seen yet)."""
        key = self.key(item)
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            text = normalised(item.title, item.text)
            found = (hash(text), _words_of(text))
            with self._lock:
                self._entries[key] = found
                if len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return found[0], frozenset(found[1])

    def __len__(self) -> int:
        return len(self._entries)


FEATURES = _FeatureCache()


def similarity(a: frozenset[str], b: frozenset[str]) -> tuple[int, float]:
    """(shared words, overlap coefficient)."""
    if not a or not b:
        return 0, 0.0
    shared = len(a & b)
    return shared, shared / min(len(a), len(b))


class Groupable(Protocol):
    """What grouping reads and sets on an item (an ``Item`` or a row just inserted)."""

    dedupe_group_id: int | None
    dedupe_reason: str | None

    @property
    def id(self) -> int: ...
    @property
    def source_id(self) -> int: ...
    @property
    def external_id(self) -> str: ...
    @property
    def identity_id(self) -> int | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def title(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def raw(self) -> Mapping[str, Any]: ...


def upstream_original(item: Groupable) -> str | None:
    marker = item.raw.get("andon") if isinstance(item.raw, Mapping) else None
    if isinstance(marker, Mapping):
        original = marker.get("duplicate_of")
        if original is not None and str(original) != item.external_id:
            return str(original)
    return None


def _join(item: Groupable, original: Groupable, reason: str) -> None:
    group = original.dedupe_group_id or original.id
    if original.dedupe_group_id is None:
        original.dedupe_group_id, original.dedupe_reason = group, reason
    item.dedupe_group_id, item.dedupe_reason = group, reason


def follow_upstream(session: Session, item: Groupable) -> bool:
    """Join the group of the original an ideas portal merged this item into."""
    external = upstream_original(item)
    if external is None or item.dedupe_group_id is not None:
        return False
    original = repository.by_external_id(session, item.source_id, external)
    if original is None or original.id == item.id:
        return False
    _join(item, original, "upstream")
    return True


def group_new(session: Session, items: Sequence[Groupable]) -> None:
    """Find each new item's exact or near-duplicate among its customer's earlier items.

    ``items`` are the page's new items, already inserted (they have ids); the caller writes
    their groups. Earlier items of the same customers come from one query over the page's
    whole window, as plain rows; each item then takes, in Python, its own customer's items
    in its own window (the page's earlier items included). Each text's words are computed
    once (``FEATURES``), however many items and pages it is compared with. An earlier item
    that becomes a group's first item is written here.
    """
    window = timedelta(hours=get_settings().dedupe_window_hours)
    ordered = sorted(items, key=lambda i: i.id)
    known = [item for item in ordered if item.identity_id is not None]
    by_identity: dict[int, list[Groupable]] = defaultdict(list)
    earlier: list[repository.Earlier] = []
    features: dict[int, tuple[int, frozenset[str]]] = {}  # this page's, by item id
    if known:
        earlier = repository.recent_of_identities(
            session,
            {item.identity_id for item in known if item.identity_id is not None},
            start=min(item.created_at for item in known) - window,
            end=max(item.created_at for item in known) + window,
            before_id=ordered[0].id,
            per_identity=MAX_CANDIDATES,
        )
        features.update(FEATURES.known(earlier))
        unseen = [stored for stored in earlier if stored.id not in features]
        if unseen:  # read their texts (the rows come without them) and compute
            texts = repository.texts(session, [stored.id for stored in unseen])
            for stored in unseen:
                if stored.id in texts:  # else deleted meanwhile: not a candidate
                    stored.title, stored.text = texts[stored.id]
                    features[stored.id] = FEATURES.features(stored)
        for stored in earlier:
            if stored.identity_id is not None and stored.id in features:
                by_identity[stored.identity_id].append(stored)
        for item in known:  # by id, after the stored ones
            if item.identity_id is not None:
                by_identity[item.identity_id].append(item)
    ungrouped = {stored.id for stored in earlier if stored.dedupe_group_id is None}

    def features_of(item: Groupable) -> tuple[int, frozenset[str]]:
        found = features.get(item.id)
        if found is None:
            found = features[item.id] = FEATURES.features(item)
        return found

    for item in ordered:
        if follow_upstream(session, item) or item.identity_id is None:
            continue
        start, end = item.created_at - window, item.created_at + window
        candidates = [
            other
            for other in by_identity.get(item.identity_id, ())
            if other.id < item.id and start <= other.created_at <= end
        ][-MAX_CANDIDATES:]
        if not candidates:
            continue
        text, words = features_of(item)
        best: tuple[float, int, Groupable, str] | None = None
        for other in candidates:
            other_text, other_words = features_of(other)
            if other_text == text and other_words == words:  # same normalised text
                candidate = (2.0, -other.id, other, "exact")
            else:
                shared, overlap = similarity(words, other_words)
                if shared < MIN_SHARED or overlap < MIN_OVERLAP:
                    continue
                candidate = (overlap, -other.id, other, "near")
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is not None:
            _join(item, best[2], best[3])
    items_repository.set_dedupe_groups(
        session,
        [
            (stored.id, stored.dedupe_group_id, stored.dedupe_reason)
            for stored in earlier
            if stored.id in ungrouped and stored.dedupe_group_id is not None
        ],
    )
    session.flush()


def contributions(session: Session, items: Sequence[Item]) -> dict[int, Contribution | None]:
    ids = [item.id for item in items]
    entries = items_repository.current_entries(session, ids)
    verdicts = items_repository.classifications(session, ids)
    return {
        item.id: contribution_of(item, entries.get(item.id), verdicts.get(item.id))
        for item in items
    }


def detach_many(session: Session, items: Sequence[Item], deltas: RollupDeltas) -> None:
    """Take items out of their groups; a group's next item takes over its demand."""
    grouped = [item for item in items if item.dedupe_group_id is not None]
    if not grouped:
        return
    groups = sorted({item.dedupe_group_id for item in grouped if item.dedupe_group_id})
    members = list(repository.group_members(session, groups))
    before = contributions(session, members)
    leaving = {item.id for item in grouped}
    for item in members:
        if item.id in leaving:
            item.dedupe_group_id, item.dedupe_reason = None, None
    for group in groups:
        rest = [m for m in members if m.dedupe_group_id == group]
        if len(rest) <= 1:
            for member in rest:
                member.dedupe_group_id, member.dedupe_reason = None, None
            continue
        leader = group if any(m.id == group for m in rest) else rest[0].id
        for member in rest:
            member.dedupe_group_id = leader
    after = contributions(session, members)
    for member in members:
        deltas.move(before[member.id], after[member.id])
    session.flush()


def detach(session: Session, item_id: int, deltas: RollupDeltas) -> Item:
    from app.errors import InvalidInput, NotFound

    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    if item.dedupe_group_id is None:
        raise InvalidInput(f"item {item_id} is not in a dedupe group")
    detach_many(session, [item], deltas)
    return item
