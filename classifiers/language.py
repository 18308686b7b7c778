"""Language detection, and which languages the models support.

Detection is py3langid (langid.py's naive Bayes over byte n-grams, 97 languages, its model
ships inside the wheel: nothing is downloaded at run time).

A language counts as *detected* only when the evidence is strong: at least
``MIN_LETTERS`` letters and a normalised probability of at least ``MIN_PROBABILITY``.
Short or ambiguous texts ("ok thanks", "Native Linux desktop client?") fall back to the
language the source declared, else stay undetermined (``None``) and are routed as usual.
So an item goes to triage for its language only when we are confident it is written in a
language the router was not trained on.

*Supported* means: the training data holds at least ``MIN_PER_QUEUE`` examples of that
language in every queue (the seed corpus gives en, de, es and fr). The set is computed at
training time and stored with the model, so labels in a new language make it supported
once there are enough of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MIN_PROBABILITY = 0.9
MIN_LETTERS = 20
MIN_PER_QUEUE = 20
DEFAULT_SUPPORTED: tuple[str, ...] = ("de", "en", "es", "fr")


@dataclass(frozen=True, slots=True)
class Language:
    code: str | None
    """ISO 639-1 code, or None when undetermined."""
    probability: float
    detected: bool
    """True when ``code`` comes from the text, False when it is the source's hint."""


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect(text: str, hint: str | None = None) -> Language:
    letters = sum(1 for char in text if char.isalpha())
    if letters >= MIN_LETTERS:
        code, probability = _identifier().classify(text)
        if probability >= MIN_PROBABILITY:
            return Language(code=str(code), probability=round(float(probability), 4), detected=True)
    if hint:
        return Language(code=hint.split("-")[0].lower(), probability=0.0, detected=False)
    return Language(code=None, probability=0.0, detected=False)


def detect_batch(texts: Sequence[str], hints: Sequence[str | None] | None = None) -> list[Language]:
    hints = hints if hints is not None else [None] * len(texts)
    return [detect(text, hint) for text, hint in zip(texts, hints, strict=True)]


def supported_languages(
    pairs: Iterable[tuple[str | None, str]],
    queues: Sequence[str],
    min_per_queue: int = MIN_PER_QUEUE,
) -> list[str]:
    """Languages with at least ``min_per_queue`` examples in every queue.

    ``pairs`` are ``(lang, queue)``; an example without a language counts as English (the
    corpus convention: ``lang`` is written on every non-English example).
    """
    counts = Counter((lang or "en", queue) for lang, queue in pairs)
    languages = {lang for lang, _ in counts}
    return sorted(
        lang
        for lang in languages
        if all(counts[(lang, queue)] >= min_per_queue for queue in queues)
    )
