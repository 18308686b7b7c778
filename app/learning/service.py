"""The learning loop: the models in use, operators' rules, labels, champion/challenger.

- ``Classifier``: sentiment and routing for batches, loaded once at start-up and shared by
  the API, the runner and the CLI. If no router is stored (a fresh install) or the stored
  one was written by another scikit-learn version, the router is trained from the seed
  corpus and saved, so the service always starts with a model it can vouch for.
- Rules live in the database; every change bumps the rule-set version. ``current_rules``
  loads the set in force for each batch, so every replica applies a change at once.
- Labels: agents' corrections (``Correction`` rows written when an item is re-routed or
  its sentiment fixed) plus imported labelled files, on top of the seed corpus.
- ``train_and_challenge``: a routing challenger and a sentiment challenger are trained on
  all of them, each scored against its active model on a fixed held-out split that neither
  was fitted on, saved, and promoted only if macro-F1 does not drop (or when forced). The
  sentiment side runs only when there are sentiment labels beyond the seed. The CLI, the
  API and the scheduled job all run this one path.
- ``reclassify``: re-score stored items with the active model in batches, without
  re-pulling; ``app.items.service.classify_items`` keeps queues and signal consistent.
"""

from __future__ import annotations

import copyreg
import dataclasses
import logging
import multiprocessing
import operator
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.learning import repository
from app.learning.models import RoutingRule, RuleSetVersion, TrainingRun
from app.ops import heap
from classifiers.artifacts import ArtifactError, ModelStore
from classifiers.routing import QUEUES, Route, Router
from classifiers.rules import EMPTY_RULES, ItemFacts, Rule, RuleSet, check_rule
from classifiers.sentiment import (
    SENTIMENT_LABELS,
    SENTIMENT_STORE,
    Sentiment,
    SentimentScorer,
    active_sentiment,
    hybrid_from_store,
    hybrid_pipeline,
    load_sentiment,
)
from classifiers.train import (
    SEARCH_FOLDS,
    SEARCH_MIN_LABELS,
    Challenge,
    Example,
    challenge_sentiment,
    load_examples,
    seed_paths,
    split_sentiment,
    train_router,
    train_sentiment,
)
from classifiers.train import (
    challenge as run_challenge,
)

log = logging.getLogger(__name__)

_Part = TypeVar("_Part")
_Result = TypeVar("_Result")

RULE_FIELDS = ("pattern_type", "pattern", "queue", "priority", "enabled", "note")


class RuleNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Verdict:
    sentiment: Sentiment
    route: Route


class Classifier:
    """Sentiment and routing for batches of texts.

    Classification is CPU-bound pure Python (VADER, the care rules, TF-IDF), so one process
    uses one core. A batch of at least ``parallel_min`` texts is split over ``workers``
    worker processes (``workers`` defaults to the core count; 1 keeps everything in this
    process, and small batches never pay the hand-off).

    ``submit`` starts a batch and returns at once with a ``PendingVerdicts``: the ingest
    runner classifies the next page in the workers while this process stores the current
    one, so storage and classification overlap on different cores. ``classify`` is
    ``submit(...).result()``.

    Workers are forked (they inherit the loaded models at no cost) when this process has a
    single thread; a threaded process (the API server) starts them with ``forkserver``,
    which is safe with threads, and sends each worker the models once. Replacing the router
    or the sentiment scorer (a model promoted or rolled back) stops the workers, so the
    next batch is scored by the new models.
    """

    def __init__(
        self,
        router: Router,
        sentiment: SentimentScorer | None = None,
        *,
        workers: int | None = None,
        parallel_min: int = 200,
        start_method: str | None = None,
    ) -> None:
        self._pool: Executor | None = None
        self._router = router
        self._sentiment = sentiment or SentimentScorer()
        self.workers = max(1, workers if workers is not None else os.cpu_count() or 1)
        self.parallel_min = parallel_min
        self.start_method = start_method

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None  # a worker gets the models, never the pool
        return state

    @property
    def router(self) -> Router:
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router
        self.close()  # the workers hold the old model

    @property
    def sentiment(self) -> SentimentScorer:
        return self._sentiment

    @sentiment.setter
    def sentiment(self, sentiment: SentimentScorer) -> None:
        self._sentiment = sentiment
        self.close()

    @property
    def model_version(self) -> str:
        return self.router.version

    @property
    def sentiment_version(self) -> str:
        return str(self.sentiment.version)

    def classify(
        self,
        texts: Sequence[str],
        *,
        facts: Sequence[ItemFacts] | None = None,
        rules: RuleSet = EMPTY_RULES,
    ) -> list[Verdict]:
        return self.submit(texts, facts=facts, rules=rules).result()

    def submit(
        self,
        texts: Sequence[str],
        *,
        facts: Sequence[ItemFacts] | None = None,
        rules: RuleSet = EMPTY_RULES,
    ) -> PendingVerdicts:
        """Start classifying a batch; the verdicts come from ``result()``, in order."""
        pool = self._pool_for(len(texts))
        if pool is None:
            return PendingVerdicts([], self.classify_here(texts, facts=facts, rules=rules))
        share = -(-len(texts) // self.workers)  # ceil: one share per worker
        futures = [
            pool.submit(
                _classify_in_worker,
                list(texts[start : start + share]),
                None if facts is None else list(facts[start : start + share]),
                rules,
            )
            for start in range(0, len(texts), share)
        ]
        return PendingVerdicts(futures)

    def submit_parts(
        self, job: Callable[[Classifier, _Part], _Result], parts: Sequence[_Part], *, size: int
    ) -> PendingParts[_Result]:
        """Start ``job(classifier, part)`` for each part: in the workers when ``size`` (the
        items the parts hold between them) is at least ``parallel_min``, else here, now.

        For work that goes with classifying a batch and is better done next to it than in
        this process (the sync runner's privacy policy and field preparation). ``job`` must
        be a module-level function, its parts and results picklable.
        """
        pool = self._pool_for(size)
        if pool is None:
            return PendingParts([], [job(self, part) for part in parts])
        return PendingParts([pool.submit(_run_part, job, part) for part in parts])

    def classify_here(
        self,
        texts: Sequence[str],
        *,
        facts: Sequence[ItemFacts] | None = None,
        rules: RuleSet = EMPTY_RULES,
    ) -> list[Verdict]:
        """Classify in this process."""
        sentiments = self.sentiment.score_batch(texts)
        routes = self.router.route_batch(texts, facts=facts, rules=rules)
        return [
            Verdict(sentiment=sentiment, route=route)
            for sentiment, route in zip(sentiments, routes, strict=True)
        ]

    def warm(self) -> None:
        """Load what the models load on first use (py3langid's model: ~1 s of CPU to
        decompress), so forked workers inherit it instead of each loading it again."""
        self.classify_here([_WARM_UP])

    def start(self) -> None:
        """Start the worker processes now (not at the first large batch), if there are any.

        Called before a process starts threads of its own, so the workers can be forked.
        """
        if self.workers >= 2:
            self.warm()
        pool = self._pool_for(self.parallel_min)
        if pool is not None:
            for future in [pool.submit(_ready) for _ in range(self.workers)]:
                future.result()

    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (none before ``start`` or a large batch)."""
        if not isinstance(self._pool, ProcessPoolExecutor):
            return []
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _pool_for(self, size: int) -> Executor | None:
        if self.workers < 2 or size < self.parallel_min:
            return None
        if self._pool is None:
            method = self.start_method
            if method is None:
                available = multiprocessing.get_all_start_methods()
                single = threading.active_count() == 1
                safe = "forkserver" if "forkserver" in available else "spawn"
                method = "fork" if single and "fork" in available else safe
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_adopt,
                initargs=(self,),
            )
        return self._pool


class PendingParts(Generic[_Result]):
    """The parts of ``Classifier.submit_parts``: their results in order, once done."""

    def __init__(
        self, futures: Sequence[Future[_Result]], done: list[_Result] | None = None
    ) -> None:
        self._futures = list(futures)
        self._done = done

    def done(self) -> bool:
        """Whether ``result`` would return at once."""
        return self._done is not None or all(future.done() for future in self._futures)

    def result(self) -> list[_Result]:
        if self._done is None:
            self._done = [future.result() for future in self._futures]
        return self._done


def pickle_by_fields(cls: type[Any]) -> None:
    """Pickle instances of the dataclass ``cls`` as its constructor's arguments.

    A frozen dataclass with slots pickles through ``dataclasses``' own state functions,
    which look its fields up again for every object: verdicts (three objects each) coming
    back from the workers cost ~11 ms per page of 1000 to unpickle in the process that
    stores them, ~5 ms this way. The constructor runs again on the way in (its checks
    included). A process-wide registration (``copyreg``) for types whose fields are all
    constructor arguments.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    if not all(f.init for f in dataclasses.fields(cls)) or len(names) < 2:
        raise TypeError(f"{cls.__name__}: every field must be a constructor argument")
    get = operator.attrgetter(*names)
    copyreg.pickle(cls, lambda obj: (cls, get(obj)))


_WARM_UP = "The export to CSV fails every time since the last update, please help"
"""A text long enough for language detection to run (``classifiers.language.MIN_LETTERS``)."""


class PendingVerdicts:
    """A batch being classified in worker processes (or already done in this one)."""

    def __init__(
        self, futures: Sequence[Future[list[Verdict]]], done: list[Verdict] | None = None
    ) -> None:
        self._futures = list(futures)
        self._done = done

    def done(self) -> bool:
        """Whether ``result`` would return at once."""
        return self._done is not None or all(future.done() for future in self._futures)

    def result(self) -> list[Verdict]:
        if self._done is None:
            verdicts: list[Verdict] = []
            for future in self._futures:
                verdicts.extend(future.result())
            self._done = verdicts
        return self._done


for _type in (Verdict, Sentiment, Route):
    pickle_by_fields(_type)

_worker_classifier: Classifier | None = None


def _adopt(classifier: Classifier) -> None:
    """Worker start-up: keep the classifier (inherited when forked, else unpickled once)."""
    global _worker_classifier
    classifier._pool = None  # a worker never starts workers of its own
    _worker_classifier = classifier
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent died (killed with -9: no shutdown) exits within a second.

    Its siblings hold the task pipe open, so it would never see end-of-file and would
    otherwise wait forever, holding its memory and the parent's output pipes.
    """
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _ready() -> bool:
    return _worker_classifier is not None


def _run_part(job: Callable[[Classifier, _Part], _Result], part: _Part) -> _Result:
    if _worker_classifier is None:
        raise RuntimeError("classifier worker used before start-up")
    return job(_worker_classifier, part)


def _classify_in_worker(
    texts: list[str], facts: list[ItemFacts] | None, rules: RuleSet
) -> list[Verdict]:
    if _worker_classifier is None:
        raise RuntimeError("classifier worker used before start-up")
    return _worker_classifier.classify_here(texts, facts=facts, rules=rules)


# --- models --------------------------------------------------------------------------------


def router_from_store(store: ModelStore, version: str, threshold: float) -> Router:
    pipeline, meta = store.load(version)
    return Router(
        pipeline,
        version=meta.version,
        threshold=threshold,
        thresholds=meta.thresholds,
        languages=meta.languages,
    )


def train_seed_router(store: ModelStore, threshold: float) -> Router:
    """Train the router on the seed corpus, save it and make it the active version."""
    paths = seed_paths()
    if not paths:
        raise ArtifactError("no seed corpus found in classifiers/data/seed")
    result = train_router(load_examples(paths), threshold=threshold)
    store.save(result.router.pipeline, result.meta, activate=True)
    log.info("trained router %s on the seed corpus", result.meta.version)
    return result.router


def active_router(store: ModelStore, threshold: float) -> Router | None:
    version = store.active_version()
    if version is None:
        return None
    try:
        return router_from_store(store, version, threshold)
    except ArtifactError as exc:
        log.warning("active model unusable (%s)", exc)
        return None


def load_router(model_dir: Path, threshold: float) -> Router:
    """The active router; trained from the seed corpus when none is usable."""
    store = ModelStore(model_dir)
    return active_router(store, threshold) or train_seed_router(store, threshold)


def sentiment_store(model_dir: Path) -> ModelStore:
    """The sentiment model's versions: ``model_dir/sentiment``, next to the router's."""
    return ModelStore(model_dir / SENTIMENT_STORE)


def load_classifier(model_dir: Path, threshold: float, *, workers: int | None = None) -> Classifier:
    """The active router and the active sentiment model; ``workers`` classification processes
    (default: one per core)."""
    # Sentiment: the active version in model_dir/sentiment, else the seed-trained default.
    classifier = Classifier(
        load_router(model_dir, threshold), sentiment=load_sentiment(model_dir), workers=workers
    )
    classifier.warm()  # at start-up, once, not in every worker at its first batch
    heap.settle()  # the models live as long as the process: the collector stops re-scanning them
    return classifier


def activate(
    classifier: Classifier | None, store: ModelStore, version: str, threshold: float
) -> None:
    """Make ``version`` active (roll back or forward) and swap it into ``classifier``."""
    router = router_from_store(store, version, threshold)  # refuses an unusable artifact
    store.activate(version)
    if classifier is not None:
        classifier.router = router


def activate_sentiment(classifier: Classifier | None, store: ModelStore, version: str) -> None:
    """Make sentiment ``version`` active (roll back or forward) and swap it into ``classifier``.

    Services load it at their next start (``load_sentiment`` honours the pointer)."""
    scorer = hybrid_from_store(store, version)  # refuses an unusable artifact
    store.activate(version)
    if classifier is not None:
        classifier.sentiment = scorer


# --- rules ---------------------------------------------------------------------------------


def current_rules(session: Session) -> RuleSet:
    """The rule set in force, with its version."""
    version = repository.rule_set_version(session)
    if version == 0:
        return EMPTY_RULES
    return RuleSet(
        (
            Rule(
                id=row.id,
                pattern_type=row.pattern_type,
                pattern=row.pattern,
                queue=row.queue,
                priority=row.priority,
            )
            for row in repository.rules(session, enabled_only=True)
        ),
        version=version,
    )


def facts_for(session: Session, items: Sequence[Any]) -> list[ItemFacts]:
    """What rules may look at for stored items (``app.items.models.Item``)."""
    from classifiers.text import compose

    names = repository.source_names(session, [item.source_id for item in items])
    return [
        ItemFacts(
            text=compose(item.text, item.title),
            channel=item.channel,
            kind=item.kind,
            source=names.get(item.source_id),
            author=tuple(
                value for value in (item.author_handle, item.author_id, item.author_email) if value
            ),
            lang=item.lang,
        )
        for item in items
    ]


def _snapshot(rule: RoutingRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in ("id", *RULE_FIELDS)}


def _bump(session: Session, change: str, rule: RoutingRule, actor: str | None) -> int:
    version = repository.rule_set_version(session) + 1
    session.add(
        RuleSetVersion(
            version=version,
            change=change,
            rule_id=rule.id,
            snapshot=_snapshot(rule),
            changed_by=actor,
            changed_at=utcnow(),
        )
    )
    return version


def create_rule(
    session: Session,
    *,
    pattern_type: str,
    pattern: str,
    queue: str,
    priority: int = 100,
    enabled: bool = True,
    note: str | None = None,
    actor: str | None = None,
) -> RoutingRule:
    """Add a rule; raises ``classifiers.rules.RuleError`` on a bad one."""
    check_rule(pattern_type, pattern, queue)
    rule = RoutingRule(
        pattern_type=pattern_type,
        pattern=pattern,
        queue=queue,
        priority=priority,
        enabled=enabled,
        note=note,
        created_by=actor,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(rule)
    session.flush()
    rule.version = _bump(session, f"create rule {rule.id}", rule, actor)
    session.flush()
    return rule


def update_rule(
    session: Session, rule_id: int, changes: dict[str, Any], actor: str | None = None
) -> RoutingRule:
    rule = repository.rule(session, rule_id)
    if rule is None:
        raise RuleNotFound(f"no rule {rule_id}")
    updated = {name: changes.get(name, getattr(rule, name)) for name in RULE_FIELDS}
    check_rule(updated["pattern_type"], updated["pattern"], updated["queue"])
    changed = [name for name in RULE_FIELDS if updated[name] != getattr(rule, name)]
    if not changed:
        return rule
    for name in changed:
        setattr(rule, name, updated[name])
    rule.updated_at = utcnow()
    rule.version = _bump(session, f"update rule {rule.id}: {', '.join(changed)}", rule, actor)
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: int, actor: str | None = None) -> int:
    """Delete a rule; returns the new rule-set version."""
    rule = repository.rule(session, rule_id)
    if rule is None:
        raise RuleNotFound(f"no rule {rule_id}")
    version = _bump(session, f"delete rule {rule.id}", rule, actor)
    session.delete(rule)
    session.flush()
    return version


# --- labels and training -------------------------------------------------------------------


def correction_examples(session: Session) -> list[Example]:
    """Agents' corrections as labels: the latest queue and sentiment per item.

    A re-route to triage is not a label (nobody said where it belongs).
    """
    queues: dict[int, tuple[str, str]] = {}
    sentiments: dict[int, tuple[str, str]] = {}
    for row in repository.corrections(session):
        if row.field == "queue" and row.new_value in QUEUES:
            queues[row.item_id] = (row.text, row.new_value)
        elif row.field == "sentiment" and row.new_value in SENTIMENT_LABELS:
            sentiments[row.item_id] = (row.text, row.new_value)
    examples = []
    for item_id in sorted(set(queues) | set(sentiments)):
        text = (queues.get(item_id) or sentiments[item_id])[0]
        examples.append(
            Example(
                text=text,
                queue=queues[item_id][1] if item_id in queues else None,
                sentiment=sentiments[item_id][1] if item_id in sentiments else None,
                origin=f"correction:item {item_id}",
            )
        )
    return examples


@dataclass(frozen=True, slots=True)
class SentimentOutcome:
    """The sentiment side of a training run; ``version`` is None when nothing was trained."""

    version: str | None
    promoted: bool
    challenge: Challenge | None
    examples: int
    labels: int
    corrections: int
    champion: str | None
    reason: str
    blend: str = ""
    """How the words share of the hybrid's blend was set (``classifiers.train``)."""


def record_run(
    session: Session,
    kind: str,
    decision: Challenge,
    *,
    trigger: str,
    versions: tuple[str, str | None],
    labels: int,
    forced: bool,
    started: datetime,
) -> None:
    """One ``training_run`` row: which model, challenger vs champion, the verdict."""
    challenger, champion = versions
    session.add(
        TrainingRun(
            kind=kind,
            trigger=trigger,
            challenger_version=challenger,
            champion_version=champion,
            challenger_f1=decision.challenger_f1,
            champion_f1=decision.champion_f1,
            holdout_examples=decision.holdout_examples,
            labels=labels,
            promoted=decision.promote,
            forced=forced,
            reason=decision.reason,
            started_at=started,
            finished_at=utcnow(),
        )
    )
    session.flush()


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    version: str
    promoted: bool
    challenge: Challenge
    examples: int
    labels: int
    corrections: int
    champion: str | None
    sentiment: SentimentOutcome


def train_and_challenge(
    store: ModelStore,
    *,
    threshold: float,
    label_paths: Sequence[Path] = (),
    session: Session | None = None,
    force: bool = False,
    trigger: str = "cli",
    classifier: Classifier | None = None,
) -> TrainOutcome:
    """Train challengers on seed + corrections + ``label_paths``; promote each that holds.

    The router is trained from the examples with a queue; the sentiment model
    (``train_sentiment_challenge``) from those with a sentiment, when there are any beyond
    the seed. Raises ``classifiers.train.LabelFileError`` for an unreadable label file. A
    challenger is saved either way (so it can be inspected, diffed and activated by hand);
    with a ``session`` each run is recorded; with a ``classifier`` a promoted model is
    swapped in.
    """
    started = utcnow()
    corrections = correction_examples(session) if session is not None else []
    imported = load_examples(label_paths)
    examples = [*load_examples(seed_paths()), *imported, *corrections]
    champion_version = store.active_version()
    champion = active_router(store, threshold)
    result = train_router(examples, threshold=threshold, parent=champion_version)
    decision = run_challenge(result.router, champion, examples, force=force)
    result.meta.metrics["challenge"] = {
        "champion": champion_version if champion is not None else None,
        "challenger_f1": decision.challenger_f1,
        "champion_f1": decision.champion_f1,
        "holdout_examples": decision.holdout_examples,
        "promoted": decision.promote,
        "reason": decision.reason,
    }
    result.meta.training["corrections"] = sum(1 for e in corrections if e.queue)
    result.meta.training["imported"] = sum(1 for e in imported if e.queue)
    store.save(result.router.pipeline, result.meta, activate=decision.promote)
    if decision.promote and classifier is not None:
        classifier.router = result.router
    labels = sum(1 for e in [*imported, *corrections] if e.queue)
    if session is not None:
        record_run(
            session,
            "routing",
            decision,
            trigger=trigger,
            versions=(result.meta.version, champion_version if champion is not None else None),
            labels=labels,
            forced=force,
            started=started,
        )
    log.info("trained %s: %s", result.meta.version, decision.reason)
    sentiment = train_sentiment_challenge(
        store.directory,  # the sentiment versions live in its sentiment/ subdirectory
        [*imported, *corrections],
        session=session,
        force=force,
        trigger=trigger,
        classifier=classifier,
    )
    return TrainOutcome(
        version=result.meta.version,
        promoted=decision.promote,
        challenge=decision,
        examples=int(result.meta.training["examples"]),
        labels=labels,
        corrections=len(corrections),
        champion=champion_version if champion is not None else None,
        sentiment=sentiment,
    )


def train_sentiment_challenge(
    model_dir: Path,
    labels: Sequence[Example],
    *,
    session: Session | None = None,
    force: bool = False,
    trigger: str = "cli",
    classifier: Classifier | None = None,
) -> SentimentOutcome:
    """The sentiment side of ``train_and_challenge``: seed + sentiment ``labels``, versions
    in ``sentiment_store(model_dir)``.

    The champion is the model in use (``active_sentiment``: the active learned version, or
    the seed-trained default). Both are scored on the held-out side of the labels, which no
    sentiment model is ever fitted on. With no sentiment label beyond the seed on the
    training side, nothing is trained: the challenger would be the seed model again.
    """
    started = utcnow()
    sentiment_labels = [example for example in labels if example.sentiment is not None]
    from_corrections = sum(1 for e in sentiment_labels if e.origin.startswith("correction:"))
    train, held = split_sentiment(sentiment_labels)
    if not train:
        reason = (
            "no sentiment labels beyond the seed: sentiment model unchanged"
            if not sentiment_labels
            else f"all {len(held)} sentiment labels are held out for scoring, none left to "
            "train on: sentiment model unchanged"
        )
        return SentimentOutcome(
            None, False, None, 0, len(sentiment_labels), from_corrections, None, reason
        )
    store = sentiment_store(model_dir)
    champion, champion_version = active_sentiment(model_dir)
    has_champion = champion.model is not None and champion_version is not None
    result = train_sentiment(sentiment_labels, parent=champion_version)
    decision = challenge_sentiment(
        result.scorer, champion if has_champion else None, sentiment_labels, force=force
    )
    result.meta.metrics["challenge"] = {
        "champion": champion_version if has_champion else None,
        "challenger_f1": decision.challenger_f1,
        "champion_f1": decision.champion_f1,
        "challenger_recall": decision.challenger_recall,
        "champion_recall": decision.champion_recall,
        "holdout_examples": decision.holdout_examples,
        "promoted": decision.promote,
        "reason": decision.reason,
    }
    result.meta.training["corrections"] = from_corrections
    result.meta.training["imported"] = len(sentiment_labels) - from_corrections
    store.save(hybrid_pipeline(result.model), result.meta, activate=decision.promote)
    if decision.promote and classifier is not None:
        classifier.sentiment = result.scorer
    if session is not None:
        record_run(
            session,
            "sentiment",
            decision,
            trigger=trigger,
            versions=(result.meta.version, champion_version if has_champion else None),
            labels=len(sentiment_labels),
            forced=force,
            started=started,
        )
    log.info("trained sentiment %s: %s", result.meta.version, decision.reason)
    return SentimentOutcome(
        version=result.meta.version,
        promoted=decision.promote,
        challenge=decision,
        examples=int(result.meta.training["examples"]),
        labels=len(sentiment_labels),
        corrections=from_corrections,
        champion=champion_version if has_champion else None,
        reason=decision.reason,
        blend=_blend(result.meta.training),
    )


def _blend(training: Mapping[str, Any]) -> str:
    share = float(training["params"]["words_weight"])
    searched = training.get("words_weight_search") or {}
    if not searched:
        return (
            f"words {share:g} of the blend (the default: fewer than {SEARCH_MIN_LABELS} "
            "labels to choose it by)"
        )
    scores = ", ".join(f"{name}: {value:.3f}" for name, value in searched.items())
    return (
        f"words {share:g} of the blend, chosen by {SEARCH_FOLDS}-fold cross-validation on "
        f"{training['labels']} labels (macro-F1 {scores})"
    )


# --- re-classification ---------------------------------------------------------------------


@dataclass(slots=True)
class ReclassifyProgress:
    total: int
    done: int = 0
    batches: int = 0


def reclassify(
    factory: sessionmaker[Session],
    classifier: Classifier,
    *,
    since: datetime | None = None,
    batch_size: int = 500,
    on_batch: Callable[[ReclassifyProgress], None] | None = None,
) -> ReclassifyProgress:
    """Re-score stored items with ``classifier``, one committed transaction per batch.

    Items are read from the database (their raw payload and text are kept), never pulled
    again. The next batch is classified (in the worker processes) while this one is
    written. ``app.items.service.rescore`` moves only open entries the model routed: an
    item an agent has claimed or closed, or a person re-routed, keeps its queue, and a
    sentiment a person corrected stays.
    """
    from app.db import unit_of_work
    from app.items import repository as items
    from app.items.service import facts_of_stored, rescore

    with factory() as session:
        progress = ReclassifyProgress(total=repository.count_items(session, since=since))
    if progress.total >= classifier.parallel_min and batch_size >= classifier.parallel_min:
        classifier.start()
    last_id = 0
    pending: tuple[list[items.StoredItem], PendingVerdicts] | None = None
    while True:
        ahead = None
        with factory() as session:
            batch = items.stored_batch(session, since=since, after_id=last_id, limit=batch_size)
            if batch:
                names = items.source_names(session, [item.source_id for item in batch])
                facts = [facts_of_stored(item, names.get(item.source_id)) for item in batch]
                verdicts = classifier.submit(
                    [fact.text for fact in facts], facts=facts, rules=current_rules(session)
                )
                ahead = (batch, verdicts)
                last_id = batch[-1].id
        if pending is not None:
            with unit_of_work(factory) as session:
                rescore(session, pending[0], pending[1].result(), classifier)
            progress.done += len(pending[0])
            progress.batches += 1
            if on_batch is not None:
                on_batch(progress)
        if ahead is None:
            return progress
        pending = ahead
