"""Loading the models settles the heap: the collector stops re-scanning them."""

from __future__ import annotations

import gc
from pathlib import Path

from app.learning.service import load_classifier
from app.ops import heap


def test_loading_the_classifier_freezes_what_it_loaded(model_dir: Path) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    classifier = load_classifier(model_dir, 0.45)
    assert gc.get_freeze_count() > 100_000, "the models' objects are in the permanent generation"
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert classifier.classify(["the app keeps crashing"])[0].route.queue
