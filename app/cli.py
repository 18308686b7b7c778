"""The ``andon`` command: the service's operations for operators and scripts."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.auth.cli import keys_app
from app.config import Settings, SettingsError, get_settings

app = typer.Typer(
    name="andon",
    help="Andon: pull customer feedback, score sentiment, route it, serve the demand signal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="Manage sources.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(keys_app, name="keys")

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

BATCH = 512


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit."""
    print(f"andon: {message}", file=sys.stderr)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        fail(str(exc), 2)


def configure_logging(level: str) -> None:
    """ANDON_LOG_FORMAT (text|json) at ``level``; messages redacted when ANDON_REDACT."""
    from app.ops import logs

    config = settings()
    logs.configure(level, config.log_format, redacting=config.redact)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )


def _engine() -> Any:
    import app.models  # noqa: F401  every mapper known before a query (FKs between domains)
    from app.db import make_engine

    return make_engine(settings().database_url)


def _classifier() -> Any:
    from app.learning.service import load_classifier
    from classifiers.artifacts import ArtifactError

    config = settings()
    try:
        return load_classifier(
            config.model_dir, config.triage_threshold, workers=config.classify_workers
        )
    except (ArtifactError, OSError) as exc:
        fail(f"cannot load the model: {exc}")


@app.command()
def migrate() -> None:
    """Apply database migrations (create or upgrade the schema)."""
    from app import migrate as migrations

    engine = _engine()
    try:
        migrations.upgrade(engine)
    except SQLAlchemyError as exc:
        fail(f"migration failed: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()
    out.print(f"database at {settings().database_url.split('@')[-1]} is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: ANDON_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: ANDON_PORT")] = None,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run the embedded scheduler")
    ] = True,
    run_migrations: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="HTTP processes (default: ANDON_WORKERS, 1). Above 1 the scheduler runs "
            "once, in the parent process, never in the HTTP processes.",
        ),
    ] = None,
) -> None:
    """Start the HTTP service (API docs at /docs)."""
    import uvicorn

    from app.main import create_app

    config = settings()
    configure_logging(config.log_level)
    if run_migrations:
        migrate()
    processes = workers or config.workers
    options: dict[str, Any] = {
        "host": host or config.host,
        "port": port or config.port,
        "log_level": config.log_level.lower(),
        "log_config": None,  # uvicorn logs through Andon's handler (text or JSON, redacted)
        "access_log": False,  # the request-context middleware writes one line with the id
    }
    if processes == 1:
        application = create_app(config, start_scheduler=scheduler and config.scheduler)
        uvicorn.run(application, **options)
        return
    _serve_processes(config, processes, scheduler and config.scheduler, options)


def _serve_processes(
    config: Settings, processes: int, with_scheduler: bool, options: dict[str, Any]
) -> None:
    """``processes`` uvicorn workers (``app.main:create_app``, each its own process) and, in
    this parent process, the one scheduler.

    What must happen once happens here before the workers start: the seed model is trained
    if there is none (concurrent workers would race to write it) and the demo source and
    key are created. The workers read the same environment with ``ANDON_SCHEDULER`` and
    ``ANDON_DEMO`` turned off, so none of them starts a scheduler.
    """
    import os

    import uvicorn

    from app.auth.service import ensure_demo_admin
    from app.db import make_sessionmaker, unit_of_work
    from app.scheduler import build_scheduler
    from app.sources.service import ensure_demo

    log = logging.getLogger("app.serve")
    classifier = _classifier()  # trains and stores the seed model once, if there is none
    engine = _engine()
    factory = make_sessionmaker(engine)
    scheduler = None
    try:
        if config.demo:
            with unit_of_work(factory) as session:
                ensure_demo(session, config.demo_interval_seconds)
                demo_key = ensure_demo_admin(session)
            if demo_key is not None:  # the one time a key is logged: a newcomer signs in
                log.warning("created admin key demo-admin for the demo: %s", demo_key)
        os.environ["ANDON_SCHEDULER"] = "false"  # the workers inherit the environment
        os.environ["ANDON_DEMO"] = "false"
        if with_scheduler:
            scheduler = build_scheduler(factory, classifier, config)
            scheduler.start()
        log.info(
            "serving with %d HTTP processes%s",
            processes,
            ", the scheduler in this process" if scheduler is not None else ", no scheduler",
        )
        uvicorn.run("app.main:create_served_app", factory=True, workers=processes, **options)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        classifier.close()
        engine.dispose()


@app.command()
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this port (ANDON_WORKER_METRICS_PORT)")
    ] = None,
) -> None:
    """Run the scheduler without HTTP: scheduled syncs and periodic jobs.

    The multi-replica layout is `andon serve --no-scheduler` on every API replica plus
    one or more `andon worker`; per-source locks keep each source to one runner.
    The worker does not migrate: run `andon migrate` first.
    """
    import signal
    import threading

    from prometheus_client import start_http_server

    from app.db import make_sessionmaker
    from app.migrate import is_current
    from app.scheduler import build_scheduler

    config = settings()
    configure_logging(config.log_level)
    engine = _engine()
    try:
        if not is_current(engine):
            fail("the database schema is not at the latest migration: run `andon migrate`")
        classifier = _classifier()
        port = metrics_port or config.worker_metrics_port
        if port:
            start_http_server(port, addr=config.host)
        scheduler = build_scheduler(make_sessionmaker(engine), classifier, config)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        scheduler.start()
        logging.getLogger("app.worker").info(
            "worker started (model %s%s)",
            classifier.model_version,
            f", metrics on :{port}" if port else "",
        )
        while not stop.wait(1.0):
            pass
        logging.getLogger("app.worker").info("worker stopping: waiting for running jobs")
        scheduler.shutdown(wait=True)
    finally:
        engine.dispose()


@app.command()
def sync(
    source: Annotated[str, typer.Argument(help="Source name (see `andon sources list`)")],
    max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages")] = None,
) -> None:
    """Pull a source now, storing, classifying and routing what is new."""
    from app.db import make_sessionmaker
    from app.errors import Conflict, NotFound
    from app.ops.privacy import Privacy
    from app.sources.runner import RunSummary, run_sync

    configure_logging(settings().log_level)
    engine = _engine()
    factory = make_sessionmaker(engine)
    classifier = _classifier()
    with progress() as bar:
        task = bar.add_task(f"sync {source}", total=None)

        def on_page(summary: RunSummary) -> None:
            bar.update(
                task, completed=summary.pulled, description=f"sync {source}: {summary.new} new"
            )

        try:
            result = run_sync(
                factory,
                source,
                classifier,
                max_pages=max_pages,
                on_page=on_page,
                privacy=Privacy(redact=settings().redact, raw_payload=settings().raw_payload),
            )
        except (NotFound, Conflict) as exc:
            fail(exc.detail)
        finally:
            engine.dispose()
    out.print(
        f"{result.source}: {result.status} — {result.pages} pages, {result.pulled} pulled, "
        f"{result.new} new, {result.updated} updated, {result.quarantined} quarantined"
    )
    if result.error:
        fail(result.error)


def _read_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from classifiers.train import LabelFileError, read_jsonl

    try:
        yield from read_jsonl(path)
    except LabelFileError as exc:
        fail(str(exc))


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


@app.command()
def classify(
    input_path: Annotated[Path, typer.Option("--input", "-i", help="JSON Lines with 'text'")],
    output_path: Annotated[Path, typer.Option("--output", "-o", help="Where to write")],
) -> None:
    """Classify a JSON Lines file: each object gets an 'andon' key with sentiment and route."""
    from classifiers.text import compose

    if not input_path.is_file():
        fail(f"{input_path}: no such file")
    total = _count_lines(input_path)
    classifier = _classifier()
    tmp = output_path.with_name(output_path.name + ".partial")
    written = 0
    try:
        with tmp.open("w", encoding="utf-8") as sink, progress() as bar:
            task = bar.add_task("classify", total=total)
            batch: list[dict[str, Any]] = []
            # One batch is classified (in the worker processes) while the one before it
            # is written out.
            pending: tuple[list[dict[str, Any]], Any] | None = None

            def write(done: tuple[list[dict[str, Any]], Any]) -> None:
                objects, verdicts = done
                for obj, verdict in zip(objects, verdicts.result(), strict=True):
                    obj["andon"] = {
                        "sentiment": {
                            "label": verdict.sentiment.label,
                            "compound": round(verdict.sentiment.compound, 4),
                        },
                        "route": {
                            "queue": verdict.route.queue,
                            "confidence": verdict.route.confidence,
                            "triage": verdict.route.triage,
                            "reason": verdict.route.reason,
                        },
                        "model_version": classifier.model_version,
                    }
                    sink.write(json.dumps(obj, ensure_ascii=False) + "\n")
                bar.advance(task, len(objects))

            def flush() -> None:
                nonlocal pending
                texts = [compose(obj["text"], _title(obj)) for obj in batch]
                ahead = (list(batch), classifier.submit(texts))
                batch.clear()
                if pending is not None:
                    write(pending)
                pending = ahead

            if total >= classifier.parallel_min:
                classifier.start()
            for number, obj in _read_objects(input_path):
                if not isinstance(obj.get("text"), str):
                    fail(f"{input_path}:{number}: missing 'text' (a string)")
                batch.append(obj)
                written += 1
                if len(batch) >= BATCH:
                    flush()
            if batch:
                flush()
            if pending is not None:
                write(pending)
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)
    err.print(f"classified {written} objects into {output_path}", highlight=False)


def _title(obj: dict[str, Any]) -> str | None:
    title = obj.get("title")
    return title if isinstance(title, str) else None


@app.command()
def evaluate(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="JSON Lines with 'text' and 'queue' and/or 'sentiment' (as many as you like)",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option("--labels", "-l", help="The same, as an option (repeatable)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Score the active models against labelled files.

    ``andon evaluate a.jsonl b.jsonl`` and ``andon evaluate --labels a.jsonl b.jsonl`` (a
    shell glob after ``--labels``) score every file named.
    """
    from classifiers.evaluate import (
        format_routing,
        format_sentiment,
        routing_report,
        sentiment_report,
    )
    from classifiers.routing import QUEUES
    from classifiers.sentiment import SENTIMENT_LABELS
    from classifiers.text import compose

    paths = _label_files(labels, files)
    if not paths:
        fail("name at least one labelled file (andon evaluate FILE.jsonl ...)")
    classifier = _classifier()
    results: dict[str, Any] = {"model_version": classifier.model_version, "files": {}}
    for path in paths:
        if not path.is_file():
            fail(f"{path}: no such file")
        rows = []
        for number, obj in _read_objects(path):
            text = obj.get("text")
            if not isinstance(text, str):
                fail(f"{path}:{number}: missing 'text' (a string)")
            queue, sentiment = obj.get("queue"), obj.get("sentiment")
            if queue is not None and queue not in QUEUES:
                fail(f"{path}:{number}: queue {queue!r} is not one of {', '.join(QUEUES)}")
            if sentiment is not None and sentiment not in SENTIMENT_LABELS:
                fail(
                    f"{path}:{number}: sentiment {sentiment!r} is not one of "
                    f"{', '.join(SENTIMENT_LABELS)}"
                )
            if queue is None and sentiment is None:
                continue
            rows.append((compose(text, _title(obj)), queue, sentiment))
        if not rows:
            fail(f"{path}: no line carries a 'queue' or 'sentiment' label")
        verdicts = []
        with progress() as bar:
            task = bar.add_task(f"evaluate {path.name}", total=len(rows))
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                verdicts.extend(classifier.classify([row[0] for row in chunk]))
                bar.advance(task, len(chunk))
        report: dict[str, Any] = {"lines": len(rows)}
        routed = [(row[1], v) for row, v in zip(rows, verdicts, strict=True) if row[1] is not None]
        if routed:
            report["routing"] = routing_report(
                [truth for truth, _ in routed], [v.route.queue for _, v in routed], QUEUES
            )
            report["routing"]["triage_rate"] = round(
                sum(1 for _, v in routed if v.route.triage) / len(routed), 4
            )
        scored = [(row[2], v) for row, v in zip(rows, verdicts, strict=True) if row[2] is not None]
        if scored:
            report["sentiment"] = sentiment_report(
                [truth for truth, _ in scored],
                [v.sentiment.label for _, v in scored],
                SENTIMENT_LABELS,
            )
        results["files"][str(path)] = report
    if as_json:
        out.print_json(json.dumps(results))
        return
    out.print(f"model {classifier.model_version}", highlight=False)
    for path_name, report in results["files"].items():
        out.print(f"\n== {path_name} ({report['lines']} labelled lines)", highlight=False)
        if "routing" in report:
            out.print(format_routing(report["routing"]), highlight=False)
            out.print(f"  triage rate: {report['routing']['triage_rate']:.3f}", highlight=False)
        if "sentiment" in report:
            out.print(format_sentiment(report["sentiment"]), highlight=False)
    if len(results["files"]) > 1:
        out.print()
        out.print(_evaluation_summary(results["files"]))


def _evaluation_summary(files: dict[str, dict[str, Any]]) -> Table:
    """One line per file: routing macro-F1 and triage rate, sentiment macro-recall."""
    table = Table("file", "lines", "routing macro-F1", "triage", "sentiment macro-recall")
    for name, report in files.items():
        routing, sentiment = report.get("routing"), report.get("sentiment")
        table.add_row(
            Path(name).name,
            str(report["lines"]),
            f"{routing['macro_f1']:.3f}" if routing else "-",
            f"{routing['triage_rate']:.1%}" if routing else "-",
            f"{sentiment['macro_recall']:.3f}" if sentiment else "-",
        )
    return table


def _label_files(options: list[Path] | None, arguments: list[Path] | None) -> list[Path]:
    """The files of ``--labels`` (repeatable) and the positional ones, in that order, each
    once: ``--labels a.jsonl b.jsonl`` (a shell glob) names both."""
    return list(dict.fromkeys([*(options or []), *(arguments or [])]))


def _labels_session(engine: Any) -> Any:
    """A session when the database holds the learning tables, else None (train from files)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from app.db import make_sessionmaker

    try:
        tables = set(inspect(engine).get_table_names())
    except OperationalError:
        return None
    if not {"correction", "training_run"} <= tables:
        return None
    return make_sessionmaker(engine)()


@app.command()
def train(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Extra labelled JSON Lines (as many as you like)", show_default=False),
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option("--labels", "-l", help="The same, as an option (repeatable)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote the challengers even if macro-F1 drops")
    ] = False,
) -> None:
    """Train challengers (seed corpus + corrections + labels); promote each that holds.

    A router is trained from the rows with a queue, a sentiment model from the rows with a
    sentiment (when there are any beyond the seed). Champion and challenger are scored on
    the same fixed held-out split, which neither was fitted on; a challenger becomes active
    only if macro-F1 does not drop (or --force).
    """
    from app.learning.service import train_and_challenge
    from classifiers.artifacts import ModelStore
    from classifiers.train import LabelFileError

    config = settings()
    label_paths = _label_files(labels, files)
    for path in label_paths:
        if not path.is_file():
            fail(f"{path}: no such file")
    engine = _engine()
    session = _labels_session(engine)
    if session is None:
        err.print(
            "no learning tables in the database (andon migrate): training without corrections"
        )
    try:
        err.print("training a challenger…")
        outcome = train_and_challenge(
            ModelStore(config.model_dir),
            threshold=config.triage_threshold,
            label_paths=label_paths,
            session=session,
            force=force,
            trigger="cli",
        )
        if session is not None:
            session.commit()
    except LabelFileError as exc:
        fail(str(exc))
    finally:
        if session is not None:
            session.close()
        engine.dispose()
    state = "active" if outcome.promoted else "saved, not promoted"
    out.print(
        f"model {outcome.version} {state}; {outcome.examples} training examples "
        f"({outcome.labels} labels beyond the seed, {outcome.corrections} from corrections)\n"
        f"{outcome.challenge.reason}",
        highlight=False,
    )
    sentiment = outcome.sentiment
    if sentiment.version is None:
        out.print(f"sentiment: {sentiment.reason}", highlight=False)
    else:
        state = "active" if sentiment.promoted else "saved, not promoted"
        out.print(
            f"sentiment model {sentiment.version} {state}; {sentiment.examples} training "
            f"examples ({sentiment.labels} sentiment labels beyond the seed, "
            f"{sentiment.corrections} from corrections); {sentiment.blend}\n{sentiment.reason}",
            highlight=False,
        )


@app.command()
def reclassify(
    since: Annotated[
        datetime | None,
        typer.Option(help="Only items created at or after this time (ISO 8601, UTC)"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Items per transaction")] = 500,
) -> None:
    """Re-score stored items with the active model, in batches, without pulling again.

    Open entries the model routed move with the new verdict; claimed, closed and
    person-routed entries keep their queue. The demand signal moves with them.
    """
    from app.db import make_sessionmaker
    from app.learning.service import ReclassifyProgress
    from app.learning.service import reclassify as run_reclassify

    configure_logging(settings().log_level)
    moment = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    engine = _engine()
    classifier = _classifier()
    try:
        with progress() as bar:
            task = bar.add_task("reclassify", total=None)

            def on_batch(state: ReclassifyProgress) -> None:
                bar.update(task, total=state.total, completed=state.done)

            result = run_reclassify(
                make_sessionmaker(engine),
                classifier,
                since=moment,
                batch_size=batch,
                on_batch=on_batch,
            )
    finally:
        engine.dispose()
    out.print(
        f"reclassified {result.done} items in {result.batches} batches "
        f"with model {classifier.model_version}",
        highlight=False,
    )


models_app = typer.Typer(
    help="Model versions (router or sentiment): list, diff, activate (roll back).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


class ModelKind(StrEnum):
    routing = "routing"
    sentiment = "sentiment"


KindOption = Annotated[
    ModelKind, typer.Option("--kind", "-k", help="Which model: the router or the sentiment model")
]


def _store(kind: ModelKind = ModelKind.routing) -> Any:
    from app.learning.service import sentiment_store
    from classifiers.artifacts import ModelStore

    if kind is ModelKind.sentiment:
        return sentiment_store(settings().model_dir)
    return ModelStore(settings().model_dir)


def _score(values: dict[str, Any], key: str) -> str:
    return f"{values[key]:.3f}" if isinstance(values.get(key), int | float) else "-"


@models_app.command("list")
def models_list(kind: KindOption = ModelKind.routing) -> None:
    """Stored versions (oldest first) with held-out scores; * is active.

    Routing: training examples, macro-F1 and triage rate. Sentiment: labels beyond the seed,
    macro-F1 and macro-recall on the held-out labels (none for the seed-trained default,
    which is fitted on the whole seed)."""
    store = _store(kind)
    active = store.active_version()
    sentiment = kind is ModelKind.sentiment
    # Sentiment: labels beyond the seed instead of examples, "recall" is macro-recall.
    table = Table("", "labels" if sentiment else "examples", "macro-F1")
    table.add_column("recall" if sentiment else "triage")
    table.add_column("promoted")
    table.add_column("version", no_wrap=True, min_width=24)  # the name to diff and activate
    for meta in store.versions():
        holdout = meta.metrics.get("holdout", {})
        promoted = meta.metrics.get("challenge", {}).get("promoted")
        size = meta.training.get("labels", 0) if sentiment else meta.training.get("examples", "-")
        table.add_row(
            "*" if meta.version == active else "",
            str(size),
            _score(holdout, "macro_f1"),
            _score(holdout, "macro_recall" if sentiment else "triage_rate"),
            "-" if promoted is None else ("yes" if promoted else "no"),
            meta.version,
        )
    out.print(table)


@models_app.command("diff")
def models_diff(
    old: Annotated[str, typer.Argument(help="Version to compare from")],
    new: Annotated[str, typer.Argument(help="Version to compare to")],
    kind: KindOption = ModelKind.routing,
) -> None:
    """How held-out metrics moved from one version to another (JSON)."""
    from classifiers.artifacts import ArtifactError, diff_metrics

    store = _store(kind)
    try:
        report = diff_metrics(store.meta(old), store.meta(new))
    except ArtifactError as exc:
        fail(str(exc))
    out.print_json(json.dumps(report))


@models_app.command("activate")
def models_activate(
    version: Annotated[str, typer.Argument(help="Version to make active")],
    kind: KindOption = ModelKind.routing,
) -> None:
    """Make a stored version active: roll back or forward. Running services load it on restart."""
    from app.learning.service import activate, activate_sentiment
    from classifiers.artifacts import ArtifactError

    try:
        if kind is ModelKind.sentiment:
            activate_sentiment(None, _store(kind), version)
        else:
            activate(None, _store(kind), version, settings().triage_threshold)
    except ArtifactError as exc:
        fail(str(exc))
    what = "sentiment model" if kind is ModelKind.sentiment else "model"
    out.print(f"{what} {version} active", highlight=False)


@sources_app.command("list")
def sources_list() -> None:
    """List configured sources and their status."""
    from app.db import make_sessionmaker
    from app.sources import service

    engine = _engine()
    try:
        with make_sessionmaker(engine)() as session:
            rows = service.listing(session)
            table = Table("name", "kind", "enabled", "interval", "status")
            for source in rows:
                table.add_row(
                    source.name,
                    source.kind,
                    "yes" if source.enabled else "no",
                    f"{source.interval_seconds}s" if source.interval_seconds else "-",
                    source.status + (f" ({source.status_reason})" if source.status_reason else ""),
                )
    finally:
        engine.dispose()
    out.print(table)


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument()],
    kind: Annotated[str, typer.Option("--kind", "-k", help="Connector kind")],
    config: Annotated[str, typer.Option("--config", "-c", help="JSON object")] = "{}",
    interval: Annotated[int | None, typer.Option(help="Sync every N seconds")] = None,
) -> None:
    """Add a source. Secrets go in environment variables named by '<name>_env' keys."""
    from app.db import make_sessionmaker, unit_of_work
    from app.errors import AndonError
    from app.sources import service

    try:
        parsed = json.loads(config)
    except json.JSONDecodeError as exc:
        fail(f"--config is not valid JSON: {exc.msg}")
    if not isinstance(parsed, dict):
        fail("--config must be a JSON object")
    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            service.create(session, name=name, kind=kind, config=parsed, interval_seconds=interval)
    except AndonError as exc:
        fail(exc.detail)
    finally:
        engine.dispose()
    out.print(f"source {name} added")


@sources_app.command("check")
def sources_check(name: Annotated[str, typer.Argument()]) -> None:
    """Test a source's credentials and reachability."""
    from app.db import make_sessionmaker
    from app.errors import AndonError
    from app.sources import service
    from connectors import registry
    from connectors.errors import ConnectorError

    engine = _engine()
    try:
        with make_sessionmaker(engine)() as session:
            source = service.get(session, name)
            kind, source_config = source.kind, source.config
    except AndonError as exc:
        fail(exc.detail)
    finally:
        engine.dispose()
    try:
        registry.create(kind, source_config).check()
    except ConnectorError as exc:
        fail(f"{name}: {type(exc).__name__}: {exc}")
    out.print(f"{name}: reachable and authorised")


signal_app = typer.Typer(help="The demand signal: spikes, themes, rollups.", no_args_is_help=True)
app.add_typer(signal_app, name="signal")


@signal_app.command("spikes")
def signal_spikes() -> None:
    """Check the latest complete hour for spikes (and call the webhook for new ones)."""
    from app.db import make_sessionmaker
    from app.signal.jobs import detect_spikes

    engine = _engine()
    try:
        raised = detect_spikes(make_sessionmaker(engine), settings())
    finally:
        engine.dispose()
    out.print(f"{len(raised)} new spike(s)" + (f": {raised}" if raised else ""))


@signal_app.command("themes")
def signal_themes() -> None:
    """Re-fit every queue's themes."""
    from app.db import make_sessionmaker
    from app.signal.jobs import fit_themes

    engine = _engine()
    try:
        fitted = fit_themes(make_sessionmaker(engine))
    finally:
        engine.dispose()
    out.print(", ".join(f"{queue}: {n} themes" for queue, n in fitted.items()))


@signal_app.command("rebuild")
def signal_rebuild() -> None:
    """Recount the rollups from the items (after changing the demand weights)."""
    from app.db import make_sessionmaker, unit_of_work
    from app.signal.service import rebuild

    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            count = rebuild(session)
    finally:
        engine.dispose()
    out.print(f"rollups rebuilt from {count} routed items")


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        err.print(f"andon: {exc}", markup=False, highlight=False)
        sys.exit(2)
    except SQLAlchemyError as exc:
        err.print(
            f"andon: database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}",
            markup=False,
            highlight=False,
        )
        sys.exit(1)
