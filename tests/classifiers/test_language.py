"""Language detection and what 'supported' means."""

from __future__ import annotations

from classifiers.language import detect, supported_languages


def test_detects_confident_languages_and_leaves_short_text_undetermined() -> None:
    assert detect("My parcel never arrived and nobody answers the phone").code == "en"
    assert detect("Meine Bestellung ist nie angekommen und niemand antwortet mir").code == "de"
    assert detect("ご注文の商品がまだ届いていません。確認していただけますか。").code == "ja"
    short = detect("ok thx")
    assert short.code is None
    assert short.detected is False
    hinted = detect("ok thx", hint="pt-BR")
    assert (hinted.code, hinted.detected) == ("pt", False)


def test_supported_means_enough_examples_in_every_queue() -> None:
    queues = ("product", "sales")
    pairs = [("de", "product")] * 20 + [("de", "sales")] * 20 + [("fr", "product")] * 30
    pairs += [(None, "product")] * 25 + [("en", "sales")] * 25
    assert supported_languages(pairs, queues) == ["de", "en"]
    assert supported_languages(pairs, queues, min_per_queue=21) == ["en"]
