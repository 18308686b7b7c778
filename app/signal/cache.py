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

import asyncio
import threading
from collections.abc import Callable, Hashable

from starlette.concurrency import run_in_threadpool


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


class TokenReads:
    """The change token for concurrent requests: one read serves every request waiting.

    A cached answer costs a token read; under load most of its price is the trip to the
    threadpool and the database, not the read. Requests that arrive while a read is in
    flight do not start their own: they wait for the *next* read, which starts as soon as
    the one in flight finishes. That next read began after they arrived, so it sees every
    commit that landed before they arrived: the promise above holds for each of them. At
    most one read is in flight and one waiting, however many requests there are.

    ``read`` runs in the threadpool. Its error reaches every request that waited for it.
    Used from one event loop (one per HTTP process).
    """

    def __init__(self, read: Callable[[], str | None]) -> None:
        self._read = read
        self._inflight: asyncio.Future[str | None] | None = None
        self._next: asyncio.Future[str | None] | None = None
        self.reads = 0  # how many reads were made (for tests and benchmarks)

    async def current(self) -> str | None:
        inflight = self._inflight
        if inflight is not None and inflight.get_loop() is not asyncio.get_running_loop():
            inflight = self._inflight = self._next = None  # left by a loop that has ended
        if inflight is None:
            return await asyncio.shield(self._start())
        if self._next is None:
            self._next = asyncio.ensure_future(self._after(inflight))
        return await asyncio.shield(self._next)

    def _start(self) -> asyncio.Future[str | None]:
        self.reads += 1
        task = asyncio.ensure_future(run_in_threadpool(self._read))
        self._inflight = task

        def finished(done: asyncio.Future[str | None]) -> None:
            if self._inflight is done:
                self._inflight = None

        task.add_done_callback(finished)
        return task

    async def _after(self, inflight: asyncio.Future[str | None]) -> str | None:
        # Its outcome is for the requests that waited for it (they see its error, if any).
        await asyncio.wait((inflight,))
        self._next = None
        return await self._start()
