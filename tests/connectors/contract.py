"""The shared connector contract: what every connector must do against its fake.

To put a connector under the contract, add a module to ``tests/connectors/fakes/`` that
defines ``contract_case()`` returning a :class:`ContractCase` (or a list of them)::

    def contract_case() -> ContractCase:
        def start() -> ContractRig:
            api = FakeThingApi()                      # fresh fake per test
            return ContractRig(
                connector=lambda: ThingConnector({...}, env={...}, transport=api.transport()),
                seed=lambda count: api.add_many(count),   # -> the external ids to expect
                trigger_rate_limit=api.rate_limit_next,   # or None: no rate limit upstream
            )
        return ContractCase(name="thing", start=start, initial_count=25, later_count=12)

``connector()`` is called again to simulate a restart; it must share the rig's fake.
``seed(n)`` adds ``n`` items newer than everything seeded so far and returns the
external ids the connector should report for them. Pick counts that force paging
(more items than one page holds); a source whose first pull only anchors on the newest
page (Mastodon) keeps ``initial_count`` within one page.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from connectors.base import Connector, Cursor, Page, SourceItem

FAKES_PACKAGE = "tests.connectors.fakes"
DEFAULT_PAGE_CAP = 200


@dataclass
class ContractRig:
    """One fresh fake plus the ways to drive it."""

    connector: Callable[[], Connector]
    seed: Callable[[int], Sequence[str]]
    trigger_rate_limit: Callable[[], None] | None = None


@dataclass(frozen=True)
class ContractCase:
    name: str
    start: Callable[[], ContractRig]
    initial_count: int = 7
    later_count: int = 5
    page_cap: int = DEFAULT_PAGE_CAP


def discover_cases() -> list[ContractCase]:
    """Every case from every module in ``tests/connectors/fakes`` with ``contract_case()``."""
    package = importlib.import_module(FAKES_PACKAGE)
    cases: list[ContractCase] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{FAKES_PACKAGE}.{info.name}")
        factory = getattr(module, "contract_case", None)
        if factory is None:
            continue
        found = factory()
        batch = [found] if isinstance(found, ContractCase) else list(found)
        for case in batch:
            if not isinstance(case, ContractCase):
                raise TypeError(f"{module.__name__}.contract_case() returned {case!r}")
            cases.append(case)
    names = [case.name for case in cases]
    if len(names) != len(set(names)):
        raise ValueError(f"contract case names must be unique: {names}")
    return cases


@dataclass
class Drain:
    """Everything one sync handed out, page by page."""

    pages: list[Page]
    cursors: list[Cursor | None]

    @property
    def items(self) -> list[SourceItem]:
        return [item for page in self.pages for item in page.items]

    @property
    def final_cursor(self) -> Cursor | None:
        return self.cursors[-1]


def drain(connector: Connector, cursor: Cursor | None, page_cap: int) -> Drain:
    """Pull like the runner does: until ``has_more`` is False, refusing a repeated cursor.

    Cursors are passed through ``json.dumps``/``json.loads`` between pages, as storage does.
    """
    pages: list[Page] = []
    cursors: list[Cursor | None] = [cursor]
    for _ in range(page_cap):
        page = connector.pull(cursor)
        pages.append(page)
        cursor = json.loads(json.dumps(page.next_cursor))
        if not page.has_more:
            cursors.append(cursor)
            return Drain(pages, cursors)
        assert cursor not in cursors, f"cursor repeated while has_more: {cursor!r}"
        cursors.append(cursor)
    raise AssertionError(f"still has_more after {page_cap} pages: the connector never ends")


def ids(items: Sequence[SourceItem]) -> list[str]:
    return [item.external_id for item in items]


def iter_items(drains: Sequence[Drain]) -> Iterator[SourceItem]:
    for result in drains:
        yield from result.items
