"""VADER 3.3.2's ``polarity_scores``, computed without its repeated work. Same numbers.

Stock ``SentimentIntensityAnalyzer.polarity_scores`` is slow Python: it rebuilds the
lower-cased word list of the whole text up to five times for every sentiment word
(``_negation_check`` three times, ``_special_idioms_check`` twice), lower-cases each word
again at every look-up, and builds the emoji-free text one character at a time. This module
does the same computation once per text: words and their lower-cased forms are computed
once, negation and idiom checks look at the three words they need, and the emoji pass runs
only on a text that contains one of VADER's emoji.

It is a reimplementation of the same rules in the same order with the same floating-point
operations, so the scores are equal, not close: ``tests/classifiers/test_sentiment.py``
compares it with stock ``polarity_scores`` on VADER's own ground-truth tweets, the seed
corpus, the demo items and hand-picked edge cases (``but`` with repeated valences, ALL CAPS,
"kind of", "least", "never so", idioms, emoji next to words). Any change to VADER's rules
upstream shows up there first: the module pins what it reimplements to vaderSentiment 3.3.2.

``closed`` tokens are Andon's care tokens that already carry their polarity: VADER's
negation window, "no" rule, idioms and "least" leave them alone (only ALL CAPS and booster
words still apply), exactly as ``classifiers.sentiment._CareAnalyzer`` (the subclass of
stock VADER that serves as the reference) does.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping

from vaderSentiment import vaderSentiment as _vader

__all__ = ["FastVader"]

_B = _vader.BOOSTER_DICT
_C_INCR = _vader.C_INCR
_N_SCALAR = _vader.N_SCALAR
_NEGATE = frozenset(_vader.NEGATE)
_SPECIAL = _vader.SPECIAL_CASES
_PUNCTUATION = string.punctuation
_LEXICON, _CLOSED, _BOOSTER = 1, 2, 3
# Every word that takes part in a special-case idiom or a multi-word booster ("kind of"):
# a window that holds none of them cannot match any of those sequences.
_IDIOM_WORDS = frozenset(
    word for key in (*_SPECIAL, *(k for k in _B if " " in k)) for word in key.split()
)


def _negated(word: str) -> bool:
    """``vaderSentiment.negated([word])`` for one lower-cased word."""
    return word in _NEGATE or "n't" in word


def _scalar(word: str, lowered: str, valence: float, is_cap_diff: bool) -> float:
    """``vaderSentiment.scalar_inc_dec``, given the word's lower-cased form."""
    scalar = 0.0
    if lowered in _B:
        scalar = _B[lowered]
        if valence < 0:
            scalar *= -1
        if word.isupper() and is_cap_diff:
            if valence > 0:
                scalar += _C_INCR
            else:
                scalar -= _C_INCR
    return scalar


class FastVader:
    """``polarity_scores`` of VADER 3.3.2 over ``lexicon``, returning ``(compound, pos, neu, neg)``.

    ``lexicon`` and ``emojis`` are the analyzer's dictionaries (a ``SentimentIntensityAnalyzer``
    instance's ``lexicon`` and ``emojis``); ``closed`` the care tokens (lower-cased) that the
    negation window must not flip. Build once, reuse: it holds no per-call state.
    """

    def __init__(
        self,
        lexicon: Mapping[str, float],
        emojis: Mapping[str, str],
        closed: frozenset[str] = frozenset(),
    ) -> None:
        self.lexicon = dict(lexicon)
        self.closed = closed
        # What stock VADER decides first about a word, in its order: a booster scores 0, a
        # closed token takes the care branch, another lexicon word the full rules; absent
        # words score 0. One look-up instead of three.
        self._kind: dict[str, int] = dict.fromkeys(self.lexicon, _LEXICON)
        self._kind.update(dict.fromkeys((w for w in closed if w in self.lexicon), _CLOSED))
        self._kind.update(dict.fromkeys(_B, _BOOSTER))
        # Stock VADER looks emoji up one character at a time: only one-character keys match.
        self.emojis = {key: value for key, value in emojis.items() if len(key) == 1}
        self._emoji_chars = frozenset(self.emojis)
        # VADER's emoji are all outside ASCII, so an ASCII text skips the pass.
        self._ascii_emoji = any(key.isascii() for key in self.emojis)

    def _replace_emoji(self, text: str) -> str:
        # Stock: the description replaces the emoji, preceded by a space unless the previous
        # input character was a plain space (or there is none); nothing is added after it.
        emojis = self.emojis
        out: list[str] = []
        prev_space = True
        for char in text:
            description = emojis.get(char)
            if description is None:
                out.append(char)
                prev_space = char == " "
            else:
                if not prev_space:
                    out.append(" ")
                out.append(description)
                prev_space = False
        return "".join(out)

    def scores(self, text: str) -> tuple[float, float, float, float]:
        """``(compound, pos, neu, neg)``, each rounded as ``polarity_scores`` rounds it."""
        if (self._ascii_emoji or not text.isascii()) and not self._emoji_chars.isdisjoint(text):
            text = self._replace_emoji(text)
        # Stock strips the text here; neither the word split nor the "!"/"?" counts see it.
        strip = str.strip
        words = [
            token if len(stripped := strip(token, _PUNCTUATION)) <= 2 else stripped
            for token in text.split()
        ]
        count = len(words)
        uppers = sum(map(str.isupper, words))
        is_cap_diff = 0 < count - uppers < count
        lowers = list(map(str.lower, words))

        kinds = self._kind.get
        idioms = not _IDIOM_WORDS.isdisjoint(lowers)
        sentiments: list[float] = []
        append = sentiments.append
        for i, low in enumerate(lowers):
            kind = kinds(low)
            if (
                kind is None
                or kind == _BOOSTER
                or (low == "kind" and i < count - 1 and lowers[i + 1] == "of")
            ):
                append(0)
            elif kind == _CLOSED:
                append(self._closed_valence(words, lowers, i, is_cap_diff))
            else:
                append(self._valence(words, lowers, i, is_cap_diff, idioms))

        if "but" in lowers:
            sentiments = _but_check(lowers, sentiments)
        return _score_valence(sentiments, text)

    def _closed_valence(
        self, words: list[str], lowers: list[str], i: int, is_cap_diff: bool
    ) -> float:
        # classifiers.sentiment._CareAnalyzer.sentiment_valence, closed-token branch.
        lexicon = self.lexicon
        item = words[i]
        valence = lexicon[lowers[i]]
        if valence and item.isupper() and is_cap_diff:
            valence += _C_INCR if valence > 0 else -_C_INCR
        for distance, damp in ((1, 1.0), (2, 0.95), (3, 0.9)):
            if valence and i >= distance and lowers[i - distance] not in lexicon:
                boost = _scalar(words[i - distance], lowers[i - distance], valence, is_cap_diff)
                valence += boost * damp
        return valence

    def _valence(
        self, words: list[str], lowers: list[str], i: int, is_cap_diff: bool, idioms: bool
    ) -> float:
        # SentimentIntensityAnalyzer.sentiment_valence for a lexicon word, step by step.
        lexicon = self.lexicon
        item = words[i]
        low = lowers[i]
        valence = lexicon[low]
        if low == "no" and i != len(words) - 1 and lowers[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lowers[i - 1] == "no")
            or (i > 1 and lowers[i - 2] == "no")
            or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in ("or", "nor"))
        ):
            valence = lexicon[low] * _N_SCALAR
        if item.isupper() and is_cap_diff:
            if valence > 0:
                valence += _C_INCR
            else:
                valence -= _C_INCR

        for start_i in range(3):
            back = i - (start_i + 1)
            if i > start_i and lowers[back] not in lexicon:
                s = _scalar(words[back], lowers[back], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = _negation_check(valence, lowers, start_i, i)
                if start_i == 2 and idioms:
                    valence = _special_idioms_check(valence, lowers, i)

        # _least_check
        if i > 1 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
            if lowers[i - 2] != "at" and lowers[i - 2] != "very":
                valence = valence * _N_SCALAR
        elif i > 0 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
            valence = valence * _N_SCALAR
        return valence


def _negation_check(valence: float, lowers: list[str], start_i: int, i: int) -> float:
    if start_i == 0:
        if _negated(lowers[i - 1]):
            valence = valence * _N_SCALAR
    elif start_i == 1:
        if lowers[i - 2] == "never" and (lowers[i - 1] == "so" or lowers[i - 1] == "this"):
            valence = valence * 1.25
        elif lowers[i - 2] == "without" and lowers[i - 1] == "doubt":
            pass
        elif _negated(lowers[i - 2]):
            valence = valence * _N_SCALAR
    else:
        if (lowers[i - 3] == "never" and (lowers[i - 2] == "so" or lowers[i - 2] == "this")) or (
            lowers[i - 1] == "so" or lowers[i - 1] == "this"
        ):
            valence = valence * 1.25
        elif lowers[i - 3] == "without" and (lowers[i - 2] == "doubt" or lowers[i - 1] == "doubt"):
            pass
        elif _negated(lowers[i - 3]):
            valence = valence * _N_SCALAR
    return valence


def _special_idioms_check(valence: float, lowers: list[str], i: int) -> float:
    # Stock builds these as "a b" strings; words never contain whitespace, so the strings
    # are equal exactly when the words are.
    onezero = f"{lowers[i - 1]} {lowers[i]}"
    twoonezero = f"{lowers[i - 2]} {lowers[i - 1]} {lowers[i]}"
    twoone = f"{lowers[i - 2]} {lowers[i - 1]}"
    threetwoone = f"{lowers[i - 3]} {lowers[i - 2]} {lowers[i - 1]}"
    threetwo = f"{lowers[i - 3]} {lowers[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in _SPECIAL:
            valence = _SPECIAL[seq]
            break
    if len(lowers) - 1 > i:
        zeroone = f"{lowers[i]} {lowers[i + 1]}"
        if zeroone in _SPECIAL:
            valence = _SPECIAL[zeroone]
    if len(lowers) - 1 > i + 1:
        zeroonetwo = f"{lowers[i]} {lowers[i + 1]} {lowers[i + 2]}"
        if zeroonetwo in _SPECIAL:
            valence = _SPECIAL[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in _B:
            valence = valence + _B[n_gram]
    return valence


def _but_check(lowers: list[str], sentiments: list[float]) -> list[float]:
    # Verbatim stock logic, including ``index`` finding the first equal valence.
    bi = lowers.index("but")
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 0.5)
        elif si > bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 1.5)
    return sentiments


def _score_valence(sentiments: list[float], text: str) -> tuple[float, float, float, float]:
    if not sentiments:
        return 0.0, 0.0, 0.0, 0.0
    sum_s = float(sum(sentiments))
    ep_count = min(text.count("!"), 4)
    ep_amplifier = ep_count * 0.292
    qm_count = text.count("?")
    qm_amplifier: float = 0
    if qm_count > 1:
        qm_amplifier = qm_count * 0.18 if qm_count <= 3 else 0.96
    punct_emph_amplifier = ep_amplifier + qm_amplifier
    if sum_s > 0:
        sum_s += punct_emph_amplifier
    elif sum_s < 0:
        sum_s -= punct_emph_amplifier

    compound = sum_s / math.sqrt((sum_s * sum_s) + 15)
    if compound < -1.0:
        compound = -1.0
    elif compound > 1.0:
        compound = 1.0

    pos_sum = 0.0
    neg_sum = 0.0
    neu_count = 0
    for sentiment_score in sentiments:
        if sentiment_score > 0:
            pos_sum += float(sentiment_score) + 1
        if sentiment_score < 0:
            neg_sum += float(sentiment_score) - 1
        if sentiment_score == 0:
            neu_count += 1

    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct_emph_amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct_emph_amplifier

    total = pos_sum + math.fabs(neg_sum) + neu_count
    pos = math.fabs(pos_sum / total)
    neg = math.fabs(neg_sum / total)
    neu = math.fabs(neu_count / total)
    return round(compound, 4), round(pos, 3), round(neu, 3), round(neg, 3)
