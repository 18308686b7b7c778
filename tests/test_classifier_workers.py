"""A large batch classified across worker processes gives exactly the in-process verdicts."""

from __future__ import annotations

import multiprocessing

import pytest

from app.learning.service import Classifier, Verdict

TEXTS = [
    "On hold for 2 hours and still no refund",
    "Please add a dark mode to the dashboard",
    "How much is the team plan for 40 seats?",
    "Loved your webinar yesterday, great campaign!",
    "The export keeps crashing when I open it",
] * 9


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_workers_agree_with_one_process(classifier: Classifier, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    alone = Classifier(classifier.router, classifier.sentiment, workers=1)
    split = Classifier(
        classifier.router, classifier.sentiment, workers=3, parallel_min=10, start_method=method
    )
    try:
        assert split.classify(TEXTS) == alone.classify(TEXTS)
        assert split.classify(TEXTS[:5]) == alone.classify(TEXTS[:5])  # small: in-process
    finally:
        split.close()


def test_start_loads_the_language_model_before_forking(classifier: Classifier) -> None:
    """Forked workers inherit the language identifier instead of each decompressing it
    (about a second of CPU per worker at its first batch)."""
    from classifiers import language

    language._batch_identifier.cache_clear()
    language._identifier.cache_clear()
    split = Classifier(classifier.router, classifier.sentiment, workers=2, parallel_min=10)
    try:
        split.start()
        assert language._identifier.cache_info().currsize == 1
    finally:
        split.close()


def test_verdicts_and_pulled_items_pickle_by_their_fields(classifier: Classifier) -> None:
    import copyreg
    import pickle
    from datetime import UTC, datetime

    import app.sources.runner  # noqa: F401 - registers the pulled items' reducers
    from classifiers.routing import Route
    from classifiers.sentiment import Sentiment
    from connectors.base import Author, SourceItem

    verdicts = classifier.classify(TEXTS[:5])
    item = SourceItem(
        channel="zendesk",
        kind="ticket",
        external_id="7",
        text="my parcel never arrived",
        author=Author(id="42", email="sam@example.com"),
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        raw={"id": 7, "tags": ["a"]},
    )
    for cls in (Verdict, Sentiment, Route, SourceItem, Author):
        assert cls in copyreg.dispatch_table
    assert pickle.loads(pickle.dumps(verdicts)) == verdicts
    assert pickle.loads(pickle.dumps(item)) == item
