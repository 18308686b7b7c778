"""The router's text features: TF-IDF over word n-grams and character n-grams within words.

``RouterFeatures`` normalises each text once (``classifiers.text.normalise``) and feeds the
same string to two blocks, words first (the explanation of a decision reads that block):

- **words**: tokens ``\\w[\\w']*``, uni- and bigrams, sublinear TF, IDF, L2 norm;
- **chars**: scikit-learn's ``char_wb`` n-grams (character n-grams inside each word padded
  with one space), ``min_df`` and ``max_features`` pruned, sublinear TF, IDF, L2 norm.

The vocabularies and IDF weights are fitted by scikit-learn's ``TfidfVectorizer``, so fitting
is scikit-learn's. Transforming is not: scikit-learn builds every n-gram as a Python string
and looks it up in a dict, about 600 per short text, which made features the costliest part
of routing. Here a whole batch is one array of code points; every n-gram becomes an integer
key in a few numpy operations and is looked up in the sorted keys of the vocabulary:

- a character n-gram's key packs the alphabet codes of its characters (the alphabet is the
  set of characters in the fitted vocabulary; ``b`` bits per code, ``n * b <= 63``), so two
  n-grams share a key only if they are equal: the lookup is exact, not hashed. A character
  outside the alphabet cannot be part of any known n-gram and gets code 0, which no key holds;
- a word bigram's key is ``column(first word) * size + column(second word)``: a bigram seen
  in training has both its words in the vocabulary (``min_df`` counts documents, and every
  document with the bigram holds both words).

The result equals ``TfidfVectorizer.transform`` (the tests compare the two matrices). Where
the exact keys cannot be built (an alphabet too large for ``n * b <= 63``; n-gram sizes
below 2, where ``char_wb`` counts the padding spaces, or a lower bound above 3, where it
counts a short word whole), the block falls back to the scikit-learn transform.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack, vstack
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from classifiers.text import normalise

WORD_PATTERN = r"(?u)\b\w[\w']*\b"
_SEPARATOR = "\x00"
"""Joins the texts of a batch; its position gets code 0, so no n-gram crosses texts."""


def as_is(text: str) -> str:
    """The vectorizers' preprocessor: the text arrives normalised (module level: pickled)."""
    return text


def _tfidf(matrix: csr_matrix, idf: np.ndarray) -> csr_matrix:
    """Raw counts (canonical CSR) → sublinear TF × IDF, L2-normalised rows.

    The same operations, in the same order, as scikit-learn's ``TfidfTransformer``.
    """
    if matrix.shape[0] == 0:
        return matrix
    np.log(matrix.data, out=matrix.data)
    matrix.data += 1
    matrix.data *= idf[matrix.indices]
    return normalize(matrix, norm="l2", copy=False)


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """Where each run of equal values of the sorted ``ordered`` starts."""
    if len(ordered) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))


def _search(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(found, index)``: which queries are in the sorted ``keys``, and where."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=bool), np.zeros(len(queries), dtype=np.int64)
    index = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return keys[index] == queries, index


_WORD = re.compile(WORD_PATTERN)
_ASCII_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'")
_ASCII_TO_SPACE = {code: " " for code in range(128) if chr(code) not in _ASCII_WORD}


def words(text: str) -> list[str]:
    """The tokens of ``WORD_PATTERN`` in ``text``, as ``re.findall`` gives them.

    ``\\b\\w[\\w']*\\b`` matches, in each maximal run of word characters and
    apostrophes, the stretch from its first word character to its last. For an ASCII text
    that is: every other character to a space, split, strip the apostrophes at each end,
    which costs a fraction of the regular expression's scan.
    """
    if not text.isascii():
        return _WORD.findall(text)
    tokens = text.translate(_ASCII_TO_SPACE).split()
    if "'" not in text:
        return tokens
    stripped = (token.strip("'") for token in tokens)
    return [token for token in stripped if token]


class _Batch:
    """Normalised texts as one array of code points: each text padded with one space each
    side (as ``char_wb`` pads words), the texts joined by a separator that no n-gram
    crosses; ``row`` maps a position to its text."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        segments = [f" {text} " if text else "" for text in texts]
        self.size = len(texts)
        self.points = np.frombuffer(
            _SEPARATOR.join(segments).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        )
        lengths = np.array([len(one) + 1 for one in segments], dtype=np.int64)
        self.row = np.repeat(np.arange(self.size, dtype=np.int64), lengths)[: len(self.points)]
        self.separators = np.cumsum(lengths)[:-1] - 1
        self.row_bits = max(1, (self.size - 1).bit_length())

    def pack(self, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.asarray((values << self.row_bits) | rows)

    def counts(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct packed ``(value, row)`` pairs: ``(value, row, count)``, sorted by value
        then row."""
        packed = np.sort(packed)
        first = _run_starts(packed)
        distinct = packed[first]
        counts = np.diff(np.append(first, len(packed)))
        return distinct >> self.row_bits, distinct & ((1 << self.row_bits) - 1), counts


class _WordLookup:
    """Exact vectorised counting of word uni- and bigrams against a fitted vocabulary."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.size = len(vocabulary)
        self.unigrams = {term: int(col) for term, col in vocabulary.items() if " " not in term}
        keys, columns = [], []
        for term, column in vocabulary.items():
            if " " in term:
                first, second = term.split(" ")
                keys.append(self.unigrams[first] * self.size + self.unigrams[second])
                columns.append(int(column))
        order = np.argsort(keys)
        self.keys = np.asarray(keys, dtype=np.int64)[order]
        self.columns = np.asarray(columns, dtype=np.int64)[order]

    def counts(self, batch: _Batch) -> csr_matrix:
        """The raw uni- and bigram counts, one row per text, in the vectorizer's columns."""
        tokens = [words(text) for text in batch.texts]
        flat = list(chain.from_iterable(tokens))
        rows = np.repeat(np.arange(batch.size, dtype=np.int64), [len(one) for one in tokens])
        ids = np.fromiter(map(self.unigrams.get, flat, repeat(-1)), dtype=np.int64, count=len(flat))
        known = ids >= 0
        # bigrams: neighbours in the same text, both words known
        both = known[:-1] & known[1:] & (rows[:-1] == rows[1:])
        found, at = _search(self.keys, ids[:-1][both] * self.size + ids[1:][both])
        column, row, count = batch.counts(
            np.concatenate(
                [
                    batch.pack(ids[known], rows[known]),
                    batch.pack(self.columns[at[found]], rows[:-1][both][found]),
                ]
            )
        )
        # pairs sorted by column, then row: CSR keeps each row's columns in order
        return csr_matrix((count.astype(np.float64), (row, column)), shape=(batch.size, self.size))


class _CharLookup:
    """Exact vectorised ``char_wb`` n-gram counting against a fitted vocabulary.

    Column ``j`` of the block is the ``j``-th smallest key, so pairs sorted by ``(key,
    row)`` are sorted by ``(column, row)`` and convert to CSR without a per-row sort.
    """

    def __init__(self, vocabulary: dict[str, int], ngram_range: tuple[int, int]) -> None:
        self.low, self.high = ngram_range
        alphabet = sorted({ord(char) for term in vocabulary for char in term})
        self.bits = max(1, len(alphabet).bit_length())
        self.key_bits = self.bits * self.high
        self.usable = 2 <= self.low <= 3 and self.key_bits <= 62
        self.keys = np.zeros(0, dtype=np.int64)
        self.order = np.zeros(0, dtype=np.int64)
        """``order[j]``: the vectorizer's column that is column ``j`` here."""
        self.codes = np.zeros(1, dtype=np.uint16)
        """Code point → alphabet code (1, 2, ...); 0 for a character outside the alphabet."""
        if not self.usable:
            return
        self.codes = np.zeros(alphabet[-1] + 2, dtype=np.uint16)
        self.codes[alphabet] = np.arange(1, len(alphabet) + 1)
        keys = np.zeros(len(vocabulary), dtype=np.int64)
        for term, column in vocabulary.items():
            key = 0
            for char in term:
                key = (key << self.bits) | int(self.codes[ord(char)])
            keys[column] = key
        self.order = np.argsort(keys)
        self.keys = keys[self.order]

    @property
    def batch_limit(self) -> int:
        """The most texts whose row number packs with a key into one int64."""
        return 1 << (63 - self.key_bits)

    def counts(self, batch: _Batch) -> csr_matrix:
        """The raw n-gram counts, one row per text, columns in key order."""
        points = batch.points
        codes = self.codes[np.minimum(points, len(self.codes) - 1)].astype(np.int64)
        codes[batch.separators] = 0
        unknown = np.concatenate([[0], np.cumsum(codes == 0)])
        spaces = np.concatenate([[0], np.cumsum(points == 0x20)])
        key = codes.copy()
        parts = []
        for n in range(2, self.high + 1):
            count = len(points) - n + 1
            if count <= 0:
                break
            key = (key[:count] << self.bits) | codes[n - 1 :]
            if n < self.low:
                continue
            # window [i, i + n) lies inside one padded word: no unknown character in it, no
            # space strictly inside (prefix counts: slices, no gathers)
            valid = unknown[n : n + count] == unknown[:count]
            if n > 2:
                valid &= spaces[n - 1 : n - 1 + count] == spaces[1 : 1 + count]
            parts.append(batch.pack(key[valid], batch.row[:count][valid]))
        empty = np.zeros(0, dtype=np.int64)
        keys, rows, counts = batch.counts(np.concatenate(parts) if parts else empty)
        # sorted by key: each distinct key is looked up once, in order
        distinct = _run_starts(keys)
        found, column = _search(self.keys, keys[distinct])
        runs = np.diff(np.append(distinct, len(keys)))
        found, column = np.repeat(found, runs), np.repeat(column, runs)
        return csr_matrix(
            (counts[found].astype(np.float64), (rows[found], column[found])),
            shape=(batch.size, len(self.keys)),
        )


class RouterFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Word 1–2-gram and ``char_wb`` n-gram TF-IDF over one normalised string per text.

    ``char_ngrams=None`` leaves the character block out.
    """

    def __init__(
        self,
        *,
        char_ngrams: tuple[int, int] | None = (2, 5),
        char_min_df: int = 2,
        char_max_features: int | None = 200_000,
    ) -> None:
        self.char_ngrams = char_ngrams
        self.char_min_df = char_min_df
        self.char_max_features = char_max_features

    def fit(self, texts: Sequence[str], y: Any = None) -> RouterFeatures:
        self._fit([normalise(text) for text in texts])
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None, **_: Any) -> csr_matrix:
        normalised = [normalise(text) for text in texts]
        self._fit(normalised)
        return self._transform(normalised)[0]

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        return self._transform([normalise(text) for text in texts])[0]

    def transform_with_words(self, texts: Sequence[str]) -> tuple[csr_matrix, csr_matrix]:
        """The features, and their word block alone (what an explanation reads)."""
        return self._transform([normalise(text) for text in texts])

    @property
    def n_word_features(self) -> int:
        return len(self.words_.vocabulary_)

    def word_names(self) -> np.ndarray:
        """The word block's terms, by column."""
        return np.asarray(self.words_.get_feature_names_out())

    def _fit(self, normalised: list[str]) -> None:
        self.words_ = TfidfVectorizer(
            preprocessor=as_is,
            lowercase=False,
            ngram_range=(1, 2),
            min_df=1,
            sublinear_tf=True,
            token_pattern=WORD_PATTERN,
        ).fit(normalised)
        self.word_lookup_ = _WordLookup(self.words_.vocabulary_)
        self.chars_: TfidfVectorizer | None = None
        self.char_lookup_: _CharLookup | None = None
        if self.char_ngrams is not None:
            self.chars_ = TfidfVectorizer(
                preprocessor=as_is,
                lowercase=False,
                analyzer="char_wb",
                ngram_range=self.char_ngrams,
                min_df=self.char_min_df,
                sublinear_tf=True,
                max_features=self.char_max_features,
            ).fit(normalised)
            self.char_lookup_ = _CharLookup(self.chars_.vocabulary_, self.char_ngrams)

    def _transform(self, normalised: list[str]) -> tuple[csr_matrix, csr_matrix]:
        lookup = self.char_lookup_
        # a batch too large to pack a row number next to a key is cut into slices
        step = lookup.batch_limit if lookup is not None and lookup.usable else 1 << 31
        parts = [
            self._transform_batch(normalised[at : at + step])
            for at in range(0, max(len(normalised), 1), step)  # no text: an empty matrix
        ]
        if len(parts) == 1:
            return parts[0]
        return (
            csr_matrix(vstack([part[0] for part in parts], format="csr")),
            csr_matrix(vstack([part[1] for part in parts], format="csr")),
        )

    def _transform_batch(self, normalised: list[str]) -> tuple[csr_matrix, csr_matrix]:
        batch = _Batch(normalised)
        words = _tfidf(self.word_lookup_.counts(batch), self.words_.idf_)
        lookup = self.char_lookup_
        if self.chars_ is None or lookup is None:
            return words, words
        if lookup.usable:  # columns in key order (see _CharLookup)
            chars = _tfidf(lookup.counts(batch), self.chars_.idf_[lookup.order])
        else:
            chars = self.chars_.transform(normalised)
        return csr_matrix(hstack([words, chars], format="csr")), words
