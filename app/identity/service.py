"""Linking the authors of items across channels into customer identities.

An item's author gives up to three keys: ``account`` (``channel:author id``, the
customer id in that system), ``email`` (lower-cased) and ``handle`` (lower-cased, without
``@``). A key names one identity. A new item joins the identity its keys name; keys it
brings that nobody holds yet are attached to that identity, which is how a ticket (with
email and handle) links a tweet (handle) to a mail (email).

Never silently over-merged:

* two identities are never merged automatically. When an item's keys name two different
  identities, the item joins the one named by its strongest key (account, then email,
  then handle) and the identities stay apart; ``merge`` is a person's decision;
* a handle links only when the display names agree (or one is missing): ``@sam`` on
  two networks with different names are two people.

Reversible: ``detach_key`` moves a key, and the items it is the strongest key of, to an identity
of their own; ``merge`` can be undone key by key the same way. Both move the signal (the
distinct-author counts) by deltas.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.identity import repository
from app.identity.models import AuthorIdentity, IdentityKey
from app.items.models import Item
from app.signal.service import RollupDeltas

log = logging.getLogger(__name__)

STRENGTH = {"account": 0, "email": 1, "handle": 2}


class Linkable(Protocol):
    """What identity linking reads of an item (an ``Item`` or a row about to be stored)."""

    identity_id: int | None

    @property
    def channel(self) -> str: ...
    @property
    def author_id(self) -> str | None: ...
    @property
    def author_email(self) -> str | None: ...
    @property
    def author_handle(self) -> str | None: ...
    @property
    def author_name(self) -> str | None: ...


def keys_of(item: Linkable) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    if item.author_id:
        keys.append(("account", f"{item.channel}:{item.author_id}"[:320]))
    if item.author_email and "@" in item.author_email:
        keys.append(("email", item.author_email.strip().lower()[:320]))
    if item.author_handle:
        handle = item.author_handle.strip().lstrip("@").lower()
        if handle:
            keys.append(("handle", handle[:320]))
    return keys


def _name(value: str | None) -> str:
    folded = unicodedata.normalize("NFKD", value or "")
    return " ".join("".join(c for c in folded if c.isalnum() or c.isspace()).lower().split())


def names_agree(a: str | None, b: str | None) -> bool:
    return not _name(a) or not _name(b) or _name(a) == _name(b)


def assign(session: Session, items: Sequence[Linkable]) -> None:
    """Give each new item its identity, creating or extending identities.

    ``items`` come in the order they are stored (by id). New identities and keys are
    written in bulk: the items that open an identity first hold a placeholder, replaced by
    the identity's id once the identities are inserted.
    """
    pairs = sorted({key for item in items for key in keys_of(item)})
    known = repository.key_owners(session, pairs)
    names = repository.display_names(session, sorted(set(known.values())))
    opened: list[str | None] = []  # display names of the identities this batch opens
    new_keys: list[tuple[int, str, str]] = []
    for item in items:
        keys = keys_of(item)
        if not keys:
            continue
        matches: list[tuple[int, int]] = []  # (strength, identity id)
        for kind, value in keys:
            owner = known.get((kind, value))
            if owner is None:
                continue
            if kind == "handle" and not names_agree(names.get(owner), item.author_name):
                continue
            matches.append((STRENGTH[kind], owner))
        if matches:
            identity_id = min(matches)[1]
            if len({identity for _, identity in matches}) > 1:
                log.info(
                    "an item of %s names identities %s; joined %s, not merged",
                    item.channel,
                    sorted({identity for _, identity in matches}),
                    identity_id,
                )
        else:
            opened.append(item.author_name)
            identity_id = -len(opened)  # a placeholder until the identity is inserted
            names[identity_id] = item.author_name
        if not names.get(identity_id) and item.author_name:
            names[identity_id] = item.author_name
        for kind, value in keys:
            if (kind, value) not in known:
                new_keys.append((identity_id, kind, value))
                known[(kind, value)] = identity_id
        item.identity_id = identity_id
    if not opened and not new_keys:
        return
    ids = repository.insert_identities(session, opened)

    def real(identity_id: int) -> int:
        return ids[-identity_id - 1] if identity_id < 0 else identity_id

    for item in items:
        if item.identity_id is not None and item.identity_id < 0:
            item.identity_id = real(item.identity_id)
    repository.insert_keys(session, [(real(owner), kind, value) for owner, kind, value in new_keys])


def get(session: Session, identity_id: int) -> AuthorIdentity:
    identity = session.get(AuthorIdentity, identity_id)
    if identity is None:
        raise NotFound(f"no identity {identity_id}")
    return identity


def _move_items(
    session: Session, items: Sequence[Item], target: int, deltas: RollupDeltas, *, ungroup: bool
) -> None:
    from app.dedupe.service import contributions, detach_many

    if ungroup:  # a dedupe group never spans two customers
        detach_many(session, items, deltas)
    before = contributions(session, items)
    for item in items:
        item.identity_id = target
    after = contributions(session, items)
    for item in items:
        deltas.move(before[item.id], after[item.id])
    session.flush()


def detach_key(session: Session, key_id: int, deltas: RollupDeltas) -> AuthorIdentity:
    """Undo a link: the key gets its own identity, with the items it is the strongest key of.

    Detaching ``account`` ``twitter:123`` from a customer takes that account's posts
    away; its future items follow the account key to the new identity.
    """
    key = session.get(IdentityKey, key_id)
    if key is None:
        raise NotFound(f"no identity key {key_id}")
    source = get(session, key.identity_id)
    remaining = {
        (k.kind, k.value) for k in repository.keys_of_identity(session, source.id) if k.id != key_id
    }
    if not remaining:
        raise InvalidInput(f"key {key_id} is the only key of identity {source.id}")
    target = AuthorIdentity(display_name=source.display_name)
    session.add(target)
    session.flush()
    key.identity_id, key.linked_by = target.id, "manual"
    moving = [
        item
        for item in repository.items_of_identity(session, source.id)
        if keys_of(item) and keys_of(item)[0] == (key.kind, key.value)
    ]
    _move_items(session, moving, target.id, deltas, ungroup=True)
    return target


def merge(session: Session, into_id: int, from_id: int, deltas: RollupDeltas) -> AuthorIdentity:
    """A person's decision: ``from`` and ``into`` are the same customer."""
    if into_id == from_id:
        raise InvalidInput("an identity cannot be merged into itself")
    into, source = get(session, into_id), get(session, from_id)
    for key in repository.keys_of_identity(session, source.id):
        key.identity_id, key.linked_by = into.id, "manual"
    _move_items(
        session, repository.items_of_identity(session, source.id), into.id, deltas, ungroup=False
    )
    session.delete(source)
    session.flush()
    return into
