"""``GET /signal`` answers, cached per process until the rollups change.

An answer is the serialised JSON of one query (bucket, range, queues, channels, grouping),
stored under the rollups' change token (``signal_version``, see
``app.signal.repository.mark_signal_changed``). Every request reads the token first — one
primary-key read — and uses a cached answer only if it was computed under that same token:

- a commit that changed the rollups also changed the token, so no request that starts
  after it can be given an answer computed before it;
- an answer computed while such a commit lands is stored under the token read before it,
  which no later request will present.

Without a token (the rollups were never written through the hook) nothing is cached.
A new token drops every answer of the old one; at most ``max_entries`` answers are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class SignalCache:
    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._token: str | None = None
        self._answers: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def get(self, token: str | None, key: Hashable) -> bytes | None:
        if token is None or token != self._token:
            return None
        return self._answers.get(key)

    def put(self, token: str | None, key: Hashable, answer: bytes) -> None:
        if token is None or self.max_entries <= 0:
            return
        with self._lock:
            if token != self._token:
                self._token, self._answers = token, {}
            elif len(self._answers) >= self.max_entries:
                self._answers.pop(next(iter(self._answers)))  # the oldest
            self._answers[key] = answer

    def clear(self) -> None:
        with self._lock:
            self._token, self._answers = None, {}

    def __len__(self) -> int:
        return len(self._answers)


SIGNAL_CACHE = SignalCache()
