"""The garbage collector once the models are loaded.

A classifier holds hundreds of thousands of small objects (vocabularies, lexicons) that
live as long as the process. CPython's collector re-scans every tracked object at each
full collection, and ingest allocates fast (a page is thousands of rows), so collections
are frequent and each one walks the models again: measured here, about a sixth of the
ingest's CPU. ``settle`` moves everything alive after start-up into the permanent
generation (``gc.freeze``: never scanned, and not touched by forked workers either, so
their pages stay shared) and collects the young generation less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations between young collections (CPython's default is 700)."""


def settle() -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
