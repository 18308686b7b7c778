"""The router's fast paths equal the scikit-learn computations they replace.

- ``normalise`` (substitutions skipped when their trigger is absent) equals the plain chain;
- ``words`` equals ``re.findall`` of the token pattern;
- ``RouterFeatures.transform`` equals scikit-learn's ``TfidfVectorizer`` pair (words,
  ``char_wb``), including its fallbacks (n-gram ranges and alphabets the exact keys do not
  cover, batches cut into slices);
- ``CalibratedLinear`` equals ``CalibratedClassifierCV.predict_proba``;
- the vectorised explanation names the terms the per-row loop named.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from classifiers import features as features_module
from classifiers.features import WORD_PATTERN, RouterFeatures, words
from classifiers.routing import (
    FUNCTION_WORDS,
    PLACEHOLDERS,
    QUEUES,
    CalibratedLinear,
    Router,
    linear_weights,
)
from classifiers.text import normalise
from classifiers.train import Example, load_examples, seed_paths, split_examples, train_router

EDGE = [
    "",
    " ",
    "\t\n",
    "a",
    "I",
    "x  y",
    "😡",
    "😡😡 🙏",
    "ok!!! ... ???",
    "Order #12345 (2,50 €) never arrived!!",
    "rock'n'roll' 'tis ''quoted'' o' ' '' don't",
    "snake_case __init__ _x_",
    "İstanbul ß Straße ǅ ＦＵＬＬ",
    "\u00a0non\u2009breaking\u3000spaces\u200b",
    "Mail me at Jane.Doe+x@example.co.uk or @acme_support",
    "see WWW.Example.com/x and HTTPS://t.co/AbC?x=1",
    "escaped\\nnewline and real\nnewline",
    "arabic digits ٣٤٥ and superscript ² and ½",
    "ご注文の商品がまだ届いていません。確認していただけますか。",
    "Ich wurde zweimal belastet – wo bleibt die Rückerstattung?",
    "\ud800 lone surrogate",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ALL CAPS TEXT SHOUTING ABOUT THE INVOICE",
]
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ESCAPED_NEWLINE = re.compile(r"\\n")
_SPACE = re.compile(r"\s+")


def plain_normalise(text: str) -> str:
    """``normalise`` as it was: every substitution on every text."""
    text = _ESCAPED_NEWLINE.sub(" ", text)
    text = _URL.sub(" xurlx ", text)
    text = _EMAIL.sub(" xemailx ", text)
    text = _MENTION.sub(" xuserx ", text)
    text = _NUMBER.sub(" 0 ", text)
    return _SPACE.sub(" ", text).strip().lower()


def reference_vectorizers(texts: list[str], char_ngrams: tuple[int, int]) -> Any:
    """The FeatureUnion's two vectorizers as they were (each normalising on its own)."""
    word = TfidfVectorizer(
        preprocessor=normalise,
        ngram_range=(1, 2),
        min_df=1,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w[\w']*\b",
    ).fit(texts)
    char = TfidfVectorizer(
        preprocessor=normalise,
        analyzer="char_wb",
        ngram_range=char_ngrams,
        min_df=2,
        sublinear_tf=True,
        max_features=200_000,
    ).fit(texts)
    return word, char


def reference_matrix(fitted: RouterFeatures, word: Any, char: Any, texts: list[str]) -> Any:
    """scikit-learn's matrix, character columns in the order ``RouterFeatures`` uses."""
    chars = char.transform(texts)
    lookup = fitted.char_lookup_
    if lookup is not None and lookup.usable:
        chars = chars[:, lookup.order]
    return hstack([word.transform(texts), chars]).tocsr()


def assert_equal_matrices(found: Any, expected: Any) -> None:
    assert found.shape == expected.shape
    assert found.has_canonical_format
    assert (found != expected).nnz == 0 or abs(found - expected).max() < 1e-12
    assert found.nnz == expected.nnz


@pytest.fixture(scope="module")
def seed_texts() -> list[str]:
    return [example.text for example in load_examples(seed_paths())]


@pytest.fixture(scope="module")
def fitted(seed_texts: list[str]) -> RouterFeatures:
    return RouterFeatures().fit(seed_texts)


def test_normalise_equals_the_plain_substitutions(seed_texts: list[str]) -> None:
    for text in [*EDGE, *seed_texts]:
        assert normalise(text) == plain_normalise(text), text


def test_words_equal_the_token_pattern(seed_texts: list[str]) -> None:
    pattern = re.compile(WORD_PATTERN)
    for text in [*EDGE, *seed_texts]:
        assert words(text) == pattern.findall(text), text
        assert words(normalise(text)) == pattern.findall(normalise(text)), text


def test_transform_equals_scikit_learn(fitted: RouterFeatures, seed_texts: list[str]) -> None:
    word, char = reference_vectorizers(seed_texts, (2, 5))
    assert fitted.words_.vocabulary_ == word.vocabulary_
    assert fitted.chars_ is not None
    assert fitted.chars_.vocabulary_ == char.vocabulary_
    assert fitted.char_lookup_ is not None
    assert fitted.char_lookup_.usable
    texts = [*EDGE, *seed_texts[:600], *EDGE]
    assert_equal_matrices(fitted.transform(texts), reference_matrix(fitted, word, char, texts))
    # fitting through the pipeline (fit_transform) gives what transform gives
    again = RouterFeatures().fit_transform(seed_texts[:300])
    assert_equal_matrices(again, RouterFeatures().fit(seed_texts[:300]).transform(seed_texts[:300]))


def test_large_batches_are_cut_into_slices(
    fitted: RouterFeatures, seed_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = seed_texts[:50]
    whole = fitted.transform(texts)
    monkeypatch.setattr(features_module._CharLookup, "batch_limit", property(lambda self: 7))
    assert_equal_matrices(fitted.transform(texts), whole)


@pytest.mark.parametrize("char_ngrams", [(3, 4), (4, 5)])
def test_other_ranges_equal_scikit_learn(
    seed_texts: list[str], char_ngrams: tuple[int, int]
) -> None:
    texts = seed_texts[:400]
    fitted = RouterFeatures(char_ngrams=char_ngrams).fit(texts)
    assert fitted.char_lookup_ is not None
    # (4, 5) falls back to scikit-learn: char_wb counts a short word whole there
    assert fitted.char_lookup_.usable is (char_ngrams[0] <= 3)
    word, char = reference_vectorizers(texts, char_ngrams)
    batch = [*EDGE, *texts]
    assert_equal_matrices(fitted.transform(batch), reference_matrix(fitted, word, char, batch))


def test_an_alphabet_too_large_for_exact_keys_falls_back() -> None:
    # 5,000 characters, each a word of its own in two texts: 13 bits a character
    han = " ".join(chr(0x4E00 + i) for i in range(5000))
    texts = [han, han, "plain words here", "plain words there"]
    fitted = RouterFeatures().fit(texts)
    assert fitted.char_lookup_ is not None
    assert not fitted.char_lookup_.usable
    word, char = reference_vectorizers(texts, (2, 5))
    batch = [*texts, *EDGE]
    assert_equal_matrices(fitted.transform(batch), reference_matrix(fitted, word, char, batch))


def test_no_text_is_an_empty_matrix(fitted: RouterFeatures) -> None:
    matrix, words_only = fitted.transform_with_words([])
    assert matrix.shape == (0, fitted.transform(["x"]).shape[1])
    assert words_only.shape == (0, fitted.n_word_features)


def test_words_only_features_have_the_word_block_alone() -> None:
    texts = ["please add dark mode", "my order never arrived", "quote for 50 seats"] * 4
    fitted = RouterFeatures(char_ngrams=None).fit(texts)
    assert fitted.chars_ is None
    assert fitted.transform(texts).shape == (len(texts), fitted.n_word_features)


@pytest.fixture(scope="module")
def seed() -> list[Example]:
    return load_examples(seed_paths())


@pytest.fixture(scope="module")
def router(seed: list[Example]) -> Router:
    return train_router(seed).router


def test_fused_probabilities_equal_the_calibrated_ensemble(
    router: Router, seed: list[Example]
) -> None:
    texts = [example.text for example in seed[:800]] + EDGE
    matrix = router.pipeline.named_steps["features"].transform(texts)
    model = router.pipeline.named_steps["model"]
    fused = CalibratedLinear.of(model)
    assert fused is not None
    np.testing.assert_allclose(fused.predict_proba(matrix), model.predict_proba(matrix), atol=1e-12)
    two = [e for e in seed if e.queue in ("sales", "service")]
    binary = train_router(two).router
    matrix = binary.pipeline.named_steps["features"].transform(texts)
    model = binary.pipeline.named_steps["model"]
    fused = CalibratedLinear.of(model)
    assert fused is not None
    np.testing.assert_allclose(fused.predict_proba(matrix), model.predict_proba(matrix), atol=1e-12)
    assert CalibratedLinear.of(object()) is None


def _explained_one_by_one(router: Router, text: str) -> list[str]:
    """The explanation as the per-row loop computed it (one row, argsort of the pushes)."""
    features = router.pipeline.named_steps["features"]
    row = features.transform([text])[:, : features.n_word_features].tocsr()
    column = int(router.predict_proba(features.transform([text])).argmax())
    weights = linear_weights(router.pipeline.named_steps["model"])
    names = features.word_names()
    push = row.data * weights[column, row.indices]
    content: list[str] = []
    function_only: list[str] = []
    for i in np.argsort(-push, kind="stable"):
        if push[i] <= 0:
            break
        term = str(names[row.indices[i]])
        if all(token in PLACEHOLDERS for token in term.split()):
            continue
        if _function_only(term):
            function_only.append(term)
        else:
            content.append(term)
    return [*content, *function_only][: router.explain_terms]


def _function_only(term: str) -> bool:
    return all(token in FUNCTION_WORDS or token in PLACEHOLDERS for token in term.split())


def test_vectorised_reasons_name_the_terms_the_row_loop_named(
    router: Router, seed: list[Example]
) -> None:
    _, held = split_examples(seed)
    texts = [example.text for example in held[:150]] + ["order 123456 never arrived", "zzz"]
    routes = router.route_batch(texts)
    for text, route in zip(texts, routes, strict=True):
        terms = _explained_one_by_one(router, text)
        expected = f"model: {', '.join(terms)}" if terms else "model: no known words"
        # an unsupported language prefixes the model's reason: "language 'xx' ...; model: ..."
        assert route.reason.split("; ")[-1] == expected, (text, route.reason)
    assert routes[-1].reason == "model: no known words"


def test_a_reason_names_content_words_before_function_words(router: Router) -> None:
    texts = [
        "I would like to know how I can check the status of my order",
        "can you tell me if there is a way to do it for a team of 40?",
        "is it me or is the new dashboard from you all a bit slow",
    ]
    for route in router.route_batch(texts):
        terms = route.reason.removeprefix("model: ").split(", ")
        kinds = [_function_only(term) for term in terms]
        assert kinds == sorted(kinds), route.reason  # no function-only term before a content one
        assert not kinds[0], route.reason  # each of these texts has a content word that pushed


def test_two_queue_reasons_explain_the_chosen_queue() -> None:
    tiny = [
        Example(text=text, queue=queue)
        for queue, texts in {
            "sales": ["how much is the pro plan", "quote for 50 seats", "pricing for teams"],
            "service": ["my order never arrived", "I was charged twice", "cannot log in"],
        }.items()
        for text in texts * 3
    ]
    router = train_router(tiny, holdout=0).router
    sales = router.route("what is the pricing of the pro plan")
    service = router.route("my order never arrived")
    assert (sales.queue, service.queue) == ("sales", "service")
    assert {"pricing", "plan", "pro"} & set(sales.reason.removeprefix("model: ").split(", "))
    assert {"order", "arrived", "never"} & set(service.reason.removeprefix("model: ").split(", "))
    assert set(sales.scores) == {"sales", "service"}


def test_a_router_refuses_a_pipeline_of_another_format(router: Router) -> None:
    model = router.pipeline.named_steps["model"]
    old = Pipeline([("features", TfidfVectorizer()), ("model", model)])
    with pytest.raises(TypeError, match="older format"):
        Router(old, version="x")
    assert set(QUEUES) == set(router.labels_)
