"""Tests for the customer-care sentiment scorer (classifiers.sentiment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import recall_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from classifiers.artifacts import META_FILE
from classifiers.sentiment import (
    CARE_LEXICON_PATH,
    CARE_RULES,
    HYBRID_TAG,
    ROUTING_ONLY_SEED,
    SENTIMENT_LABELS,
    SENTIMENT_STORE,
    CareLexicon,
    HybridSentimentModel,
    SentimentScorer,
    label_for,
    load_seed,
    load_sentiment,
    seed_paths,
    train_care_model,
    train_hybrid,
)
from classifiers.text import compose

ROOT = Path(__file__).resolve().parents[2]
# ../shared/data next to the checkout (CI, /work/main) or next to the worktrees' folder.
SHARED_DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
DEMO = ROOT / "connectors" / "data" / "demo.jsonl"

# Hand-written customer-care messages: stock VADER gets each one wrong, Andon gets it right.
CARE_EXAMPLES: list[tuple[str, str]] = [
    ("on hold for 2 hours with your billing team", "negative"),
    ("@AcmeAir my bag never showed up in Denver", "negative"),
    ("the package never arrived", "negative"),
    ("App keeps crashing every time I open the camera", "negative"),
    ("internet is down again", "negative"),
    ("I can't believe it still doesn't work", "negative"),
    ("Been waiting 45 minutes to speak to someone", "negative"),
    ("Where is my refund? Ordered 3 weeks ago", "negative"),
    ("the app won't let me log in since the update", "negative"),
    ("Great, another outage. Thanks a lot.", "negative"),
    ("Please help, I was charged twice for one order", "negative"),
    ("Your customer service is a joke", "negative"),
    ("nobody answering the phone 😡", "negative"),
    ("#CustomerServiceFail", "negative"),
    ("outage in the north side again", "negative"),
    ("sorted it quickly", "positive"),
    ("can't wait for the new release", "positive"),
    ("Rachel went above and beyond", "positive"),
    ("everything is up and running", "positive"),
    ("How much is the Team plan for 14 people? Thanks, Maria", "neutral"),
    ("Please add a dark mode.", "neutral"),
    ("I'd like to upgrade to the enterprise plan", "neutral"),
    ("It would be great if exports included tags", "neutral"),
]


@pytest.fixture(scope="module")
def care() -> SentimentScorer:
    return SentimentScorer()


@pytest.fixture(scope="module")
def stock() -> SentimentScorer:
    return SentimentScorer(care=False)


@pytest.mark.parametrize(("text", "expected"), CARE_EXAMPLES)
def test_care_scorer_fixes_what_stock_vader_misses(
    care: SentimentScorer, stock: SentimentScorer, text: str, expected: str
) -> None:
    assert stock.score(text).label != expected
    assert care.score(text).label == expected


def test_care_scorer_keeps_vaders_reading_of_plain_sentiment(care: SentimentScorer) -> None:
    assert care.score("I love this app, brilliant support!").label == "positive"
    assert care.score("This is the worst airline ever.").label == "negative"
    assert care.score("never had an outage with them").label == "positive"
    assert care.score("no delays at all, smooth flight").label == "positive"


def test_rule_tokens_are_not_flipped_by_an_earlier_negation(care: SentimentScorer) -> None:
    # "can't" sits inside VADER's three-word negation window of the rule token.
    assert care.score("can't say it didn't work").label == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "NOT WORKING AGAIN!!! 😡😡😡 worst worst worst",
        "love love love it 🔥🔥 best ever!!! thanks so much",
        "😀" * 50,
        "Subject: refund\nHi,\nstill no refund after 3 weeks.\nKind regards, Jo",
    ],
)
def test_contract_compound_range_and_labels(care: SentimentScorer, text: str) -> None:
    result = care.score(text)
    assert -1.0 <= result.compound <= 1.0
    assert result.label in SENTIMENT_LABELS
    assert result.label == label_for(result.compound)


def test_batch_equals_single(care: SentimentScorer) -> None:
    texts = [text for text, _ in CARE_EXAMPLES]
    assert care.score_batch(texts) == [care.score(text) for text in texts]
    assert care.score_batch([]) == []


def test_stock_mode_is_plain_vader(stock: SentimentScorer) -> None:
    text = "Please help, the delivery was delayed"
    expected = SentimentIntensityAnalyzer().polarity_scores(text)["compound"]
    assert stock.score(text).compound == pytest.approx(expected)
    assert stock.version == "vader-3.3.2"


def test_care_lexicon_does_not_leak_into_other_analyzers(care: SentimentScorer) -> None:
    assert care.score("please").compound == 0.0
    assert SentimentIntensityAnalyzer().lexicon["please"] == pytest.approx(1.3)


def test_version_follows_the_lexicon(tmp_path: Path) -> None:
    doc = json.loads(CARE_LEXICON_PATH.read_text(encoding="utf-8"))
    doc["words"].append({"term": "meltdown", "valence": -2.0, "note": "test entry"})
    changed = tmp_path / "lexicon.json"
    changed.write_text(json.dumps(doc), encoding="utf-8")

    default = SentimentScorer()
    edited = SentimentScorer(lexicon=CareLexicon.load(changed))
    assert default.version == SentimentScorer.version
    assert edited.version != default.version
    assert edited.score("total meltdown").label == "negative"
    assert default.score("total meltdown").label == "neutral"


def test_lexicon_rejects_valence_outside_vader_scale(tmp_path: Path) -> None:
    doc = {"words": [{"term": "x", "valence": 9, "note": "bad"}], "phrases": [], "emoji": []}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"outside -4\.\.4"):
        CareLexicon.load(path)


def test_every_lexicon_entry_is_documented() -> None:
    lexicon = CareLexicon.load()
    for entry in (*lexicon.words, *lexicon.phrases, *lexicon.emoji):
        assert entry.note.strip(), entry.term


def test_stock_mode_takes_no_care_parts() -> None:
    with pytest.raises(ValueError, match="stock VADER"):
        SentimentScorer(care=False, lexicon=CareLexicon.load())


# --- the learned layer ------------------------------------------------------------------


def _write_seed(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for text, label in rows:
            out.write(json.dumps({"text": text, "queue": "service", "sentiment": label}) + "\n")
    return path


TINY_SEED = [
    ("My order never arrived and nobody replies", "negative"),
    ("on hold for an hour, still no refund", "negative"),
    ("the app keeps crashing, useless", "negative"),
    ("flight cancelled again, worst airline", "negative"),
    ("How do I change my billing address?", "neutral"),
    ("What are your opening hours on Sunday?", "neutral"),
    ("Can I move my booking to Friday?", "neutral"),
    ("Is there an export to CSV?", "neutral"),
    ("Thanks, fixed within minutes, great support!", "positive"),
    ("love the new update, brilliant work", "positive"),
    ("quick response and refund sorted, thank you", "positive"),
    ("amazing crew, best flight I've had", "positive"),
]


def test_learned_layer_trains_from_seed_files(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", TINY_SEED)
    scorer = train_care_model([seed])
    assert scorer.model is not None
    assert "+lr-" in scorer.version
    texts = [text for text, _ in TINY_SEED]
    results = scorer.score_batch(texts)
    assert results == [scorer.score(text) for text in texts]
    assert all(-1.0 <= r.compound <= 1.0 and r.label in SENTIMENT_LABELS for r in results)
    accuracy = sum(r.label == label for r, (_, label) in zip(results, TINY_SEED, strict=True))
    assert accuracy >= 10


def test_the_sentiment_layer_trains_on_every_seed_file_but_the_routing_only_ones() -> None:
    from classifiers.train import seed_paths as routing_seed_paths

    routing = {path.name for path in routing_seed_paths()}
    sentiment = {path.name for path in seed_paths() if path.parent.name == "seed"}
    assert routing >= ROUTING_ONLY_SEED, "a routing-only file that is not in the seed"
    assert sentiment == routing - ROUTING_ONLY_SEED
    assert "short.jsonl" in sentiment
    texts, _ = load_seed()
    lines = (ROOT / "classifiers/data/seed/formal.jsonl").read_text(encoding="utf-8").splitlines()
    formal = {json.loads(line)["text"] for line in lines}
    assert formal
    assert not formal & set(texts)


def test_learned_layer_needs_every_label(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", [r for r in TINY_SEED if r[1] != "neutral"])
    with pytest.raises(ValueError, match="every sentiment label"):
        train_care_model([seed])


def test_load_seed_rejects_unknown_labels(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", [("meh", "mixed")])
    with pytest.raises(ValueError, match="unknown sentiment"):
        load_seed([seed])


# --- the hybrid layer (the app's default) ----------------------------------------------

# Hand-written for these tests (not in the seed corpus, not from any public data set):
# implicit complaints with no sentiment word, and requests VADER reads as praise. Stock VADER
# gets each wrong; the hybrid trained on the seed corpus gets each right.
HYBRID_EXAMPLES: list[tuple[str, str]] = [
    (
        "Every time I export the report to PDF the page numbers reset to 1 and I have to redo "
        "them by hand",
        "negative",
    ),
    (
        "I was told someone would call me back on Monday. It is Thursday and still nothing.",
        "negative",
    ),
    ("The bill went up by 15 pounds this month and nobody told us why", "negative"),
    ("Can you please help me reset my router password?", "neutral"),
    ("Please send me the invoice for March, our finance team needs it", "neutral"),
    ("Would be great to know if you ship to Norway", "neutral"),
    ("Hi, could you help me understand the difference between the Pro and Team plans?", "neutral"),
    ("Please let me know what documents I need to open a business account", "neutral"),
    (
        "Is there a way to share a playlist with someone who doesn't have an account? Thanks!",
        "neutral",
    ),
]


@pytest.fixture(scope="module")
def hybrid() -> SentimentScorer:
    return train_hybrid()


def test_hybrid_fixes_what_stock_vader_misses(
    hybrid: SentimentScorer, stock: SentimentScorer
) -> None:
    texts = [text for text, _ in HYBRID_EXAMPLES]
    expected = [label for _, label in HYBRID_EXAMPLES]
    assert all(s.label != e for s, e in zip(stock.score_batch(texts), expected, strict=True))
    right = [s.label == e for s, e in zip(hybrid.score_batch(texts), expected, strict=True)]
    # Measured: 8 of 9. The words have a quarter of the blend since hybrid-3, and the PDF
    # complaint (VADER +0.49 for "numbers", "hand") is the one they no longer outvote.
    assert sum(right) >= len(HYBRID_EXAMPLES) - 1, right


def test_hybrid_keeps_plain_sentiment(hybrid: SentimentScorer) -> None:
    assert hybrid.score("I love this app, brilliant support!").label == "positive"
    assert hybrid.score("This is the worst airline ever.").label == "negative"
    assert hybrid.score("How do I export my data to CSV?").label == "neutral"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "NOT WORKING AGAIN!!! 😡😡😡 worst worst worst",
        "love love love it 🔥🔥 best ever!!! thanks so much",
        "😀" * 50,
        "Subject: refund\nHi,\nstill no refund after 3 weeks.\nKind regards, Jo",
        "Ünïcödé ñame, 日本語のテキスト",
    ],
)
def test_hybrid_contract(hybrid: SentimentScorer, text: str) -> None:
    result = hybrid.score(text)
    assert -1.0 <= result.compound <= 1.0
    assert result.label in SENTIMENT_LABELS
    # The compound is kept in the label's band: consumers sort and average it.
    assert result.label == label_for(result.compound)


def test_hybrid_batch_equals_single(hybrid: SentimentScorer) -> None:
    texts = [text for text, _ in [*HYBRID_EXAMPLES, *CARE_EXAMPLES]]
    assert hybrid.score_batch(texts) == [hybrid.score(text) for text in texts]
    assert hybrid.score_batch([]) == []


def test_hybrid_version_follows_its_training_data(tmp_path: Path) -> None:
    one = train_hybrid([_write_seed(tmp_path / "one.jsonl", TINY_SEED)])
    two = train_hybrid([_write_seed(tmp_path / "two.jsonl", [*TINY_SEED, ("meh.", "neutral")])])
    again = train_hybrid([tmp_path / "one.jsonl"])
    assert f"+{HYBRID_TAG}-" in one.version
    assert one.version.startswith(SentimentScorer().version)
    assert one.version == again.version
    assert one.version != two.version


def test_hybrid_needs_every_label(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", [r for r in TINY_SEED if r[1] != "positive"])
    with pytest.raises(ValueError, match="every sentiment label"):
        train_hybrid([seed])


def test_load_sentiment_trains_once_then_loads_the_cached_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", TINY_SEED)
    models = tmp_path / "models"
    first = load_sentiment(models, [seed])
    assert first.model is not None
    store = models / SENTIMENT_STORE
    [artifact] = [path for path in store.iterdir() if (path / META_FILE).is_file()]
    meta = json.loads((artifact / META_FILE).read_text())
    assert meta["kind"] == "sentiment"
    assert meta["training"]["examples"] == len(TINY_SEED)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(HybridSentimentModel, "fit", no_training)
    second = load_sentiment(models, [seed])
    texts = [text for text, _ in TINY_SEED]
    assert second.version == first.version
    assert second.score_batch(texts) == first.score_batch(texts)


def test_load_sentiment_retrains_an_artifact_from_another_sklearn(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", TINY_SEED)
    models = tmp_path / "models"
    first = load_sentiment(models, [seed])
    [meta_path] = list((models / SENTIMENT_STORE).glob(f"*/{META_FILE}"))
    meta = json.loads(meta_path.read_text())
    meta["sklearn_version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))

    again = load_sentiment(models, [seed])
    assert again.version == first.version
    assert json.loads(meta_path.read_text())["sklearn_version"] != "0.0.1"


def test_load_sentiment_retrains_when_the_seed_changes(tmp_path: Path) -> None:
    seed = _write_seed(tmp_path / "seed.jsonl", TINY_SEED)
    models = tmp_path / "models"
    before = load_sentiment(models, [seed])
    _write_seed(seed, [*TINY_SEED, ("The parcel came on Tuesday.", "neutral")])
    after = load_sentiment(models, [seed])
    assert after.version != before.version
    assert len(list((models / SENTIMENT_STORE).glob(f"*/{META_FILE}"))) == 2


def test_load_sentiment_without_seed_is_the_care_scorer(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    scorer = load_sentiment(tmp_path / "models", [empty])
    assert scorer.model is None
    assert scorer.version == SentimentScorer().version


def _demo() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with DEMO.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            texts.append(compose(record["text"], record.get("title")))
            labels.append(record["labels"]["sentiment"])
    return texts, labels


def test_hybrid_on_the_demo_items_own_labels(
    hybrid: SentimentScorer, care: SentimentScorer, stock: SentimentScorer
) -> None:
    # The demo items were written apart from the seed corpus and are never trained on.
    texts, truth = _demo()

    def macro(scorer: SentimentScorer) -> float:
        predicted = [s.label for s in scorer.score_batch(texts)]
        return float(recall_score(truth, predicted, labels=list(SENTIMENT_LABELS), average="macro"))

    assert macro(hybrid) >= macro(care) + 0.05  # measured +0.07 to +0.10 as the seed grew
    assert macro(care) > macro(stock)


# --- public data (read at test time only) -----------------------------------------------


def _macro_recall(scorer: SentimentScorer, name: str) -> float:
    texts, truth = [], []
    with (SHARED_DATA / name).open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            texts.append(record["text"])
            truth.append(record["sentiment"])
    predicted = [s.label for s in scorer.score_batch(texts)]
    return float(recall_score(truth, predicted, labels=list(SENTIMENT_LABELS), average="macro"))


@pytest.mark.slow
@pytest.mark.skipif(
    not (SHARED_DATA / "sentiment_vader_tweets.jsonl").exists(),
    reason=f"public labelled data not found at {SHARED_DATA} (it is never copied into the repo)",
)
def test_public_data_macro_recall_against_stock_vader(
    care: SentimentScorer, stock: SentimentScorer, hybrid: SentimentScorer
) -> None:
    seed_texts, _ = load_seed()
    if not seed_texts:
        pytest.skip("seed corpus (classifiers/data/seed/*.jsonl) is empty: no learned layer")
    learned = train_care_model()

    vader = "sentiment_vader_tweets.jsonl"
    assert _macro_recall(learned, vader) >= _macro_recall(stock, vader)
    # Rules alone: within noise of stock on VADER's own tweets (one neutral tweet of 108 there
    # is worth 0.003 macro-recall).
    assert _macro_recall(care, vader) >= _macro_recall(stock, vader) - 0.005
    # The hybrid (the app's default) too, since hybrid-3 (SENTIMENT.md): 0.716 against 0.713.
    assert _macro_recall(hybrid, vader) >= _macro_recall(stock, vader)

    for name in (
        "sentiment_tweeteval_val.jsonl",
        "sentiment_sxsw_brand.jsonl",
        "sentiment_vader_amazon.jsonl",
    ):
        baseline = _macro_recall(stock, name)
        assert _macro_recall(care, name) > baseline, name
        assert _macro_recall(learned, name) > baseline, name
        assert _macro_recall(hybrid, name) > baseline, name


# --- the fast path equals the straightforward reference ---------------------------------

# Edge cases of VADER's own rules (hand-written): "but" with repeated valences (its index
# quirk), ALL CAPS with and without a cap differential, boosters, "kind of", "least", "no",
# "never so", "without doubt", idioms, emoji next to words, emoji descriptions with "!",
# punctuation-only tokens, emoticons, and care constructions in odd case and Unicode.
VADER_EDGE_CASES = [
    "good but good but good",
    "I like it but I like it but hate it",
    "nice nice nice but bad bad",
    "GREAT product but AWFUL support",
    "GREAT GOOD AMAZING",
    "this is SO good",
    "not very good at all",
    "it is kind of good, sort of bad",
    "the least bad option, at least good, very least helpful",
    "no good, no no bad, no or nor happy",
    "never so happy, never this sad",
    "without doubt the best, without a doubt bad",
    "that movie was the shit, the bomb, bad ass, yeah right, kiss of death, to die for",
    "cut the mustard under the weather",
    "love😀it 😀 great😡 x🙂🙂y",
    "🔛 and ⬆️ are buttons! 🔝🔝",
    ":) :( :-D <3 :/ ;)",
    "!!! ??? ... ,,,",
    "WOW!!!! Great??? really????",
    "",
    "   ",
    "a",
    "İSTANBUL STİLL NOT WORKİNG, ſtill waiting",
    "\u212aeeps crashing, STILL NO REPLY after 3 HOURS",
    "DIDN'T WORK. Never ARRIVED. Nobody ANSWERS.",
    "can\u2019t log in, won\u2019t let me, didn\u2019t get a refund",
    "@AcmeAir where’s my bag?? #CustomerServiceFail #NeverAgain",
    "is the site down? anyone else having issues? when will it be fixed?",
    "Thanks in advance! Kind regards, Jo",
    "Great, another outage. Thanks a lot.",
    "quick response, fixed in minutes, working again, refund received",
    "waited 2hours, 45 mins on hold, 3 days late, delayed flight",
]


def _corpus_texts() -> list[str]:
    texts, _ = load_seed()
    demo, _ = _demo()
    return [*texts, *demo, *VADER_EDGE_CASES, *(text for text, _ in CARE_EXAMPLES)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus_texts()


@pytest.mark.parametrize("care_layer", [True, False], ids=["care", "stock"])
def test_fast_path_equals_the_reference(care_layer: bool, corpus: list[str]) -> None:
    scorer = SentimentScorer(care=care_layer)
    for text in corpus:
        assert scorer.care_scores(text) == scorer.care_scores_reference(text), text


def test_fast_rewrite_equals_the_reference(care: SentimentScorer, corpus: list[str]) -> None:
    rewriter = care._rewriter
    assert rewriter is not None
    for text in corpus:
        assert rewriter.rewrite(text) == rewriter.rewrite_reference(text), text


def test_stock_fast_path_is_stock_vader(stock: SentimentScorer, corpus: list[str]) -> None:
    analyzer = SentimentIntensityAnalyzer()
    for text in corpus:
        raw = analyzer.polarity_scores(text)
        scores = stock.care_scores(text)
        assert (scores.compound, scores.pos, scores.neu, scores.neg) == (
            raw["compound"],
            raw["pos"],
            raw["neu"],
            raw["neg"],
        ), text


def test_default_scorer_batch_equals_the_straightforward_reference(
    hybrid: SentimentScorer, corpus: list[str]
) -> None:
    # Reference: the reference pre-pass, stock VADER's own code, scikit-learn's TF-IDF.
    import numpy as np

    model = hybrid.model
    assert isinstance(model, HybridSentimentModel)
    scores = [hybrid.care_scores_reference(t) for t in corpus]
    fast = model.state_.predict_proba(corpus, [hybrid.care_scores(t) for t in corpus])
    assert np.array_equal(fast, model.state_.predict_proba(corpus, scores, reference=True))
    assert hybrid.score_batch(corpus) == model.predict(corpus, scores)
    assert hybrid.score_batch(corpus) == [hybrid.score(t) for t in corpus]


def test_fast_tfidf_equals_the_vectorizer(hybrid: SentimentScorer, corpus: list[str]) -> None:
    import numpy as np

    from classifiers.sentiment import fast_normalise
    from classifiers.text import normalise

    odd = [
        "a\\nb http://x.y/z WWW.EXAMPLE.COM me@x.com @bob 1,234.5 \u0663\u0664 \u00a0 tab\there",
        "HTTPS://A.B/c?d=1 www.x.org",
        "x",
    ]
    texts = [*corpus, *odd]
    assert [fast_normalise(t) for t in texts] == [normalise(t) for t in texts]
    model = hybrid.model
    assert isinstance(model, HybridSentimentModel)
    fast = model.state_.tfidf(texts).tocsr()
    reference = model.state_.vectorizer.transform(texts).tocsr()
    assert fast.shape == reference.shape
    assert np.array_equal(fast.indptr, reference.indptr)
    assert np.array_equal(fast.indices, reference.indices)
    assert np.array_equal(fast.data, reference.data)


def test_rule_prefilters_hold_on_every_match(care: SentimentScorer, corpus: list[str]) -> None:
    """Each rule's ``contains``/``and_contains`` is in every match it makes (CareRule)."""
    from classifiers.sentiment import _fold

    rewriter = care._rewriter
    assert rewriter is not None
    matched = 0
    for rule, compiled in zip(CARE_RULES, rewriter._rules, strict=True):
        for text in corpus:
            for match in compiled.regex.finditer(text):
                # The match and what follows it (a lookahead may hold the needed word).
                span = _fold(text[match.start() :])
                if compiled.contains:
                    assert any(p in span for p in compiled.contains), (rule.name, span)
                if compiled.and_contains:
                    assert any(p in span for p in compiled.and_contains), (rule.name, span)
                matched += 1
    assert matched > 300


def test_fold_covers_ignorecase() -> None:
    """Folding keeps every position, and maps what IGNORECASE equates with an ASCII letter."""
    import re
    import string
    import sys

    from classifiers.sentiment import _fold

    patterns = {c: re.compile(re.escape(c), re.IGNORECASE) for c in string.ascii_lowercase}
    for point in range(128, sys.maxunicode + 1):
        char = chr(point)
        if char.lower() == char and char.upper() == char:
            continue  # no case: neither IGNORECASE nor lower() changes anything
        folded = _fold(char)
        assert len(folded) == 1, hex(point)
        for letter, pattern in patterns.items():
            assert bool(pattern.fullmatch(char)) == (folded == letter), (hex(point), letter)


@pytest.mark.skipif(
    not (SHARED_DATA / "sentiment_vader_tweets.jsonl").exists(),
    reason=f"public labelled data not found at {SHARED_DATA} (it is never copied into the repo)",
)
def test_fast_vader_equals_stock_vader_on_its_ground_truth_tweets(
    stock: SentimentScorer, care: SentimentScorer
) -> None:
    analyzer = SentimentIntensityAnalyzer()
    with (SHARED_DATA / "sentiment_vader_tweets.jsonl").open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in lines]
    for text in texts:
        raw = analyzer.polarity_scores(text)
        scores = stock.care_scores(text)
        assert (scores.compound, scores.pos, scores.neu, scores.neg) == (
            raw["compound"],
            raw["pos"],
            raw["neu"],
            raw["neg"],
        ), text
    for text in texts[::4]:
        assert care.care_scores(text) == care.care_scores_reference(text), text
