"""Sentiment scoring: VADER extended for customer-care language, batch API.

Output contract: ``Sentiment(label, compound)`` with ``compound`` in -1..1 and ``label``
one of negative, neutral, positive.

Stock VADER reads customer-care language as neutral ("on hold for 2 hours", "flight
cancelled", "still no refund"). Andon keeps VADER as the base and layers three things on it:

1. a hand-written domain lexicon (``data/care_lexicon.json``): single words added to, or
   overriding, VADER's lexicon; multi-word phrases; emoji VADER misses;
2. rules for care constructions (``CARE_RULES``): negated service verbs ("never arrived"),
   waiting durations, question-form complaints, outages, double charges, fast-service praise;
3. a learned layer trained on the project's own seed corpora (customer-care messages in
   ``data/seed``, general posts and reviews in ``data/sentiment``): ``HybridSentimentModel``
   (a words model, TF-IDF word 1-2-grams + VADER's scores after the care pre-pass, blended
   with a VADER-scores-only model). ``load_sentiment`` trains it at start-up, or loads it
   cached next to the router; it is the app's default. The learning loop (``classifiers.train.
   train_sentiment``) trains challengers on seed + labels; an active one is loaded instead.
   ``SentimentScorer()`` alone stays lexicon-only, ``SentimentScorer(care=False)`` is stock VADER.

Rules and phrases are applied as a pre-pass: each match is replaced by one token
(``care_...``) that the analyzer knows, so VADER's own machinery (boosters, ALL CAPS,
"but", punctuation emphasis) still applies. Rule tokens already carry their polarity, so
VADER's negation window does not flip them ("I can't believe it still doesn't work").

Speed: the pre-pass skips what cannot match (literal prefilters per rule, folded text with
case-sensitive patterns), VADER runs as ``classifiers.fast_vader.FastVader`` (VADER's own
computation without its repeated work) and the learned layer counts n-grams itself. Each
fast path returns exactly what its straightforward reference returns
(``CareRewriter.rewrite_reference``, ``SentimentScorer.care_scores_reference``,
``HybridState.predict_proba(..., reference=True)``); the tests hold them equal.

See ``data/SENTIMENT.md`` for the method and measured figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from vaderSentiment import vaderSentiment as _vader_module
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from classifiers import text as _text
from classifiers.fast_vader import FastVader

if TYPE_CHECKING:
    from classifiers.artifacts import ModelStore

SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")

CARE_LEXICON_PATH = Path(__file__).parent / "data" / "care_lexicon.json"
SEED_DIR = Path(__file__).parent / "data" / "seed"
SENTIMENT_SEED_DIR = Path(__file__).parent / "data" / "sentiment"
STOCK_VERSION = "vader-3.3.2"
# Bump when the rule code changes; the lexicon file contributes its own digest to ``version``.
RULES_VERSION = "care-rules-2"
TOKEN_PREFIX = "care_"

# The hybrid layer's regularisation: scikit-learn's default C. A larger C scored better in seed
# cross-validation but worse on every independent set, so the default stands (SENTIMENT.md,
# "Tried and not kept").
HYBRID_C = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: SentimentLabel
    compound: float


def label_for(compound: float, threshold: float = 0.05) -> SentimentLabel:
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"


# --- the domain lexicon -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LexiconEntry:
    term: str
    valence: float
    note: str


@dataclass(frozen=True, slots=True)
class CareLexicon:
    """The documented customer-care lexicon: words, phrases and emoji with VADER valences."""

    words: tuple[LexiconEntry, ...]
    phrases: tuple[LexiconEntry, ...]
    emoji: tuple[LexiconEntry, ...]
    digest: str

    @classmethod
    def load(cls, path: Path = CARE_LEXICON_PATH) -> CareLexicon:
        raw = path.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
        return cls(
            words=_entries(doc, "words", path),
            phrases=_entries(doc, "phrases", path),
            emoji=_entries(doc, "emoji", path),
            digest=hashlib.sha256(raw).hexdigest()[:10],
        )


def _entries(doc: dict[str, Any], section: str, path: Path) -> tuple[LexiconEntry, ...]:
    entries = []
    for row in doc[section]:
        valence = float(row["valence"])
        if not -4.0 <= valence <= 4.0:
            raise ValueError(f"{path}: {section} entry {row['term']!r} valence outside -4..4")
        entries.append(LexiconEntry(term=str(row["term"]), valence=valence, note=str(row["note"])))
    return tuple(entries)


# --- care constructions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CareRule:
    """A construction VADER misses. The matched span becomes one token with ``valence``.

    ``context``, when set, must match somewhere in the original text for the rule to fire.

    ``contains`` and ``and_contains`` are a prefilter, not part of the meaning: every match
    of ``pattern`` holds (lower-cased) one of ``contains`` and, when it is given, one of
    ``and_contains``. A text without them cannot match, and the pattern is not run on it
    (``contains`` empty: always run). The tests check this on every match in every corpus
    (``test_rule_prefilters_hold_on_every_match``).
    """

    name: str
    pattern: str
    valence: float
    note: str
    context: str | None = None
    contains: tuple[str, ...] = ()
    and_contains: tuple[str, ...] = ()


_NUM = (
    r"(?:an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|forty|fifty|several|few|many|\d+(?:[.,]\d+)?\+?)"
)
_UNIT = r"(?:hours?|hrs?|days?|weeks?|wks?|months?|mins?|minutes?)"
_NEG = (
    r"(?:not|never|no\s+longer|(?:did|does|do|has|have|had|is|are|was|were|wo|ca|ai|could|would|"
    r"should)n'?t|cannot|can\s+not)"
)
# Every match of ``_NEG`` (and of "no", "without") holds one of these: "not", "no longer",
# "cannot", "can not" hold "no"; "didn't" holds "n't", "didnt" "nt".
_NEG_PARTS = ("no", "never", "without", "n't", "nt")


def _parts(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_FILLER = (
    r"(?:(?:even|yet|ever|been|be|being|actually|really|properly|fully|correctly|get|got|gotten|"
    r"getting|have|had|once|always|still|anything|any|it|they|you|we|to|able|successfully|"
    r"seem|seems|seemed|anyone|anybody|someone)\s+){0,3}"
)
_SERVICE_VERB = (
    r"(?:work(?:s|ing|ed)?|arriv(?:e|es|ed|ing)|deliver(?:s|ed|ing)?|receiv(?:e|ed|ing)|"
    r"load(?:s|ed|ing)?|fix(?:ed|ing)?|resolv(?:e|ed|ing)|respond(?:s|ed|ing)?|"
    r"answer(?:s|ed|ing)?|repl(?:y|ies|ied|ying)|refund(?:ed)?|connect(?:s|ed|ing)?|"
    r"sync(?:s|ed|ing)?|ship(?:s|ped|ping)?|process(?:ed|ing)?|"
    r"(?:call|called|calling|get|got|gotten|getting|hear|heard)\s+back|heard\s+anything|"
    r"show(?:ed|n)?\s+up|turn(?:ed)?\s+up|came|solv(?:e|ed)|sort(?:ed)?|updat(?:e|ed)|"
    r"credit(?:ed)?|restor(?:e|ed)|open(?:s|ed|ing)?|start(?:s|ed|ing)?|log(?:ged)?\s*in|"
    r"sign(?:ed)?\s*in|access|download(?:ed|ing)?|install(?:ed|ing)?|pick(?:ed)?\s+up|"
    r"help(?:ed)?(?!\s+but)|function(?:s|ing)?|available)"
)
_OWED = (
    r"(?:refunds?|repl(?:y|ies)|responses?|answers?|updates?|call\s*backs?|compensation|"
    r"confirmation|apology|apologies|word|emails?|explanation|acknowledg\w*|"
    r"follow[- ]?ups?|resolution|fix|solution|replacement|tracking|news|money|help(?!\s+but))"
)
_WAIT_CONTEXT = (
    r"\b(?:wait\w*|hold|still|queue\w*|stuck|down|delay\w*|late|nothing|nobody|no\s+one|yet|"
    r"ago|outage|cancel\w*|since|no\s+(?:reply|response|answer|update|word))\b"
)

CARE_RULES: tuple[CareRule, ...] = (
    # Negative: the customer is waiting, blocked or owed something.
    CareRule(
        "still_unresolved",
        r"\bstill\b(?=\s+(?:no|not|nothing|waiting|broken|down|stuck|unable|pending|missing|"
        r"unresolved|unanswered|charging|(?:ha(?:s|ve)|is|does|do|did|ca|wo|are)n'?t|cannot)\b)",
        -1.2,
        "'still' before a non-resolution marks a wait that has gone on",
        contains=("still",),
    ),
    CareRule(
        "nobody_helps",
        r"\b(?:no\s*-?\s*one|nobody)\s+(?:(?:has|have|had|ever|will|is|seems\s+to|even|bothered\s+to|"
        r"wants\s+to|can|could)\s+)*(?:repl(?:y|ied)|respond(?:ed)?|answer(?:ed|ing|s)?|"
        r"responding|call(?:ed|s)?(?:\s+back)?|g[eo]t\s+back|help(?:ed|s)?|contacted|fixed|"
        r"bothered|cares?|picks?\s+up|picked\s+up|knows|told|tells|explained|informed|warned)\b",
        -2.0,
        "nobody answers, helps, calls back or tells the customer",
        contains=("no",),
        and_contains=_parts(
            "repl respond answer call back help contact fix bother care pick know told tells "
            "explained informed warned"
        ),
    ),
    CareRule(
        "owed_not_given",
        rf"\b(?:no|not|never|without|{_NEG})\s+(?:\w+\s+){{0,2}}?{_OWED}\b",
        -1.8,
        "no reply / never got a refund / didn't receive an update; stops VADER negating 'refund'",
        contains=_NEG_PARTS,
        and_contains=_parts(
            "refund repl respons answer update call compensation confirmation apolog word "
            "email explanation acknowledg follow resolution fix solution tracking news "
            "money help"
        ),
    ),
    CareRule(
        "negated_service",
        rf"\b{_NEG}\s+{_FILLER}{_SERVICE_VERB}\b",
        -2.0,
        "a service verb under negation: never arrived, didn't work, hasn't been fixed",
        contains=_NEG_PARTS,
        and_contains=_parts(
            "work arriv deliver receiv load fix resolv respond answer repl refund connect "
            "sync ship process back heard show turn came solv sort updat credit restor open "
            "start log sign access install pick help function available"
        ),
    ),
    CareRule(
        "blocked_customer",
        r"\b(?:unable\s+to|won'?t\s+let\s+(?:me|us)|impossible\s+to|no\s+way\s+to)\s+"
        r"(?:\w+\s+)?(?:log\s*in|login|sign\s*in|access|connect|get\s+through|reach|contact|"
        r"check\s*-?\s*in|book|pay|check\s*out|download|update|use|open|load|order|track|"
        r"cancel|speak|talk|get)\b",
        -1.8,
        "the customer is blocked from doing something",
        contains=("unable", "let", "impossible", "way"),
    ),
    CareRule(
        "keeps_failing",
        r"\bkeeps?\s+(?:on\s+)?(?:crash\w*|freez\w*|dropping|disconnect\w*|logging\s+(?:me\s+)?out|"
        r"fail\w*|buffering|lagging|restarting|rebooting|cancel\w*|delay\w*|glitch\w*|breaking|"
        r"stopping|closing|happening|charging\s+me|saying|telling\s+me|asking\s+me)\b",
        -2.0,
        "a repeated failure: keeps crashing, keeps dropping",
        contains=("keep",),
    ),
    CareRule(
        "service_down",
        r"\b(?:site|website|app|server|servers|service|services|network|internet|wifi|wi-fi|"
        r"broadband|system|systems|platform|portal|api|email|signal|connection|line|lines|it|"
        r"everything|tv|cable|phones?|power|checkout)\s+(?:is|are|was|were|has\s+been|have\s+been|"
        r"went|goes|keeps\s+going|has\s+gone|still|seems(?:\s+to\s+be)?|appears(?:\s+to\s+be)?)\s+"
        r"(?:completely\s+|totally\s+|still\s+|all\s+|been\s+)?down\b|\bis\s+\w+\s+down\s*\?",
        -2.0,
        "an outage reported in words: the app is down, is the site down?",
        contains=("down",),
    ),
    CareRule(
        "wait_duration",
        rf"\b(?:(?:for|over|after|nearly|almost|about|already|than|wait(?:ed|ing)?|holding|"
        rf"queu(?:ed|ing)|queueing|stuck)\s+(?:over\s+|nearly\s+|"
        rf"almost\s+|about\s+|like\s+|at\s+least\s+)?{_NUM}\s*(?:more\s+)?{_UNIT}|"
        rf"{_NUM}\s*{_UNIT}\s+(?:later|now))\b",
        -1.0,
        "a stated waiting time, counted only when the text is about waiting",
        context=_WAIT_CONTEXT,
        contains=("hour", "hr", "day", "week", "wk", "month", "min"),
    ),
    CareRule(
        "late_service",
        rf"\b{_NUM}\s*{_UNIT}\s+(?:late|delayed|overdue|behind|and\s+counting)\b|"
        r"\b(?:late|delayed)\s+(?:flight|deliver|arrival|shipment|train|bus|order|package|parcel|"
        r"refund|payment|response|reply)\w*|\b(?:is|was|were|are|running|arrived|arriving|"
        r"delivered|always|still|so|very|too)\s+late\b",
        -1.8,
        "late deliveries, flights and replies ('late' alone is too ambiguous)",
        contains=("late", "delayed", "overdue", "behind", "counting"),
    ),
    CareRule(
        "lost_item",
        r"\b(?:lost|misplaced|damaged|broke|broken)\s+(?:my|our|the|his|her)\s+(?:\w+\s+)?"
        r"(?:bags?|luggage|suitcases?|packages?|parcels?|orders?|delivery|data|files?|booking|"
        r"reservation|items?|stroller|car\s+seat)\b",
        -2.2,
        "lost or damaged belongings",
        contains=("lost", "misplaced", "damaged", "broke"),
    ),
    CareRule(
        "charged_twice",
        r"\b(?:charged|billed|debited|taken)\s+(?:me\s+|us\s+)?(?:twice|double|two\s+times|2x|"
        r"three\s+times|multiple\s+times)\b|\bdouble[- ]?(?:charged|billed|charge|payment)\b",
        -2.2,
        "a billing error against the customer",
        contains=("charged", "billed", "debited", "taken", "double"),
    ),
    CareRule(
        "a_joke",
        r"\b(?:is|was|what|such|absolute|complete|total|utter)\s+(?:an?\s+)?(?:absolute\s+|"
        r"complete\s+|total\s+|utter\s+)?joke\b",
        -2.0,
        "'your service is a joke'; VADER reads 'joke' as +1.2",
        contains=("joke",),
    ),
    CareRule(
        "sarcastic_praise",
        r"\b(?:great|awesome|fantastic|wonderful|brilliant|perfect|nice|lovely|thanks)\b[,.!]*"
        r"(?=\s+(?:another|yet\s+another)\b)",
        -1.0,
        "'Great, another outage': praise followed by a repeat failure is sarcasm",
        contains=("another",),
    ),
    CareRule(
        "wish_request",
        r"\b(?:would|it'?d|could)\s+be\s+(?:really\s+|so\s+|super\s+|very\s+)?(?:great|nice|"
        r"helpful|awesome|amazing|good|cool|useful|handy|lovely|brilliant|fantastic|wonderful|ideal|"
        r"perfect)\b|\b(?:i'?d|i\s+would|we'?d|we\s+would)\s+love\s+(?:it\s+)?if\b",
        0.0,
        "'it would be great if ...' phrases a request; the praise word is hypothetical",
        contains=_parts(
            "great nice helpful awesome amazing good cool useful handy love brilliant "
            "fantastic wonderful ideal perfect"
        ),
        and_contains=("ould", "'d", "itd", "id", "wed"),
    ),
    CareRule(
        "where_is_my",
        r"\bwhere(?:'?s|\s+is|\s+are|\s+the\s+hell\s+is|\s+tf\s+is)(?=\s+(?:my|our)\b)",
        -1.5,
        "'where is my order/refund?' asks about something owed",
        contains=("where",),
    ),
    CareRule(
        "how_long_wait",
        r"\bhow\s+(?:much\s+)?longer\b|\bhow\s+long\s+(?:do|does|will|should|must|am|are|is|have|"
        r"has)\s+(?:i|we|it|this|you)\s+(?:\w+\s+){0,3}?(?:wait|waiting|be\s+on\s+hold)\b",
        -1.8,
        "'how much longer', 'how long do I have to wait'",
        contains=("how",),
    ),
    CareRule(
        "why_complaint",
        r"\bwhy\b(?!\s+not\b)(?=[^?.!\n]{0,60}\b(?:still|never|again|always|keeps?|so\s+(?:hard|"
        r"difficult|slow|long)|(?:is|does|do|did|has|have|are|was|were|ca|wo)n'?t|not|no\s+one|"
        r"nobody)\b[^.!\n]{0,60}\?)",
        -1.2,
        "question-form complaint: why is it still broken, why does it keep failing",
        contains=("why",),
    ),
    CareRule(
        "when_will",
        r"\bwhen\s+(?:will|is|are|can|do|does|would|are\s+you\s+going\s+to|is\s+it\s+going\s+to)\b"
        r"(?=[^?.!\n]{0,50}\b(?:fixed|fix|resolved|sorted|back|working|restored|refund\w*|reply|"
        r"respond|arrive|delivered|ship|hear\s+back)\b[^.!\n]{0,40}\?)",
        -1.0,
        "'when will this be fixed?' asks about a failure still open",
        contains=("when",),
    ),
    CareRule(
        "anyone_else",
        r"\b(?:is\s+|does\s+)?any(?:one|body)\s+else\b(?=[^?.!\n]{0,40}\b(?:having|getting|seeing|"
        r"experiencing|unable|can'?t|cannot|not|issues?|problems?|trouble|down|outage)\b)",
        -1.2,
        "'anyone else having issues?' reports a shared failure",
        contains=("else",),
    ),
    CareRule(
        "want_refund",
        r"\b(?:want|demand|demanding|expect)\s+(?:a\s+|my\s+)?(?:full\s+)?(?:refund|money\s+back)\b",
        -1.5,
        "demanding money back",
        contains=("refund", "money"),
    ),
    CareRule(
        "hashtag_fail",
        r"#\w+(?:fail|fails|sucks)\b",
        -2.0,
        "#fail-style hashtags (#servicefail, #appfail)",
        contains=("#",),
    ),
    # Positive: the problem went away, or the service was fast.
    CareRule(
        "fast_service",
        r"\b(?:quick|fast|speedy|rapid|prompt|swift|super\s*quick)\s+(?:response|reply|replies|fix|"
        r"turnaround|delivery|shipping|service|support|resolution|refund|help|action)\b|"
        r"\b(?:responded|replied|fixed|sorted|resolved|arrived|delivered|answered|refunded|handled|"
        r"dealt\s+with|came)\b[^.!?\n]{0,15}?\b(?:quickly|fast|promptly|immediately|in\s+minutes|"
        r"within\s+minutes|same\s+day|right\s+away|so\s+quick|super\s+quick|early|ahead\s+of\s+"
        r"schedule)\b",
        2.0,
        "praise for speed: quick response, fixed within minutes",
        contains=(
            "quick",
            "fast",
            "speedy",
            "rapid",
            "prompt",
            "swift",
            "immediately",
            "minutes",
            "same",
            "away",
            "early",
            "ahead",
        ),
    ),
    CareRule(
        "issue_resolved",
        r"\b(?:problem|issue|issues|problems|bug|it|everything)\s+(?:(?:is|was|has\s+been|got|"
        r"now|all|finally)\s+)*(?:solved|resolved|fixed|sorted)\b",
        2.0,
        "problem solved: VADER scores 'problem' negative, so the pair reads negative",
        contains=("solved", "fixed", "sorted"),
    ),
    CareRule(
        "working_again",
        r"\b(?:working|works)\s+(?:again|now|perfectly|fine|great|like\s+a\s+charm)\b",
        1.8,
        "service restored",
        contains=("work",),
    ),
    CareRule(
        "refund_received",
        r"\b(?:got|received|receiving|issued|processed|gave\s+me|give\s+me|giving\s+me)\s+"
        r"(?:my\s+|a\s+|the\s+|me\s+a\s+|a\s+full\s+|full\s+)?refund\b",
        1.5,
        "the money came back",
        contains=("refund",),
    ),
    CareRule(
        "cant_wait",
        r"\b(?:can'?t|cannot|can\s+not)\s+wait\b(?!\s+(?:any\s*(?:longer|more)|forever|all\s+day|"
        r"on\s+hold|much\s+longer|that\s+long|this\s+long|around|here))",
        1.8,
        "'can't wait' is eagerness; VADER reads it as neutral",
        contains=("wait",),
    ),
    CareRule(
        "closing_thanks",
        r"(?<=[?.!\n])\s*(?:many\s+)?(?:thanks|thank\s+you|thx|ty|cheers)(?:\s+(?:so\s+much|a\s+lot))?"
        r"[,.!]*(?:\s+[a-z][\w.-]*){0,3}\s*$",
        0.0,
        "a thank-you closing a message that asks something is etiquette, not praise",
        context=r"\?",
        contains=("thank", "thx", "ty", "cheers"),
    ),
)

# A mention names an account, not a feeling: VADER would read "@united" as the word "united".
_MENTION = re.compile(r"(?<!\w)@\w+")
_MENTION_TOKEN = "care_mention"
_CAMEL_HASHTAG = re.compile(r"#([A-Z][a-z]+(?:[A-Z][a-z]+|[A-Z]+\b)+)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _slug(term: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", term.lower().replace("'", "")).strip("_")


def _phrase_regex(term: str) -> str:
    parts = [re.escape(part).replace("'", "'?") for part in term.lower().split()]
    body = r"\s+".join(parts)
    start = r"\b" if re.match(r"\w", term) else ""
    end = r"\b" if re.search(r"\w$", term) else ""
    return f"{start}{body}{end}"


# What re.IGNORECASE matches to an ASCII letter beyond its two cases (found by trying every
# code point; ``test_fold_covers_ignorecase`` repeats the search): folded before ``lower``
# so a prefilter never misses a text the pattern would match.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_FOLD).lower()


def _folded_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` for folded text: no IGNORECASE (3-5x faster), so it must be lower case."""
    if re.search(r"[A-Z]", re.sub(r"\\.", "", pattern)):
        raise ValueError(f"care patterns are written in lower case: {pattern[:60]!r}")
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    token: str
    regex: re.Pattern[str]  # IGNORECASE, on the text: the reference
    folded: re.Pattern[str]  # the same pattern on the folded text: the fast path
    context: re.Pattern[str] | None
    folded_context: re.Pattern[str] | None
    contains: tuple[str, ...]
    and_contains: tuple[str, ...]

    def replacement(self, match: re.Match[str]) -> str:
        return _replace(match.group(0), self.token)


def _holds_any(text: str, parts: tuple[str, ...]) -> bool:
    # A plain loop: measurably faster than any() over a generator, on every text.
    for part in parts:  # noqa: SIM110
        if part in text:
            return True
    return False


def _phrase_need(term: str) -> str | None:
    """A substring every match of the phrase holds: its longest part without an apostrophe."""
    parts = [part for part in term.lower().split() if "'" not in part]
    return max(parts, key=len) if parts else None


class CareRewriter:
    """The pre-pass: turns care constructions, phrases and emoji into analyzer tokens.

    ``rewrite`` is the fast path; ``rewrite_reference`` the same pre-pass written
    straightforwardly (every step on every text). They return the same text: the fast path
    only skips a step that cannot change the text (no "@" for mentions, ASCII text for
    emoji, no rule's prefilter word for that rule, see ``CareRule``).
    """

    def __init__(self, lexicon: CareLexicon, rules: Sequence[CareRule] = CARE_RULES) -> None:
        self.token_valence: dict[str, float] = {}
        # Tokens that already carry their polarity; VADER's negation window must not flip them.
        self.closed_tokens: set[str] = set()
        self.word_valence = {e.term.lower(): e.valence for e in lexicon.words}

        phrases = sorted(lexicon.phrases, key=lambda e: -len(e.term))
        phrase_tokens: dict[str, str] = {}
        for entry in phrases:
            token = f"{TOKEN_PREFIX}{_slug(entry.term)}"
            phrase_tokens[_slug(entry.term)] = token
            self.token_valence[token] = entry.valence
            if _vader_module.negated([w.lower() for w in entry.term.split()]):
                self.closed_tokens.add(token)
        phrase_pattern = "|".join(_phrase_regex(e.term) for e in phrases)
        self._phrases = re.compile(phrase_pattern, re.IGNORECASE)
        self._folded_phrases = _folded_regex(phrase_pattern)
        self._phrase_tokens = phrase_tokens
        needs = [_phrase_need(e.term) for e in phrases]
        # None: some phrase has no usable substring, so the phrase pass always runs.
        self._phrase_needs: tuple[str, ...] | None = (
            tuple(dict.fromkeys(n for n in needs if n is not None))
            if all(n is not None for n in needs)
            else None
        )

        self._rules: list[_CompiledRule] = []
        for rule in rules:
            token = f"{TOKEN_PREFIX}{rule.name}"
            self.token_valence[token] = rule.valence
            self.closed_tokens.add(token)
            context = re.compile(rule.context, re.IGNORECASE) if rule.context else None
            self._rules.append(
                _CompiledRule(
                    token,
                    re.compile(rule.pattern, re.IGNORECASE),
                    _folded_regex(rule.pattern),
                    context,
                    _folded_regex(rule.context) if rule.context else None,
                    tuple(part.lower() for part in rule.contains),
                    tuple(part.lower() for part in rule.and_contains),
                )
            )

        self._emoji: dict[str, str] = {}
        for entry in lexicon.emoji:
            token = f"{TOKEN_PREFIX}emoji_{ord(entry.term[0]):x}"
            self._emoji[entry.term] = token
            self.token_valence[token] = entry.valence
        self._emoji_regex = (
            re.compile("|".join(re.escape(e) for e in self._emoji)) if self._emoji else None
        )
        # One character class finds the same leftmost match as the alternation when every
        # emoji is one code point, and is much faster.
        self._emoji_fast = (
            re.compile("[" + "".join(re.escape(e) for e in self._emoji) + "]")
            if self._emoji and all(len(e) == 1 for e in self._emoji)
            else self._emoji_regex
        )

    def rewrite(self, text: str) -> str:
        ascii_only = text.isascii()
        if not ascii_only:
            text = text.translate(_APOSTROPHES)
        if "@" in text:
            text = _MENTION.sub(_MENTION_TOKEN, text)
        if not ascii_only and self._emoji_fast is not None:
            text = self._emoji_fast.sub(self._emoji_token, text)
        if "#" in text:
            text = _CAMEL_HASHTAG.sub(self._split_hashtag, text)
        # Phrases and rules search the folded text (same length, same positions) with
        # case-sensitive patterns and replace the same spans of the text itself.
        folded = _fold(text)
        if len(folded) != len(text):  # cannot happen with today's Unicode tables
            return self._rules_reference(text)
        original = folded
        needs = self._phrase_needs
        if needs is None or _holds_any(folded, needs):
            text, folded = self._replace_folded(self._folded_phrases, text, folded, None)
        for rule in self._rules:
            # The prefilter, inline (no call per rule): skip unless a needed part is there.
            if rule.contains:
                for part in rule.contains:
                    if part in folded:
                        break
                else:
                    continue
                if rule.and_contains:
                    for part in rule.and_contains:
                        if part in folded:
                            break
                    else:
                        continue
            if rule.folded_context is not None and not rule.folded_context.search(original):
                continue
            text, folded = self._replace_folded(rule.folded, text, folded, rule.token)
        return text

    def _replace_folded(
        self, regex: re.Pattern[str], text: str, folded: str, token: str | None
    ) -> tuple[str, str]:
        """``regex.sub`` found on ``folded``, applied to ``text`` (the phrase's token if
        ``token`` is None); returns the new text and its folded form."""
        parts: list[str] = []
        last = 0
        for match in regex.finditer(folded):
            start, end = match.span()
            span = text[start:end]
            parts.append(text[last:start])
            # A phrase (token None) has its own token, found by its folded form.
            found = token or self._phrase_tokens[_slug(folded[start:end])]
            parts.append(_replace(span, found))
            last = end
        if not parts:
            return text, folded
        parts.append(text[last:])
        changed = "".join(parts)
        return changed, _fold(changed)

    def rewrite_reference(self, text: str) -> str:
        """The pre-pass with no shortcuts: what ``rewrite`` must equal."""
        text = _MENTION.sub(_MENTION_TOKEN, text.translate(_APOSTROPHES))
        if self._emoji_regex is not None:
            text = self._emoji_regex.sub(self._emoji_token, text)
        return self._rules_reference(_CAMEL_HASHTAG.sub(self._split_hashtag, text))

    def _rules_reference(self, text: str) -> str:
        original = text
        text = self._phrases.sub(self._phrase_token, text)
        for rule in self._rules:
            if rule.context is not None and not rule.context.search(original):
                continue
            text = rule.regex.sub(rule.replacement, text)
        return text

    def _emoji_token(self, match: re.Match[str]) -> str:
        return f" {self._emoji[match.group(0)]} "

    def _split_hashtag(self, match: re.Match[str]) -> str:
        tag = match.group(1)
        if tag.lower() in self.word_valence:
            return match.group(0)
        return " ".join(re.findall(r"[A-Z][a-z]+|[A-Z]+(?![a-z])", tag))

    def _phrase_token(self, match: re.Match[str]) -> str:
        # Folded first: IGNORECASE also matches "ſ" for "s" and the Kelvin sign for "k".
        return _replace(match.group(0), self._phrase_tokens[_slug(_fold(match.group(0)))])


def _replace(span: str, token: str) -> str:
    # Surrounding whitespace stays, so the token never fuses with its neighbours.
    lead = span[: len(span) - len(span.lstrip())]
    trail = span[len(span.rstrip()) :]
    # ALL-CAPS shouting ("NOT WORKING") keeps its VADER emphasis on the replacement token.
    letters = [c for c in span if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        token = token.upper()
    return f"{lead}{token}{trail}"


class _CareAnalyzer(SentimentIntensityAnalyzer):  # type: ignore[misc]
    """VADER whose negation window leaves closed (already polarised) care tokens alone."""

    lexicon: dict[str, float]

    def __init__(self, rewriter: CareRewriter) -> None:
        super().__init__()
        # Per-instance copies: the stock analyzer elsewhere in the process is untouched.
        lexicon: dict[str, float] = dict(self.lexicon)
        lexicon.update(rewriter.word_valence)
        lexicon.update(rewriter.token_valence)
        self.lexicon = lexicon
        self._closed = frozenset(rewriter.closed_tokens)

    def sentiment_valence(
        self, valence: float, sentitext: Any, item: str, i: int, sentiments: list[float]
    ) -> list[float]:
        lowered = item.lower()
        if lowered not in self._closed:
            return cast(
                "list[float]", super().sentiment_valence(valence, sentitext, item, i, sentiments)
            )
        words = sentitext.words_and_emoticons
        valence = self.lexicon[lowered]
        if valence and item.isupper() and sentitext.is_cap_diff:
            valence += _vader_module.C_INCR if valence > 0 else -_vader_module.C_INCR
        for distance, damp in ((1, 1.0), (2, 0.95), (3, 0.9)):
            if valence and i >= distance and words[i - distance].lower() not in self.lexicon:
                boost = _vader_module.scalar_inc_dec(
                    words[i - distance], valence, sentitext.is_cap_diff
                )
                valence += boost * damp
        sentiments.append(valence)
        return sentiments


# --- the scorer -------------------------------------------------------------------------


def _default_version() -> str:
    digest = hashlib.sha256(CARE_LEXICON_PATH.read_bytes()).hexdigest()[:10]
    return f"{STOCK_VERSION}+{RULES_VERSION}+lex-{digest}"


@dataclass(frozen=True, slots=True)
class CareScores:
    """VADER's four scores after the care pre-pass."""

    compound: float
    pos: float
    neu: float
    neg: float


class SentimentScorer:
    """Scores texts with VADER plus the customer-care layer. Build once, reuse.

    ``care=False`` gives stock VADER (the baseline the benchmarks compare against).
    ``model`` adds a learned layer: ``HybridSentimentModel`` (the app's default, see
    ``load_sentiment``) or the older ``CareSentimentModel``. Without one, labels come from
    VADER's compound after the care pre-pass.
    """

    version: str = _default_version()

    def __init__(
        self,
        *,
        care: bool = True,
        lexicon: CareLexicon | None = None,
        model: SentimentModel | None = None,
    ) -> None:
        if not care and (lexicon is not None or model is not None):
            raise ValueError("care=False is stock VADER: it takes no lexicon or model")
        self.care = care
        self.model = model
        if care:
            self.lexicon: CareLexicon | None = lexicon or CareLexicon.load()
            self._rewriter: CareRewriter | None = CareRewriter(self.lexicon)
            self._vader: SentimentIntensityAnalyzer = _CareAnalyzer(self._rewriter)
            closed = frozenset(self._rewriter.closed_tokens)
            self.version = f"{STOCK_VERSION}+{RULES_VERSION}+lex-{self.lexicon.digest}"
            if model is not None:
                self.version += f"+{model.tag}-{model.digest}"
        else:
            self.lexicon = None
            self._rewriter = None
            self._vader = SentimentIntensityAnalyzer()
            closed = frozenset()
            self.version = STOCK_VERSION
        self._fast = FastVader(self._vader.lexicon, self._vader.emojis, closed)

    def care_scores(self, text: str) -> CareScores:
        """VADER's four scores after the care pre-pass (stock VADER's with ``care=False``)."""
        if self._rewriter is not None:
            text = self._rewriter.rewrite(text)
        compound, pos, neu, neg = self._fast.scores(text)
        return CareScores(compound=compound, pos=pos, neu=neu, neg=neg)

    def care_scores_reference(self, text: str) -> CareScores:
        """``care_scores`` the straightforward way: the reference pre-pass, then VADER's own
        ``polarity_scores`` (a stock analyzer, or the ``_CareAnalyzer`` subclass of it).
        Slow; kept so that the tests and benchmarks can check the fast path against it."""
        if self._rewriter is not None:
            text = self._rewriter.rewrite_reference(text)
        raw = self._vader.polarity_scores(text)
        return CareScores(
            compound=float(raw["compound"]),
            pos=float(raw["pos"]),
            neu=float(raw["neu"]),
            neg=float(raw["neg"]),
        )

    def score(self, text: str) -> Sentiment:
        return self.score_batch([text])[0]

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        scores = [self.care_scores(text) for text in texts]
        if self.model is None:
            return [Sentiment(label=label_for(s.compound), compound=s.compound) for s in scores]
        return self.model.predict(texts, scores)


# --- the optional learned layer ---------------------------------------------------------


ROUTING_ONLY_SEED = frozenset({"formal.jsonl"})
"""Files of ``data/seed`` the router trains on and the sentiment layer does not.

``formal.jsonl`` (241 formal B2B tickets and mails, written for routing: their register
told queues apart too little) measured no better for sentiment anywhere and cost VADER's
own tweets 0.4 points of macro-recall (0.7175 → 0.7131, level with stock VADER's 0.7130);
SENTIMENT.md."""


def seed_paths() -> list[Path]:
    """The seed corpora the learned layer is trained on, in two folders (two corpora):
    ``data/seed`` (customer-care messages, also the router's corpus, except
    ``ROUTING_ONLY_SEED``) and ``data/sentiment`` (general short posts and reviews, written
    for sentiment; ``data/sentiment/GUIDE.md``)."""
    care = [path for path in sorted(SEED_DIR.glob("*.jsonl")) if path.name not in ROUTING_ONLY_SEED]
    return [*care, *sorted(SENTIMENT_SEED_DIR.glob("*.jsonl"))]


def load_seed(paths: Iterable[Path] | None = None) -> tuple[list[str], list[SentimentLabel]]:
    """Texts and sentiment labels from the project's seed corpus (records without one skipped)."""
    texts, labels, _ = load_seed_weighted(paths)
    return texts, labels


def load_seed_weighted(
    paths: Iterable[Path] | None = None,
) -> tuple[list[str], list[SentimentLabel], list[float]]:
    """``load_seed`` plus a training weight per record: each folder is one corpus, and every
    corpus weighs the same in total (the 2,732 care messages do not drown the general
    posts). Weights average 1, so the regularisation strength keeps its meaning."""
    texts: list[str] = []
    labels: list[SentimentLabel] = []
    corpora: list[Path] = []
    for path in sorted(paths if paths is not None else seed_paths()):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                label = record.get("sentiment")
                if label is None:
                    continue
                if label not in SENTIMENT_LABELS:
                    raise ValueError(f"{path}:{number}: unknown sentiment {label!r}")
                texts.append(str(record["text"]))
                labels.append(label)
                corpora.append(path.parent)
    sizes = {corpus: corpora.count(corpus) for corpus in set(corpora)}
    weights = [len(texts) / (len(sizes) * sizes[corpus]) for corpus in corpora]
    return texts, labels, weights


def care_features(scores: CareScores) -> list[float]:
    """VADER's four scores after the care pre-pass: the learned layers' lexicon features.

    Surface cues (question mark, exclamation, length) were tried and dropped: they raised the
    seed corpus's cross-validated score but lowered every independent tweet set, i.e. they
    learned how the seed corpus is written rather than how customers feel.
    """
    return [scores.compound, scores.pos, scores.neu, scores.neg]


class SentimentModel(Protocol):
    """A learned layer: labels a batch from the texts and their care scores."""

    tag: str
    digest: str

    def predict(self, texts: Sequence[str], scores: Sequence[CareScores]) -> list[Sentiment]: ...


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    index = {label: i for i, label in enumerate(classes)}
    if set(index) != set(SENTIMENT_LABELS):
        raise ValueError(f"model classes {sorted(index)} are not {list(SENTIMENT_LABELS)}")
    return index


class CareSentimentModel:
    """Multinomial logistic regression over ``care_features`` only, trained on the seed corpus.

    Kept as a benchmark row; ``HybridSentimentModel`` (which adds the words) replaced it as
    the default learned layer. Follows scikit-learn conventions: parameters in ``__init__``,
    ``fit`` returns self, learned state ends in ``_``.
    """

    tag = "lr"

    def __init__(self, c: float = 1.0, class_weight: str | None = "balanced") -> None:
        self.c = c
        self.class_weight = class_weight
        self.digest = ""

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[SentimentLabel],
        scorer: SentimentScorer,
        weights: Sequence[float] | None = None,
    ) -> CareSentimentModel:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        _check_labels(labels)
        features = [care_features(scorer.care_scores(text)) for text in texts]
        self.pipeline_ = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=self.c, class_weight=self.class_weight, max_iter=1000),
        ).fit(features, list(labels), logisticregression__sample_weight=weights)
        self.classes_: list[str] = [str(c) for c in self.pipeline_.classes_]
        self.digest = _digest(
            [list(texts), list(labels), self.c, self.class_weight, _weights(weights)]
        )
        return self

    def predict(self, texts: Sequence[str], scores: Sequence[CareScores]) -> list[Sentiment]:
        if not scores:
            return []
        probabilities = self.pipeline_.predict_proba([care_features(s) for s in scores])
        index = _class_index(self.classes_)
        results = []
        for row in probabilities:
            label = cast("SentimentLabel", self.classes_[int(row.argmax())])
            compound = _banded(float(row[index["positive"]] - row[index["negative"]]), label)
            results.append(Sentiment(label=label, compound=compound))
        return results


def _check_labels(labels: Sequence[str]) -> None:
    if len(set(labels)) < len(SENTIMENT_LABELS):
        raise ValueError("the seed corpus needs examples of every sentiment label")


def _weights(weights: Sequence[float] | None) -> list[float] | None:
    return None if weights is None else [round(float(w), 6) for w in weights]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value).encode("utf-8")).hexdigest()[:10]


def _banded(compound: float, label: SentimentLabel) -> float:
    """``compound`` moved into ``label``'s band, so ``label_for(compound) == label`` holds.

    A learned layer's label is its most probable class; its compound is the expected
    polarity P(positive) - P(negative). The two can disagree (0.45 / 0.10 / 0.45 is neutral
    with compound 0), and consumers sort and average compound next to the label, so the
    compound is clamped into the band the label stands for.
    """
    if label == "positive":
        compound = max(compound, 0.05)
    elif label == "negative":
        compound = min(compound, -0.05)
    else:
        compound = min(max(compound, -0.0499), 0.0499)
    return round(max(-1.0, min(1.0, compound)), 4)


# --- the hybrid learned layer (the default) ---------------------------------------------

HYBRID_TAG = "hybrid-3"
"""Bump when the hybrid's features or blending change: cached artifacts are then retrained."""

HYBRID_WORDS_WEIGHT = 0.25
"""The words model's share of the blend (the lexicon-only model has the rest); see
``HybridSentimentModel`` and SENTIMENT.md for the figures behind it."""

_WORD_TOKENS = r"(?u)\b\w[\w']*\b"
_TOKENS = re.compile(_WORD_TOKENS)


def fast_normalise(text: str) -> str:
    """``classifiers.text.normalise(text)``, skipping the substitutions that cannot apply.

    Same steps in the same order; a link needs "://" or "www.", an e-mail address or a
    handle an "@", an escaped newline a backslash. ``" ".join(text.split())`` equals its
    ``\\s+`` → " " and ``strip`` (both use Unicode's whitespace). The tests compare the two
    on every corpus."""
    if "\\n" in text:
        text = _text._ESCAPED_NEWLINE.sub(" ", text)
    if "://" in text or "www." in text.lower():
        text = _text._URL.sub(" xurlx ", text)
    if "@" in text:
        text = _text._EMAIL.sub(" xemailx ", text)
        text = _text._MENTION.sub(" xuserx ", text)
    text = _text._NUMBER.sub(" 0 ", text)
    return " ".join(text.split()).lower()


def score_matrix(scores: Sequence[CareScores]) -> Any:
    """``care_features`` of a batch as one float array (rows: texts)."""
    import numpy as np

    return np.array([care_features(s) for s in scores], dtype=float).reshape(-1, 4)


class HybridState:
    """The fitted hybrid (what the model store keeps): a TF-IDF vectoriser, a scaler for the
    four VADER/care scores and two multinomial, class-balanced logistic regressions.

    - ``words``: TF-IDF word 1-2-grams of the normalised text + the scaled scores. It learns
      what the lexicon cannot see, but also how the seed corpus is written.
    - ``lexicon``: the scaled scores alone. It only learns where the neutral band lies, so it
      transfers to text unlike the seed corpus.

    Probabilities are blended: ``words_weight`` × words + (1 − ``words_weight``) × lexicon.
    """

    def __init__(
        self, vectorizer: Any, scaler: Any, words: Any, lexicon: Any, words_weight: float
    ) -> None:
        if [str(c) for c in words.classes_] != [str(c) for c in lexicon.classes_]:
            raise ValueError("the two regressions disagree on the classes")
        self.vectorizer = vectorizer
        self.scaler = scaler
        self.words = words
        self.lexicon = lexicon
        self.words_weight = words_weight
        self.classes_ = [str(c) for c in words.classes_]

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        scores: Sequence[CareScores],
        weights: Sequence[float] | None,
        c: float,
        words_weight: float,
    ) -> HybridState:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        from classifiers.text import normalise

        def regression() -> LogisticRegression:
            return LogisticRegression(C=c, class_weight="balanced", max_iter=3000)

        features = score_matrix(scores)
        scaler = StandardScaler().fit(features)
        scaled = scaler.transform(features)
        vectorizer = TfidfVectorizer(
            preprocessor=normalise,
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=_WORD_TOKENS,
        ).fit(texts)
        words = regression().fit(
            _stack(vectorizer.transform(texts), scaled), list(labels), sample_weight=weights
        )
        lexicon = regression().fit(scaled, list(labels), sample_weight=weights)
        return cls(vectorizer, scaler, words, lexicon, words_weight)

    def predict_proba(
        self, texts: Sequence[str], scores: Sequence[CareScores], *, reference: bool = False
    ) -> Any:
        """Class probabilities (columns: ``classes_``), one vectorised pass over the batch.

        ``reference``: TF-IDF through the vectoriser's own ``transform`` (what ``tfidf``
        must equal) instead of the fast path."""
        scaled = self.scaler.transform(score_matrix(scores))
        tfidf = self.vectorizer.transform(texts) if reference else self.tfidf(texts)
        words = self.words.predict_proba(_stack(tfidf, scaled))
        lexicon = self.lexicon.predict_proba(scaled)
        return self.words_weight * words + (1.0 - self.words_weight) * lexicon

    def tfidf(self, texts: Sequence[str]) -> Any:
        """``vectorizer.transform(texts)``, equal entry for entry, about twice as fast.

        Only the counting is redone: a guarded ``normalise`` (``fast_normalise``), the same
        token pattern and 1-2-grams, one dictionary look-up per n-gram. The count matrix is
        then built and weighted exactly as scikit-learn does (sorted indices, its own
        TF-IDF transformer), so the floating-point operations are the same ones."""
        import numpy as np
        from scipy.sparse import csr_matrix

        vocabulary = self.vectorizer.vocabulary_
        get = vocabulary.get
        tokens_of = _TOKENS.findall
        indices: list[int] = []
        values: list[int] = []
        indptr = [0]
        for text in texts:
            tokens = tokens_of(fast_normalise(text))
            grams = map(get, chain(tokens, map(" ".join, pairwise(tokens))))
            counts = Counter([index for index in grams if index is not None])
            indices.extend(counts)
            values.extend(counts.values())
            indptr.append(len(indices))
        counts_matrix = csr_matrix(
            (
                np.asarray(values, dtype=np.intc),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(texts), len(vocabulary)),
            dtype=self.vectorizer.dtype,
        )
        counts_matrix.sort_indices()
        return self.vectorizer._tfidf.transform(counts_matrix, copy=False)


def _stack(tfidf: Any, scaled: Any) -> Any:
    from scipy.sparse import csr_matrix, hstack

    return hstack([tfidf, csr_matrix(scaled)], format="csr")


class HybridSentimentModel:
    """Words + VADER/care scores, blended with a lexicon-only model; trained on the seed corpora.

    The words learn what the lexicon cannot see: implicit complaints with no sentiment word
    ("the invoice shows full price", "it is Thursday") and requests that VADER reads as
    praise ("please help", "would be great if"). Alone, they also learn the seed corpus's
    style and lose on real tweets and reviews, so they get a quarter of the blend
    (``HYBRID_WORDS_WEIGHT``; ``HybridState``). Trained on both seed corpora, each weighing
    the same (``load_seed_weighted``).

    ``fit`` returns self; learned state ends in ``_``; ``predict`` is one vectorised pass over
    the whole batch. ``compound`` is P(positive) - P(negative), kept inside the label's band.
    """

    tag = HYBRID_TAG

    def __init__(self, c: float = HYBRID_C, words_weight: float = HYBRID_WORDS_WEIGHT) -> None:
        self.c = c
        self.words_weight = words_weight
        self.digest = ""

    def params(self) -> dict[str, float]:
        return {"c": self.c, "words_weight": self.words_weight}

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[SentimentLabel],
        scorer: SentimentScorer,
        weights: Sequence[float] | None = None,
        scores: Sequence[CareScores] | None = None,
    ) -> HybridSentimentModel:
        """``scores``: ``scorer.care_scores`` of each text, when the caller has them."""
        _check_labels(labels)
        if scores is None:
            scores = [scorer.care_scores(text) for text in texts]
        state = HybridState.train(texts, labels, scores, weights, self.c, self.words_weight)
        self.digest = hybrid_digest(texts, labels, scorer, self.params(), weights)
        return self.use(state)

    def use(self, state: HybridState, digest: str | None = None) -> HybridSentimentModel:
        """Adopt an already fitted state (one loaded from a stored artifact)."""
        self.state_ = state
        self.classes_: list[str] = list(state.classes_)
        self.index_ = _class_index(self.classes_)
        if digest is not None:
            self.digest = digest
        return self

    def predict(self, texts: Sequence[str], scores: Sequence[CareScores]) -> list[Sentiment]:
        if not scores:
            return []
        return self.results(self.state_.predict_proba(texts, scores))

    def results(self, probabilities: Any) -> list[Sentiment]:
        """Labels and banded compounds from a batch of class probabilities."""
        positive, negative = self.index_["positive"], self.index_["negative"]
        labels = [cast("SentimentLabel", self.classes_[i]) for i in probabilities.argmax(axis=1)]
        compounds = (probabilities[:, positive] - probabilities[:, negative]).tolist()
        return [
            Sentiment(label=label, compound=_banded(compound, label))
            for label, compound in zip(labels, compounds, strict=True)
        ]


def hybrid_digest(
    texts: Sequence[str],
    labels: Sequence[str],
    scorer: SentimentScorer,
    params: dict[str, float],
    weights: Sequence[float] | None = None,
) -> str:
    """What a hybrid model depends on: its training data, the care layer and its settings."""
    return _digest(
        [HYBRID_TAG, scorer.version, params, list(texts), list(labels), _weights(weights)]
    )


def train_care_model(
    paths: Iterable[Path] | None = None, *, lexicon: CareLexicon | None = None
) -> SentimentScorer:
    """Train the VADER-scores-only learned layer on the seed corpus (a benchmark row)."""
    texts, labels, weights = load_seed_weighted(paths)
    base = SentimentScorer(lexicon=lexicon)
    model = CareSentimentModel().fit(texts, labels, base, weights)
    return SentimentScorer(lexicon=base.lexicon, model=model)


def train_hybrid(
    paths: Iterable[Path] | None = None, *, lexicon: CareLexicon | None = None
) -> SentimentScorer:
    """Train the hybrid layer on the seed corpus and return a scorer that uses it."""
    texts, labels, weights = load_seed_weighted(paths)
    base = SentimentScorer(lexicon=lexicon)
    model = HybridSentimentModel().fit(texts, labels, base, weights)
    return SentimentScorer(lexicon=base.lexicon, model=model)


# --- the cached default -----------------------------------------------------------------

SENTIMENT_STORE = "sentiment"
"""Subdirectory of the model directory holding the hybrid's artifacts (next to the router)."""


SEED_ORIGIN = "seed"
"""``training["origin"]`` of the seed-trained default (artifacts without one are defaults too)."""
LABELS_ORIGIN = "labels"
"""``training["origin"]`` of a challenger trained by the learning loop on seed + labels."""


def hybrid_pipeline(model: HybridSentimentModel) -> Any:
    """The fitted hybrid as the model store keeps it: a Pipeline whose one step is the state."""
    from sklearn.pipeline import Pipeline

    return Pipeline([(SENTIMENT_STORE, model.state_)])


def hybrid_from_store(
    store: ModelStore, version: str, base: SentimentScorer | None = None
) -> SentimentScorer:
    """A scorer using the stored hybrid ``version``; ``ArtifactError`` if it is unusable.

    Refused: another scikit-learn version (``ModelStore.load``), another ``HYBRID_TAG``, or a
    model fitted on the scores of another care layer (lexicon or rules changed since): its
    learned weights would be applied to features that have moved.
    """
    from classifiers.artifacts import ArtifactError

    base = base or SentimentScorer()
    pipeline, meta = store.load(version)
    state = pipeline.steps[-1][1]
    if meta.kind != "sentiment" or not isinstance(state, HybridState):
        raise ArtifactError(f"sentiment artifact {version} holds no hybrid model")
    tag = meta.training.get("tag", HYBRID_TAG if version.startswith(f"{HYBRID_TAG}-") else None)
    if tag != HYBRID_TAG:
        raise ArtifactError(f"sentiment model {version} is {tag}, this is {HYBRID_TAG}")
    if meta.training.get("scorer") != base.version:
        raise ArtifactError(
            f"sentiment model {version} was fitted on the scores of {meta.training.get('scorer')}"
            f", this is {base.version}; retrain it (andon train)"
        )
    digest = str(meta.training.get("digest") or version.removeprefix(f"{HYBRID_TAG}-"))
    params = meta.training.get("params") or {}
    model = HybridSentimentModel(
        c=float(params.get("c", HYBRID_C)),
        words_weight=float(params.get("words_weight", HYBRID_WORDS_WEIGHT)),
    )
    return SentimentScorer(lexicon=base.lexicon, model=model.use(state, digest))


def load_sentiment(model_dir: Path, paths: Iterable[Path] | None = None) -> SentimentScorer:
    """The scorer in use: the active sentiment version, else the seed-trained default."""
    return active_sentiment(model_dir, paths)[0]


def active_sentiment(
    model_dir: Path, paths: Iterable[Path] | None = None
) -> tuple[SentimentScorer, str | None]:
    """The scorer in use and its version in ``model_dir/sentiment`` (None: no learned layer).

    A version the learning loop trained (``andon train`` promoted it, or an operator activated
    it) is used while it is active and usable. Otherwise the default is used: the hybrid
    trained on the seed corpus, whose version is the digest of what it was trained on (seed
    corpus, lexicon, rules, settings), so an edited corpus or lexicon finds no artifact and
    trains a new one. An artifact written by another scikit-learn version is refused: the
    default is retrained; a refused learned version falls back to the default (its labels
    come back at the next ``andon train``). The version in use is the active one. With no
    seed corpus the care scorer (no learned layer) is returned.
    """
    from classifiers.artifacts import ArtifactError, ModelMeta, ModelStore

    base = SentimentScorer()
    store = ModelStore(model_dir / SENTIMENT_STORE)
    active = store.active_version()
    if active is not None:
        try:
            origin = store.meta(active).training.get("origin", SEED_ORIGIN)
        except ArtifactError:
            origin = None
        if origin == LABELS_ORIGIN:
            try:
                return hybrid_from_store(store, active, base), active
            except ArtifactError as exc:
                log.warning("active sentiment model unusable (%s): using the seed default", exc)

    texts, labels, weights = load_seed_weighted(paths)
    if not texts:
        return base, None
    model = HybridSentimentModel()
    digest = hybrid_digest(texts, labels, base, model.params(), weights)
    version = f"{HYBRID_TAG}-{digest}"
    try:
        scorer = hybrid_from_store(store, version, base)
    except ArtifactError as exc:
        log.info("training the sentiment model %s (%s)", version, exc)
    else:
        if active != version:
            try:
                store.activate(version)  # the version in use is the active one
            except (ArtifactError, OSError) as exc:
                log.warning("sentiment model %s not made active: %s", version, exc)
        return scorer, version

    model.fit(texts, labels, base, weights)
    meta = ModelMeta(
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        kind="sentiment",
        labels=list(SENTIMENT_LABELS),
        training={
            "examples": len(texts),
            "per_label": {label: labels.count(label) for label in SENTIMENT_LABELS},
            "scorer": base.version,
            "params": model.params(),
            "tag": HYBRID_TAG,
            "digest": digest,
            "origin": SEED_ORIGIN,
            "labels": 0,
        },
    )
    stale = store.directory / version
    if stale.exists():  # written by another scikit-learn, or unreadable
        shutil.rmtree(stale)
    try:
        store.save(hybrid_pipeline(model), meta, activate=True)
    except (ArtifactError, OSError) as exc:  # another process saved it first: ours is equal
        log.warning("sentiment model %s not cached: %s", version, exc)
    return SentimentScorer(lexicon=base.lexicon, model=model), version
