from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.dedupe import service
from app.deps import RowId, SessionDep
from app.signal.service import RollupDeltas

router = APIRouter(prefix="/dedupe", tags=["dedupe"])


class DedupeDetached(BaseModel):
    item_id: int
    dedupe_group_id: int | None


@router.post(
    "/{item_id}/detach",
    response_model=DedupeDetached,
    summary="Take an item out of its dedupe group (its demand counts again)",
)
def detach(item_id: RowId, session: SessionDep) -> DedupeDetached:
    deltas = RollupDeltas()
    item = service.detach(session, item_id, deltas)
    deltas.flush(session)
    return DedupeDetached(item_id=item.id, dedupe_group_id=item.dedupe_group_id)
