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

Speed: ``detect_batch`` runs py3langid's own model over the whole batch at once. py3langid
walks a byte automaton one text at a time in a Python loop (most of its cost); here every
text of the batch takes its next byte in one numpy step, the feature counts of the batch
form one sparse matrix, and one product with the model's table scores them all. The
arithmetic is py3langid's (same encoding, same features, same length-scaled softmax, same
folding of aliased labels), so the result is py3langid's up to float32 rounding: the tests
check that codes and probabilities agree with ``LanguageIdentifier.classify``. Texts with
too few letters skip the model, as before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

MIN_PROBABILITY = 0.9
MIN_LETTERS = 20
MIN_PER_QUEUE = 20
DEFAULT_SUPPORTED: tuple[str, ...] = ("de", "en", "es", "fr")

LOCKSTEP_MIN = 32
"""Below this many texts still being walked, the rest finish one by one (a numpy step costs
about as much as walking 50 bytes in Python)."""

_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())


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


def letter_count(text: str) -> int:
    """How many characters of ``text`` are letters (``str.isalpha``)."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NON_LETTERS))
    return sum(map(str.isalpha, text))


class BatchIdentifier:
    """py3langid's classifier applied to many texts at once (see the module docstring)."""

    def __init__(self, identifier: Any) -> None:
        self.identifier = identifier
        self.classes: list[str] = [str(code) for code in identifier.nb_classes]
        self._nextmove = np.frombuffer(identifier.tk_nextmove, dtype=np.uint32)
        self._rowbase = np.asarray(identifier.tk_row, dtype=np.int64) << 8
        self._output = np.asarray(identifier.tk_output, dtype=np.int64)
        self._table = identifier.nb_ptc
        self._prior = np.asarray(identifier.nb_pc, dtype=np.float32)
        self._aliases: list[tuple[int, int]] = list(identifier._alias_pairs)

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """``(code, probability)`` per text, as ``LanguageIdentifier.classify`` gives them."""
        if not texts:
            return []
        encoded = [self.identifier._encode(text) for text in texts]
        rows, features = self._walk(encoded)
        # distinct (feature, row) pairs in one sort; sorted by feature, they convert to CSR
        # with each row's columns in order
        bits = max(1, (len(texts) - 1).bit_length())
        packed = np.sort((features << bits) | rows)
        first = _run_starts(packed)
        counts = np.diff(np.append(first, len(packed))).astype(np.float32)
        feature, row = packed[first] >> bits, packed[first] & ((1 << bits) - 1)
        starts = _run_starts(feature)
        used = feature[starts]
        column = np.repeat(np.arange(len(used)), np.diff(np.append(starts, len(feature))))
        matrix = csr_matrix((np.log1p(counts), (row, column)), shape=(len(texts), len(used)))
        scores = np.asarray(matrix @ self._table[used].astype(np.float32), dtype=np.float32)
        scores += self._prior
        # a text without any feature scores 0.0 everywhere: uniform, as py3langid abstains
        scores[np.diff(matrix.indptr) == 0] = 0.0
        lengths = np.array([len(data) or 1 for data in encoded], dtype=np.float64)
        scores *= (1.0 / np.sqrt(lengths)).astype(np.float32)[:, None]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        for first_column, dupe in self._aliases:
            scores[:, first_column] += scores[:, dupe]
            scores[:, dupe] = 0.0
        best = scores.argmax(axis=1)
        confidence = scores[np.arange(len(texts)), best]
        return [
            (self.classes[i], p) for i, p in zip(best.tolist(), confidence.tolist(), strict=True)
        ]

    def _walk(self, encoded: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """The automaton's features for every text: ``(row, feature)`` pairs, one per hit.

        The texts, longest first, advance together one byte per step while at least
        ``LOCKSTEP_MIN`` of them are left; each step's states are kept and turned into
        features in one go afterwards. The few longest texts finish one by one.
        """
        lengths = np.array([len(data) for data in encoded], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        ordered = lengths[order]
        # steps while enough texts are left; still[t]: texts longer than t (a prefix)
        span = int(ordered[LOCKSTEP_MIN - 1]) if len(ordered) >= LOCKSTEP_MIN else 0
        still = np.searchsorted(-ordered, -np.arange(span), side="left")
        nextmove, rowbase = self._nextmove, self._rowbase
        grid = np.zeros((span, len(encoded)), dtype=np.uint8)
        if span:
            # bytes laid out step by step: grid[t, i] is byte t of the i-th longest text
            heads = [encoded[i][:span] for i in order[: int(still[0])].tolist()]
            flat = np.frombuffer(b"".join(heads), dtype=np.uint8)
            sizes = np.array([len(head) for head in heads], dtype=np.int64)
            at = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            grid[at, np.repeat(np.arange(len(heads)), sizes)] = flat
        states = np.zeros((span + 1, len(encoded)), dtype=np.int32)
        for step in range(span):
            active = int(still[step])
            states[step + 1, :active] = nextmove[
                rowbase[states[step, :active]] + grid[step, :active]
            ]
        step_of, text_of = np.nonzero(np.arange(len(encoded))[None, :] < still[:, None])
        hits = self._output[states[1:][step_of, text_of]]
        row_parts = [text_of[hits >= 0]]
        feature_parts = [hits[hits >= 0]]
        # the longest texts: py3langid's own loop, from the state reached
        table, bases, output = (
            self.identifier.tk_nextmove,
            self.identifier._rowbase,
            self.identifier.tk_output,
        )
        for position in range(len(encoded)):
            if ordered[position] <= span:
                break
            state = int(states[span, position])
            found: list[int] = []
            for letter in encoded[int(order[position])][span:]:
                state = table[bases[state] + letter]
                if output[state] >= 0:
                    found.append(output[state])
            row_parts.append(np.full(len(found), position, dtype=np.int64))
            feature_parts.append(np.asarray(found, dtype=np.int64))
        rows = np.concatenate(row_parts)
        return order[rows], np.concatenate(feature_parts)


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Where each run of equal values of the sorted ``ordered`` starts."""
    if len(ordered) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))


@lru_cache(maxsize=1)
def _batch_identifier() -> BatchIdentifier | None:
    """The batched classifier; None when py3langid's model layout is not the one it reads
    (``tk_row``, one output per state: py3langid 0.4), and texts are classified one by one."""
    identifier = _identifier()
    if not hasattr(identifier, "tk_row") or len(identifier.tk_output) != len(identifier.tk_row):
        return None
    return BatchIdentifier(identifier)


def classify_texts(texts: Sequence[str]) -> list[tuple[str, float]]:
    """py3langid's ``(code, probability)`` for each text, batched when possible."""
    batch = _batch_identifier()
    if batch is None:
        identifier = _identifier()
        return [(str(code), float(p)) for code, p in map(identifier.classify, texts)]
    return batch.classify(texts)


def detect(text: str, hint: str | None = None) -> Language:
    return detect_batch([text], [hint])[0]


_UNDETERMINED = Language(code=None, probability=0.0, detected=False)


def detect_batch(texts: Sequence[str], hints: Sequence[str | None] | None = None) -> list[Language]:
    hints = hints if hints is not None else [None] * len(texts)
    if len(hints) != len(texts):
        raise ValueError("hints and texts differ in length")
    enough = [i for i, text in enumerate(texts) if letter_count(text) >= MIN_LETTERS]
    found: dict[int, tuple[str, float]] = {}
    if enough:
        found = dict(zip(enough, classify_texts([texts[i] for i in enough]), strict=True))
    languages = []
    for i, hint in enumerate(hints):
        code, probability = found.get(i, ("", 0.0))
        if probability >= MIN_PROBABILITY:
            languages.append(Language(code, round(probability, 4), True))
        elif hint:
            languages.append(Language(hint.split("-")[0].lower(), 0.0, False))
        else:
            languages.append(_UNDETERMINED)
    return languages


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
