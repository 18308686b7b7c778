"""Rules (``/rules``) and model versions (``/models``): reads for viewers, changes for admins."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.auth.deps import AdminDep, ViewerDep
from app.config import Settings
from app.deps import ClassifierDep, RowId, SessionDep, SettingsDep
from app.errors import InvalidInput, NotFound
from app.learning import repository, service
from app.learning.models import RoutingRule
from app.learning.schemas import (
    ModelKind,
    ModelRead,
    RuleCreate,
    RuleDeleted,
    RuleRead,
    RuleSetRead,
    RuleUpdate,
    SentimentTrainRead,
    TrainRead,
    TrainRequest,
)
from classifiers.artifacts import ArtifactError, ModelMeta, ModelStore, diff_metrics
from classifiers.rules import RuleError

rules_router = APIRouter(prefix="/rules", tags=["rules"])
models_router = APIRouter(prefix="/models", tags=["models"])


def rule_read(rule: RoutingRule) -> RuleRead:
    return RuleRead.model_validate(rule, from_attributes=True)


@rules_router.get("", response_model=RuleSetRead, summary="The rule set in force, in order")
def list_rules(session: SessionDep, _: ViewerDep) -> RuleSetRead:
    return RuleSetRead(
        version=repository.rule_set_version(session),
        rules=[rule_read(rule) for rule in repository.rules(session)],
    )


@rules_router.post("", response_model=RuleRead, status_code=201)
def create_rule(body: RuleCreate, session: SessionDep, principal: AdminDep) -> RuleRead:
    try:
        rule = service.create_rule(session, **body.model_dump(), actor=principal.name)
    except RuleError as exc:
        raise InvalidInput(str(exc)) from None
    return rule_read(rule)


@rules_router.get("/{rule_id}", response_model=RuleRead)
def get_rule(rule_id: RowId, session: SessionDep, _: ViewerDep) -> RuleRead:
    rule = repository.rule(session, rule_id)
    if rule is None:
        raise NotFound(f"no rule {rule_id}")
    return rule_read(rule)


@rules_router.patch("/{rule_id}", response_model=RuleRead)
def update_rule(
    rule_id: RowId, body: RuleUpdate, session: SessionDep, principal: AdminDep
) -> RuleRead:
    try:
        # An explicit null leaves a field that cannot be empty as it is (only a note clears).
        changes = {
            name: value
            for name, value in body.model_dump(exclude_unset=True).items()
            if value is not None or name == "note"
        }
        rule = service.update_rule(session, rule_id, changes, actor=principal.name)
    except service.RuleNotFound as exc:
        raise NotFound(str(exc)) from None
    except RuleError as exc:
        raise InvalidInput(str(exc)) from None
    return rule_read(rule)


@rules_router.delete("/{rule_id}", response_model=RuleDeleted)
def delete_rule(rule_id: RowId, session: SessionDep, principal: AdminDep) -> RuleDeleted:
    try:
        version = service.delete_rule(session, rule_id, actor=principal.name)
    except service.RuleNotFound as exc:
        raise NotFound(str(exc)) from None
    return RuleDeleted(id=rule_id, version=version)


KindQuery = Annotated[
    ModelKind, Query(description="Which model's versions: the router's or the sentiment model's")
]


def model_read(meta: ModelMeta, active: str | None) -> ModelRead:
    data = asdict(meta)
    kind = "sentiment" if meta.kind == "sentiment" else "routing"
    return ModelRead(
        kind=kind, active=meta.version == active, **{k: data[k] for k in _MODEL_FIELDS}
    )


def _store(settings: Settings, kind: ModelKind) -> ModelStore:
    if kind == "sentiment":
        return service.sentiment_store(settings.model_dir)
    return ModelStore(settings.model_dir)


_MODEL_FIELDS = (
    "version",
    "created_at",
    "parent",
    "sklearn_version",
    "threshold",
    "thresholds",
    "languages",
    "metrics",
    "training",
)


def _meta(store: ModelStore, version: str) -> ModelMeta:
    try:
        return store.meta(version)
    except ArtifactError as exc:
        raise NotFound(str(exc)) from None


@models_router.get("", response_model=list[ModelRead], summary="Model versions, oldest first")
def list_models(
    settings: SettingsDep, _: ViewerDep, kind: KindQuery = "routing"
) -> list[ModelRead]:
    store = _store(settings, kind)
    active = store.active_version()
    return [model_read(meta, active) for meta in store.versions()]


@models_router.get("/{version}", response_model=ModelRead)
def get_model(
    version: str, settings: SettingsDep, _: ViewerDep, kind: KindQuery = "routing"
) -> ModelRead:
    store = _store(settings, kind)
    return model_read(_meta(store, version), store.active_version())


@models_router.get("/{old}/diff/{new}", summary="How held-out metrics moved between versions")
def diff_models(
    old: str, new: str, settings: SettingsDep, _: ViewerDep, kind: KindQuery = "routing"
) -> dict[str, Any]:
    store = _store(settings, kind)
    return diff_metrics(_meta(store, old), _meta(store, new))


@models_router.post("/{version}/activate", response_model=ModelRead, summary="Roll back or forward")
def activate_model(
    version: str,
    settings: SettingsDep,
    classifier: ClassifierDep,
    _: AdminDep,
    kind: KindQuery = "routing",
) -> ModelRead:
    store = _store(settings, kind)
    _meta(store, version)
    try:
        if kind == "sentiment":
            service.activate_sentiment(classifier, store, version)
        else:
            service.activate(classifier, store, version, settings.triage_threshold)
    except ArtifactError as exc:
        raise InvalidInput(str(exc)) from None
    return model_read(store.meta(version), store.active_version())


@models_router.post(
    "/train", response_model=TrainRead, summary="Train a challenger; promote it if it holds"
)
def train_model(
    body: TrainRequest,
    session: SessionDep,
    settings: SettingsDep,
    classifier: ClassifierDep,
    _: AdminDep,
) -> TrainRead:
    outcome = service.train_and_challenge(
        ModelStore(settings.model_dir),
        threshold=settings.triage_threshold,
        session=session,
        force=body.force,
        trigger="api",
        classifier=classifier,
    )
    return TrainRead(
        version=outcome.version,
        promoted=outcome.promoted,
        champion=outcome.champion,
        challenger_f1=outcome.challenge.challenger_f1,
        champion_f1=outcome.challenge.champion_f1,
        holdout_examples=outcome.challenge.holdout_examples,
        examples=outcome.examples,
        labels=outcome.labels,
        reason=outcome.challenge.reason,
        sentiment=sentiment_read(outcome.sentiment),
    )


def sentiment_read(outcome: service.SentimentOutcome) -> SentimentTrainRead:
    challenge = outcome.challenge
    return SentimentTrainRead(
        version=outcome.version,
        promoted=outcome.promoted,
        champion=outcome.champion,
        challenger_f1=challenge.challenger_f1 if challenge else None,
        champion_f1=challenge.champion_f1 if challenge else None,
        challenger_recall=challenge.challenger_recall if challenge else None,
        champion_recall=challenge.champion_recall if challenge else None,
        holdout_examples=challenge.holdout_examples if challenge else 0,
        examples=outcome.examples,
        labels=outcome.labels,
        reason=outcome.reason,
        blend=outcome.blend,
    )
