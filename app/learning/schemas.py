from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.db import MAX_ID

PatternType = Literal["keyword", "regex", "source", "author", "channel", "kind"]
RuleQueue = Literal["product", "marketing", "sales", "service", "triage"]


class RuleCreate(BaseModel):
    pattern_type: PatternType
    pattern: str = Field(min_length=1, max_length=500)
    queue: RuleQueue
    priority: int = Field(
        default=100, ge=-MAX_ID, le=MAX_ID, description="Lower runs first; ties by id"
    )
    enabled: bool = True
    note: str | None = None


class RuleUpdate(BaseModel):
    pattern_type: PatternType | None = None
    pattern: str | None = Field(default=None, min_length=1, max_length=500)
    queue: RuleQueue | None = None
    priority: int | None = Field(default=None, ge=-MAX_ID, le=MAX_ID)
    enabled: bool | None = None
    note: str | None = None


class RuleRead(BaseModel):
    id: int
    pattern_type: str
    pattern: str
    queue: str
    priority: int
    enabled: bool
    note: str | None
    version: int = Field(description="The rule-set version of this rule's last change")
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class RuleSetRead(BaseModel):
    version: int = Field(description="Bumped by every create, update and delete")
    rules: list[RuleRead]


class RuleDeleted(BaseModel):
    id: int
    version: int


ModelKind = Literal["routing", "sentiment"]


class ModelRead(BaseModel):
    version: str
    kind: ModelKind
    active: bool
    created_at: str
    parent: str | None
    sklearn_version: str
    threshold: float
    thresholds: dict[str, float]
    languages: list[str] | None
    metrics: dict[str, Any]
    training: dict[str, Any]


class TrainRequest(BaseModel):
    force: bool = Field(default=False, description="Promote even if macro-F1 drops")


class SentimentTrainRead(BaseModel):
    version: str | None = Field(description="None when no sentiment challenger was trained")
    promoted: bool
    champion: str | None
    challenger_f1: float | None
    champion_f1: float | None
    challenger_recall: float | None
    champion_recall: float | None
    holdout_examples: int
    examples: int
    labels: int = Field(description="Sentiment labels beyond the seed (train and held-out)")
    reason: str
    blend: str = Field(
        default="",
        description="How the words share of the hybrid's blend was set (the default, or "
        "chosen by cross-validation on the labels); empty when nothing was trained",
    )


class TrainRead(BaseModel):
    version: str
    promoted: bool
    champion: str | None
    challenger_f1: float
    champion_f1: float | None
    holdout_examples: int
    examples: int
    labels: int
    reason: str
    sentiment: SentimentTrainRead
