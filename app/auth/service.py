"""API keys and who may do what.

A key is ``andon_`` followed by 43 random URL-safe characters (256 bits). Only its SHA-256
is stored — a fast hash is enough for a secret that long — with its first characters for
display. The plain key is returned once, by ``create_key``, and never logged.

Roles: ``viewer`` reads; ``agent`` also claims and acts on entries (in its queues, when the
key is scoped); ``admin`` does everything (sources, keys, priority weights, the audit log).

Authenticated keys are remembered for ``ANDON_KEY_CACHE_SECONDS`` (5 s) in this process
(``KEY_CACHE``), so a request does not pay a database lookup to learn who is calling.
Revocation still takes effect at once where it matters:

- in the process that revokes (``DELETE /keys/{name}``, ``andon keys revoke`` in-process),
  ``revoke_key`` forgets the key, and forgets it again after the commit (a request that
  looked the key up in between cannot keep the unrevoked answer);
- everywhere, for claims: the claim locks the agent's key row and refuses a revoked key
  (``app.queues.repository.lock_agent``);
- in other processes (another replica, another uvicorn worker), reads and entry actions
  see a revocation within the cache's lifetime, at most ``ANDON_KEY_CACHE_SECONDS``.

Only keys that authenticated are cached (a wrong key is looked up every time), under the
SHA-256 of the key, never the key itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.audit.service import record
from app.auth import repository
from app.auth.errors import Forbidden
from app.auth.models import ROLES, ApiKey
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.queues.models import QUEUE_NAMES

KEY_PREFIX = "andon_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
RANK = {"viewer": 0, "agent": 1, "admin": 2}
DEMO_ADMIN = "demo-admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's name, role and queue scope (None: every queue)."""

    name: str
    role: str
    queues: tuple[str, ...] | None = None
    key_id: int | None = None

    def has_role(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The queues this principal may work in; None: every queue (admins, unscoped keys)."""
        return None if self.role == "admin" else self.queues

    def may_work_in(self, queue: str) -> bool:
        scope = self.scope
        return scope is None or queue in scope

    def require_queue(self, queue: str) -> None:
        if not self.may_work_in(queue):
            scope = ", ".join(self.queues or ())
            raise Forbidden(f"key {self.name!r} is scoped to {scope}; it cannot work in {queue}")


ANONYMOUS = Principal(name="anonymous", role="viewer")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyCache:
    """Principals of recently authenticated keys, by key hash, for ``ttl`` seconds.

    Thread-safe (the request threadpool shares it). Bounded: when ``max_entries`` is
    reached the oldest half is dropped. ``clock`` is injectable so tests can let time pass.
    """

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str, ttl: float) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        stored_at, principal = entry
        if self.clock() - stored_at >= ttl:
            with self._lock:
                if self._entries.get(key_hash) is entry:
                    del self._entries[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                oldest = sorted(self._entries.items(), key=lambda kv: kv[1][0])
                for stale, _ in oldest[: len(oldest) // 2 + 1]:
                    del self._entries[stale]
            self._entries[key_hash] = (self.clock(), principal)

    def forget(self, key_hash: str) -> None:
        with self._lock:
            self._entries.pop(key_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


KEY_CACHE = KeyCache()


def authenticate(session: Session, key: str, *, cache_seconds: float = 0.0) -> Principal | None:
    """The key's principal, or None for an unknown or revoked key.

    With ``cache_seconds`` > 0 an answer found within that time in ``KEY_CACHE`` is reused
    (see the module docstring for what that means for revocation).
    """
    principal = cached_principal(key, cache_seconds)
    if principal is not None:
        return principal
    if not key.startswith(KEY_PREFIX):
        return None
    key_hash = hash_key(key)
    found = repository.by_hash(session, key_hash)
    if found is None or found.revoked_at is not None:
        return None
    principal = principal_of(found)
    if cache_seconds > 0:
        KEY_CACHE.put(key_hash, principal)
    return principal


def cached_principal(key: str, cache_seconds: float) -> Principal | None:
    """The key's principal if ``KEY_CACHE`` holds a fresh one (no database access)."""
    if cache_seconds <= 0 or not key.startswith(KEY_PREFIX):
        return None
    return KEY_CACHE.get(hash_key(key), cache_seconds)


def principal_of(key: ApiKey) -> Principal:
    return Principal(
        name=key.name,
        role=key.role,
        queues=tuple(key.queues) if key.queues is not None else None,
        key_id=key.id,
    )


def create_key(
    session: Session,
    *,
    name: str,
    role: str,
    queues: Sequence[str] | None = None,
    actor: str,
) -> tuple[ApiKey, str]:
    """A new key and its plain text: the only time the plain text exists outside the caller."""
    if not NAME.match(name):
        raise InvalidInput(
            f"invalid key name {name!r}: letters, digits and _ . @ - (up to 100 characters)"
        )
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    scope = sorted(set(queues)) if queues else None
    unknown = [queue for queue in scope or () if queue not in QUEUE_NAMES]
    if unknown:
        raise InvalidInput(
            f"unknown queue(s) {', '.join(unknown)}; queues: {', '.join(QUEUE_NAMES)}"
        )
    if repository.by_name(session, name) is not None:
        raise Conflict(f"a key named {name!r} exists (revoked keys keep their name)")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        role=role,
        queues=scope,
        prefix=plain[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(plain),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    record(
        session,
        actor=actor,
        action="key.create",
        entity="api_key",
        entity_id=name,
        after=describe(key),
    )
    return key, plain


def describe(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "role": key.role,
        "queues": key.queues,
        "prefix": key.prefix,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def listing(session: Session) -> Sequence[ApiKey]:
    return repository.listing(session)


def revoke_key(session: Session, name: str, *, actor: str) -> ApiKey:
    key = repository.by_name(session, name)
    if key is None:
        raise NotFound(f"no key named {name!r}")
    if key.revoked_at is not None:
        raise Conflict(f"key {name!r} was revoked at {key.revoked_at.isoformat()}")
    before = describe(key)
    key.revoked_at = utcnow()
    session.flush()
    forget_after_commit(session, key.key_hash)
    record(
        session,
        actor=actor,
        action="key.revoke",
        entity="api_key",
        entity_id=name,
        before=before,
        after=describe(key),
    )
    return key


def forget_after_commit(session: Session, key_hash: str) -> None:
    """Drop the key from ``KEY_CACHE`` now and once the revocation is committed."""
    KEY_CACHE.forget(key_hash)

    def forget(_session: Session) -> None:
        KEY_CACHE.forget(key_hash)

    event.listen(session, "after_commit", forget, once=True)


def ensure_demo_admin(session: Session) -> str | None:
    """With the demo on and no key at all, an admin key to sign in with (else None)."""
    if repository.any_key(session):
        return None
    _key, plain = create_key(session, name=DEMO_ADMIN, role="admin", actor="system")
    return plain
