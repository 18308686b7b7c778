"""Queues, entries and priority weights over HTTP.

``router`` gathers three routers: ``/queues`` (depth and flow; claim), ``/entries`` (act
on one entry) and ``/priority`` (the weights; admins change them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from app.auth.deps import AdminDep, AgentDep, ViewerDep
from app.auth.service import Principal
from app.config import Settings
from app.db import utcnow
from app.deps import RowId, SessionDep, SettingsDep, run_unit
from app.items.router import ItemColumns, VerdictColumns, to_detail
from app.ops.metrics import record_claim
from app.ops.ratelimit import ChargedAgentDep
from app.queues import fast, priority, service
from app.queues.models import QueueEntry
from app.queues.repository import EntryState
from app.queues.schemas import (
    DismissBody,
    EntryRead,
    EntryWithItem,
    PriorityBreakdown,
    QueueLimits,
    QueueRead,
    RerouteBody,
    ResolveBody,
    SentimentBody,
    WeightsRead,
    WeightsUpdate,
)

# Claim, resolve and dismiss: every agent's entry is a claim and a close. Their one
# dependency (``ChargedAgentDep``) charges the rate limit itself, so this router is
# included first and without the ``limit_rate`` dependency (``app.main``).
agents_router = APIRouter(tags=["queues"])
queues_router = APIRouter(prefix="/queues", tags=["queues"])
entries_router = APIRouter(prefix="/entries", tags=["queues"])
priority_router = APIRouter(prefix="/priority", tags=["queues"])

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Another agent holds the lease (`held_by`, `lease_expires_at`)"}
}


def entry_read(entry: QueueEntry | EntryState, now: datetime) -> EntryRead:
    value, breakdown = priority.live(entry, now)
    return EntryRead(
        id=entry.id,
        item_id=entry.item_id,
        queue=entry.queue,
        state=entry.state,
        priority=value,
        priority_breakdown=PriorityBreakdown(**breakdown),
        claimed_by=entry.claimed_by,
        lease_expires_at=entry.lease_expires_at,
        created_at=entry.created_at,
        note=entry.note,
        routed_by=entry.routed_by,
    )


def with_item(session: Session, entry: QueueEntry, now: datetime) -> EntryWithItem:
    item, verdict, current = service.item_of(session, entry)
    detail = to_detail(item, verdict, current, item.raw)
    return EntryWithItem(entry=entry_read(entry, now), item=detail)


def claimed_with_item(
    entry: EntryState,
    item: ItemColumns,
    verdict: VerdictColumns | None,
    raw: dict[str, Any],
    now: datetime,
) -> EntryWithItem:
    """A claim's answer: the entry just claimed is the item's current one."""
    detail = to_detail(item, verdict, entry, raw)
    return EntryWithItem(entry=entry_read(entry, now), item=detail)


def queue_read(stats: service.QueueStats, settings: Settings, now: datetime) -> QueueRead:
    oldest = stats.oldest_waiting_since
    window = service.STATS_WINDOW_HOURS
    return QueueRead(
        queue=stats.queue,
        open=stats.open,
        claimed=stats.claimed,
        resolved=stats.resolved,
        dismissed=stats.dismissed,
        oldest_open_at=oldest,
        depth=stats.open,
        oldest_waiting_seconds=round((now - oldest).total_seconds(), 3) if oldest else None,
        median_wait_seconds=stats.median_wait_seconds,
        arrivals_per_hour=round(stats.arrivals / window, 3),
        resolutions_per_hour=round(stats.resolutions / window, 3),
        window_hours=window,
        wip=dict(stats.wip or {}),
        limits=QueueLimits(
            agent=settings.wip_per_agent, queue=settings.wip_per_queue.get(stats.queue)
        ),
    )


@queues_router.get("", response_model=list[QueueRead], summary="Depth and flow of every queue")
def list_queues(session: SessionDep, settings: SettingsDep, _: ViewerDep) -> list[QueueRead]:
    now = utcnow()
    return [queue_read(row, settings, now) for row in service.stats(session, now).values()]


@queues_router.get("/{queue}", response_model=QueueRead, summary="Depth and flow of one queue")
def get_queue(queue: str, session: SessionDep, settings: SettingsDep, _: ViewerDep) -> QueueRead:
    service.known_queue(queue)
    now = utcnow()
    return queue_read(service.stats(session, now)[queue], settings, now)


@agents_router.post(
    "/queues/{queue}/claim",
    response_model=EntryWithItem,
    summary="Claim the next entry (priority, then age) under a lease",
    responses={
        204: {"description": "The queue is empty"},
        429: {"description": "A WIP limit is reached (`limit`: agent or queue)"},
    },
)
async def claim(queue: str, request: Request, principal: ChargedAgentDep) -> Response:
    return await claim_response(request.app.state, principal, queue)


async def claim_response(state: Any, principal: Principal, queue: str) -> Response:
    """A claim's answer (the endpoint's body; ``app.queues.lane`` calls it directly).

    Claims and closes are the hottest write path. On PostgreSQL the usual case runs on the
    event loop (``app.queues.fast``); the rest, and SQLite, in one threadpool call for the
    session, the work and its commit (``run_unit``). The answer is serialised once
    (returning the model would have FastAPI validate it again first), and settings and
    sessionmaker come from the app's state: fewer dependencies to solve.
    """
    settings: Settings = state.settings
    pool = state.claims_pool
    answer = None
    if pool is not None and fast.applies(queue, settings):
        service.check_claim(principal, queue)
        now = utcnow()
        claimed = await fast.claim(pool, principal, queue, settings, now)
        if claimed is not None:
            answer = claimed_with_item(
                claimed.entry, claimed.item, claimed.verdict, claimed.raw, now
            )
    if answer is None:
        answer = await run_unit(state.sessionmaker, _claim, queue, settings, principal)
    if answer is None:
        return Response(status_code=204)
    record_claim(answer.entry.queue)
    return Response(answer.model_dump_json(), media_type="application/json")


def _claim(
    session: Session, queue: str, settings: Settings, principal: Principal
) -> EntryWithItem | None:
    now = utcnow()
    claimed = service.claim_with_item(session, principal, queue, settings, now)
    if claimed is None:
        return None
    entry, item, verdict = claimed
    return claimed_with_item(entry, item, verdict, item.raw, now)


@entries_router.get("/{entry_id}", response_model=EntryWithItem, summary="One entry and its item")
def get_entry(entry_id: RowId, session: SessionDep, _: ViewerDep) -> EntryWithItem:
    return with_item(session, service.get(session, entry_id), utcnow())


@entries_router.post(
    "/{entry_id}/heartbeat", response_model=EntryRead, responses=CONFLICT, summary="Renew the lease"
)
def heartbeat(
    entry_id: RowId, session: SessionDep, settings: SettingsDep, principal: AgentDep
) -> EntryRead:
    now = utcnow()
    return entry_read(service.heartbeat(session, principal, entry_id, settings, now), now)


@agents_router.post("/entries/{entry_id}/resolve", response_model=EntryRead, responses=CONFLICT)
async def resolve(
    entry_id: RowId, body: ResolveBody, request: Request, principal: ChargedAgentDep
) -> Response:
    return await close_response(
        request.app.state, principal, entry_id, "resolved", body.note, "entry.resolve"
    )


@entries_router.post(
    "/{entry_id}/release", response_model=EntryRead, responses=CONFLICT, summary="Put it back"
)
def release(entry_id: RowId, session: SessionDep, principal: AgentDep) -> EntryRead:
    now = utcnow()
    return entry_read(service.release(session, principal, entry_id, now), now)


@agents_router.post(
    "/entries/{entry_id}/dismiss",
    response_model=EntryRead,
    responses=CONFLICT,
    summary="Spam, noise …",
)
async def dismiss(
    entry_id: RowId, body: DismissBody, request: Request, principal: ChargedAgentDep
) -> Response:
    return await close_response(
        request.app.state, principal, entry_id, "dismissed", body.reason, "entry.dismiss"
    )


async def close_response(
    app_state: Any, principal: Principal, entry_id: int, state: str, note: str, action: str
) -> Response:
    """Resolve or dismiss (the endpoints' body; ``app.queues.lane`` calls it directly): on
    the event loop on PostgreSQL (``app.queues.fast``), else in one threadpool call."""
    pool = app_state.claims_pool
    answer = None
    if pool is not None:
        now = utcnow()
        closed = await fast.close(
            pool, principal, entry_id, now, state=state, note=note, action=action
        )
        answer = entry_read(closed, now) if closed is not None else None
    if answer is None:  # SQLite, or the general path answers why not (404, 403, 409)
        answer = await run_unit(
            app_state.sessionmaker, _close_unit, principal, entry_id, state, note, action
        )
    return Response(answer.model_dump_json(), media_type="application/json")


def _close_unit(
    session: Session, principal: Principal, entry_id: int, state: str, note: str, action: str
) -> EntryRead:
    now = utcnow()
    closed = service.close(session, principal, entry_id, now, state=state, note=note, action=action)
    return entry_read(closed, now)


@entries_router.post(
    "/{entry_id}/reroute",
    response_model=EntryRead,
    responses=CONFLICT,
    summary="Send the item to another queue (a correction); returns the new entry",
)
def reroute(
    entry_id: RowId, body: RerouteBody, session: SessionDep, principal: AgentDep
) -> EntryRead:
    now = utcnow()
    moved = service.reroute(session, principal, entry_id, body.queue, body.reason, now)
    return entry_read(moved, now)


@entries_router.post(
    "/{entry_id}/sentiment",
    response_model=EntryRead,
    responses=CONFLICT,
    summary="Correct the item's sentiment (a correction)",
)
def correct_sentiment(
    entry_id: RowId, body: SentimentBody, session: SessionDep, principal: AgentDep
) -> EntryRead:
    now = utcnow()
    entry = service.correct_sentiment(session, principal, entry_id, body.label, body.reason, now)
    return entry_read(entry, now)


@priority_router.get("", response_model=WeightsRead, summary="The priority weights in use")
def get_weights(session: SessionDep, _: ViewerDep) -> WeightsRead:
    return WeightsRead(**priority.current(session).as_dict())


@priority_router.put(
    "", response_model=WeightsRead, summary="Change priority weights; open entries are re-scored"
)
def put_weights(body: WeightsUpdate, session: SessionDep, principal: AdminDep) -> WeightsRead:
    changes = body.model_dump(exclude_none=True)
    return WeightsRead(**service.update_weights(session, principal, changes).as_dict())


router = APIRouter()  # rate limited by the including app, as every API router
router.include_router(queues_router)
router.include_router(entries_router)
router.include_router(priority_router)
