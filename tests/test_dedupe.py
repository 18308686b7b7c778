"""Dedupe and identities on the demo data: the same complaint twice, the same person twice."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.identity.models import IdentityKey
from app.items.models import Item
from app.learning.service import Classifier
from app.signal.service import recompute, stored
from app.sources.models import Source
from app.sources.runner import run_sync
from tests.support import ListConnector, factory_for, make_item
from tests.test_signal import sync_demo

# The demo's four tweet + ticket pairs: one customer, one complaint, two channels.
PAIRS = {("dm-0172", "dm-0173"), ("dm-0229", "dm-0232"), ("dm-0303", "dm-0311"),
         ("dm-0344", "dm-0345")}  # fmt: skip
MULTI_CHANNEL = {"jonas_k", "bencodes", "mayaruns_ops", "lucia_gv", "samthe_sre", "priyapm",
                 "tomas_builds", "meidimitrov"}  # fmt: skip


def by_external_id(factory: sessionmaker[Session]) -> dict[str, Item]:
    with factory() as session:
        return {item.external_id: item for item in session.scalars(select(Item))}


def test_demo_duplicates_are_grouped_and_counted_once(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    items = by_external_id(factory)

    groups: dict[int, set[str]] = defaultdict(set)
    for item in items.values():
        if item.dedupe_group_id is not None:
            groups[item.dedupe_group_id].add(item.external_id)
    assert {tuple(sorted(members)) for members in groups.values()} == PAIRS
    for first, second in PAIRS:
        assert items[first].dedupe_group_id == items[first].id  # the first one stored leads
        assert items[second].dedupe_group_id == items[first].id
        assert items[second].dedupe_reason == "near"
        assert items[first].channel != items[second].channel

    member = client.get(f"/items/{items['dm-0232'].id}").json()
    assert member["dedupe_group_id"] == items["dm-0229"].id
    assert member["identity_id"] == items["dm-0229"].identity_id
    with factory() as session:
        assert stored(session).rollups == recompute(session).rollups


def test_identities_link_across_channels_without_over_merging(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    items = list(by_external_id(factory).values())

    identities: dict[str, set[int]] = defaultdict(set)
    channels: dict[int, set[str]] = defaultdict(set)
    for item in items:
        assert item.identity_id is not None
        identities[item.author_handle or ""].add(item.identity_id)
        channels[item.identity_id].add(item.channel)
    assert {handle for handle, ids in identities.items() if len(channels[min(ids)]) > 1} == (
        MULTI_CHANNEL
    )
    assert all(len(ids) == 1 for ids in identities.values()), "one person, one identity"
    # Same display name, different handles and no shared email: two people, not one.
    femi = {item.identity_id for item in items if item.author_name == "Femi Mensah"}
    assert len(femi) == 2


def test_detaching_an_account_is_reversible_and_moves_the_signal(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    items = by_external_id(factory)
    tweet = items["dm-0229"]  # tomas_builds on twitter, grouped with his ticket dm-0232
    with factory() as session:
        key_id = session.scalar(
            select(IdentityKey.id).where(
                IdentityKey.kind == "account", IdentityKey.value == f"twitter:{tweet.author_id}"
            )
        )
    assert key_id is not None

    detached = client.post(f"/identities/keys/{key_id}/detach")
    assert detached.status_code == 200, detached.text
    split = detached.json()
    assert tweet.id in split["item_ids"]
    after = by_external_id(factory)
    assert after["dm-0229"].identity_id == split["id"] != after["dm-0232"].identity_id
    assert after["dm-0229"].dedupe_group_id is None, "a group never spans two customers"
    assert after["dm-0232"].dedupe_group_id is None
    with factory() as session:
        kept, recount = stored(session), recompute(session)
    assert (kept.rollups, kept.buckets) == (recount.rollups, recount.buckets)

    merged = client.post(
        f"/identities/{after['dm-0232'].identity_id}/merge", json={"other": split["id"]}
    )
    assert merged.status_code == 200, merged.text
    assert tweet.id in merged.json()["item_ids"]
    assert client.get(f"/identities/{split['id']}").status_code == 404
    with factory() as session:
        kept, recount = stored(session), recompute(session)
    assert (kept.rollups, kept.buckets) == (recount.rollups, recount.buckets)


def test_an_item_can_leave_its_dedupe_group(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    items = by_external_id(factory)
    member = items["dm-0173"]

    response = client.post(f"/dedupe/{member.id}/detach")

    assert response.status_code == 200, response.text
    after = by_external_id(factory)
    assert after["dm-0173"].dedupe_group_id is None
    assert after["dm-0172"].dedupe_group_id is None, "a group of one is no group"
    assert client.post(f"/dedupe/{member.id}/detach").status_code == 422
    with factory() as session:
        assert stored(session).rollups == recompute(session).rollups


def test_a_complaint_repeated_on_a_later_page_joins_the_stored_one(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    """The earlier item is a stored row (not on the page): it becomes the group's first."""
    with unit_of_work(factory) as session:
        session.add(Source(name="list", kind="list", config={}))
    first = make_item(1, "The app crashes every time I open the invoices screen")
    other = make_item(2, "Love the new dark mode, thanks team")  # another customer (u2)
    again = replace(  # the same customer (u1), 3 hours later, other words around it
        make_item(8, "Still: the app crashes every time I open the invoices screen!!"),
        created_at=first.created_at + timedelta(hours=3),
    )
    assert again.author.id == first.author.id
    connector = ListConnector([first, other, again], page_size=2)  # `again` on page two
    summary = run_sync(factory, "list", classifier, connector_factory=factory_for(connector))
    assert (summary.status, summary.pages, summary.new) == ("ok", 2, 3), summary.error

    items = by_external_id(factory)
    head = items[first.external_id]
    assert (head.dedupe_group_id, head.dedupe_reason) == (head.id, "near")
    assert (items[again.external_id].dedupe_group_id, items[again.external_id].dedupe_reason) == (
        head.id,
        "near",
    )
    assert items[other.external_id].dedupe_group_id is None
    with factory() as session:
        assert stored(session) == recompute(session), "demand is counted once per group"


def test_text_features_are_cached_by_content_and_bounded() -> None:
    from types import SimpleNamespace

    from app.dedupe.service import _FeatureCache
    from app.items.service import content_hash

    def item(id_: int, text: str) -> Any:
        return SimpleNamespace(id=id_, title=None, text=text, content_hash=content_hash(None, text))

    cache = _FeatureCache(size=2)
    parcel = item(1, "My parcels never arrived, again")
    assert cache.features(parcel)[1] == {"parcel", "arriv"}, "stop words dropped, endings folded"
    assert cache.known([parcel]) == {1: cache.features(parcel)}
    edited = item(1, "The app crashes on start")  # the same id, another text: a miss
    assert cache.known([edited]) == {}
    assert cache.features(edited)[1] == {"app", "crash", "start"}
    for n in range(2, 6):
        cache.features(item(n, f"text {n}"))
    assert len(cache) == 2
    assert cache.known([parcel, edited]) == {}, "the oldest went first"
