"""Themes: a queue's recent items clustered by what they talk about.

TF-IDF over words and word pairs (English stop words dropped, terms in at least two items
and at most 60 % of them), then k-means with ``k = clamp(round(√(n / 3)), 2, 12)`` on the
L2-normalised vectors (so distances are cosine-like). A theme is labelled by its
centroid's three heaviest terms; its three representative items are the ones nearest the
centroid. Re-fitted on a schedule (``andon signal themes`` or the scheduler): each fit
replaces the queue's themes, so theme ids change between fits and spikes on themes are
keyed by label.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy.orm import Session

from app.signal import repository
from app.signal.models import Theme
from classifiers.text import compose

QUEUES = ("product", "marketing", "sales", "service")
MIN_ITEMS = 6
MAX_ITEMS = 5000
WINDOW_DAYS = 90


def cluster_count(n: int) -> int:
    return max(2, min(12, round(math.sqrt(n / 3))))


def fit_queue(session: Session, queue: str, now: datetime) -> list[Theme]:
    rows = repository.queue_texts(
        session, queue=queue, since=now - timedelta(days=WINDOW_DAYS), limit=MAX_ITEMS
    )
    repository.replace_themes(session, queue)
    if len(rows) < MIN_ITEMS:
        session.flush()
        return []
    texts = [compose(text, title) for _, title, text, _ in rows]
    vectorizer = TfidfVectorizer(
        stop_words="english", ngram_range=(1, 2), min_df=2, max_df=0.6, sublinear_tf=True
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing left after pruning: too few shared words to cluster
        session.flush()
        return []
    k = min(cluster_count(len(rows)), len(rows))
    model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(matrix)
    terms = vectorizer.get_feature_names_out()
    distances = model.transform(matrix)
    themes: list[Theme] = []
    members: list[tuple[Theme, list[tuple[int, float]]]] = []
    for cluster in range(k):
        index = np.flatnonzero(model.labels_ == cluster)
        if index.size == 0:
            continue
        top = np.argsort(-model.cluster_centers_[cluster])[:8]
        words = [str(terms[i]) for i in top if model.cluster_centers_[cluster][i] > 0]
        nearest = index[np.argsort(distances[index, cluster])]
        theme = Theme(
            queue=queue,
            label=" / ".join(words[:3]) or f"{queue} {cluster + 1}",
            terms={"terms": words, "representatives": [int(rows[i][0]) for i in nearest[:3]]},
            size=int(index.size),
            fitted_at=now,
        )
        session.add(theme)
        themes.append(theme)
        members.append((theme, [(int(rows[i][0]), float(distances[i, cluster])) for i in index]))
    session.flush()
    repository.add_members(
        session,
        [
            {"theme_id": theme.id, "item_id": item_id, "distance": round(distance, 6)}
            for theme, rows_of in members
            for item_id, distance in rows_of
        ],
    )
    session.flush()
    return themes


def fit_all(session: Session, now: datetime) -> dict[str, int]:
    """Re-fit every queue's themes; the number of themes per queue."""
    return {queue: len(fit_queue(session, queue, now)) for queue in QUEUES}
