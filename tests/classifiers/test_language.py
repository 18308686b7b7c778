"""Language detection and what 'supported' means.

``detect_batch`` runs py3langid's model over a whole batch at once; these tests hold it to
py3langid's own ``LanguageIdentifier.classify`` (same codes, same probabilities) on
sentences written for them, and keep the documented semantics: a language is detected
only from enough letters at a high probability, else the source's hint, else nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from classifiers import language
from classifiers.language import (
    LOCKSTEP_MIN,
    MIN_LETTERS,
    MIN_PROBABILITY,
    Language,
    detect,
    detect_batch,
    letter_count,
    supported_languages,
)

CLEAR = {
    "en": [
        "My order still has not arrived and nobody answers my emails.",
        "Could you please add an option to export the monthly report as a spreadsheet?",
        "MY PARCEL NEVER ARRIVED AND NOBODY ANSWERS THE PHONE",
    ],
    "de": [
        "Meine Bestellung ist immer noch nicht angekommen und niemand antwortet mir.",
        "Ich wurde zweimal belastet und warte seit einer Woche auf die Rückerstattung.",
    ],
    "es": [
        "Mi pedido todavía no ha llegado y nadie responde a mis correos electrónicos.",
        "¿Podrían añadir un modo oscuro a la aplicación? Sería muy útil por la noche.",
    ],
    "fr": [
        "Ma commande n'est toujours pas arrivée et personne ne répond à mes messages.",
        "Pourriez-vous ajouter la possibilité d'exporter les factures en format tableur ?",
    ],
    "it": [
        "Il mio ordine non è ancora arrivato e nessuno risponde alle mie email da giorni.",
        "Vorrei sapere quanto costa il piano aziendale per venti utenti, grazie mille.",
    ],
    "nl": [
        "Mijn bestelling is nog steeds niet aangekomen en niemand beantwoordt mijn berichten.",
        "Kunnen jullie een donkere modus toevoegen aan de app? Dat zou erg fijn zijn.",
    ],
    "pt": [
        "O meu pedido ainda não chegou e ninguém responde aos meus emails há uma semana.",
        "Não consigo entrar na minha conta desde a atualização e o suporte não me responde.",
    ],
    "id": [
        "Apakah bisa menambahkan mode gelap di aplikasi? Itu akan sangat membantu kami.",
    ],
    "ja": [
        "ご注文の商品がまだ届いていません。確認していただけますか。",
        "請求書が二重に発行されています。返金の手続きをお願いできますでしょうか。",
    ],
}
UNCLEAR = [
    "",
    "   ",
    "ok thx",
    "Danke!",
    "👍",
    "😡😡😡🙏🙏",
    "12345 67890 !!! ???",
    "Native Linux desktop client?",
    "Hallo team, my invoice is wrong, bitte korrigieren Sie das so schnell wie möglich.",
    "Thanks!! 😊 Merci beaucoup, c'est parfait, see you soon",
    "https://example.com/orders/12345 @acme #fail",
    # long enough, but py3langid is not sure (Portuguese 0.88; Indonesian next to Malay)
    "Gostaria de saber quanto custa o plano empresarial para vinte utilizadores.",
    "Pesanan saya belum juga sampai dan tidak ada yang membalas pesan saya sejak kemarin.",
    "Pesanan saya belum diterima, padahal sudah lewat satu minggu. Mohon segera diperiksa ya.",
    "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ｉｓ ｓｔｉｌｌ ｔｅｘｔ ｙｏｕ ｋｎｏｗ",
]


def _sentences() -> list[str]:
    return [text for texts in CLEAR.values() for text in texts] + UNCLEAR


@pytest.fixture(scope="module")
def py3langid() -> Any:
    """A fresh py3langid identifier: the reference, independent of the module's cache."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def _reference(identifier: Any, text: str, hint: str | None = None) -> Language:
    """The documented semantics, computed with py3langid one text at a time."""
    if sum(1 for char in text if char.isalpha()) >= MIN_LETTERS:
        code, probability = identifier.classify(text)
        if probability >= MIN_PROBABILITY:
            return Language(code=str(code), probability=round(float(probability), 4), detected=True)
    if hint:
        return Language(code=hint.split("-")[0].lower(), probability=0.0, detected=False)
    return Language(code=None, probability=0.0, detected=False)


def _same(found: Language, expected: Language) -> bool:
    # float32 sums in another order: the 4th decimal may differ by one
    return (found.code, found.detected) == (expected.code, expected.detected) and abs(
        found.probability - expected.probability
    ) <= 2e-4


def test_clear_sentences_are_detected_as_their_language() -> None:
    texts = [text for texts in CLEAR.values() for text in texts]
    expected = [code for code, texts in CLEAR.items() for _ in texts]
    found = detect_batch(texts)
    assert [one.code for one in found] == expected
    assert all(one.detected and one.probability >= MIN_PROBABILITY for one in found)


def test_batched_detection_agrees_with_py3langid_on_every_sentence(py3langid: Any) -> None:
    # enough texts for the lockstep walk, and long ones that finish one by one
    long = [" ".join(texts) * 6 for texts in CLEAR.values()]
    batch = _sentences() * 2 + long
    assert len(batch) > LOCKSTEP_MIN
    found = detect_batch(batch)
    expected = [_reference(py3langid, text) for text in batch]
    assert [one.code for one in found] == [one.code for one in expected]
    assert all(_same(a, b) for a, b in zip(found, expected, strict=True))
    # one text at a time (no lockstep at all) gives the same answers
    assert all(_same(detect(text), b) for text, b in zip(batch, expected, strict=True))


def test_without_strong_evidence_the_hint_or_nothing(py3langid: Any) -> None:
    for text in ("ok thx", "👍", "😡😡😡🙏🙏", "", "12345 67890 !!! ???"):
        found = detect(text)
        assert (found.code, found.detected, found.probability) == (None, False, 0.0), text
    unsure = detect(UNCLEAR[13])  # Portuguese at 0.88: not detected, no hint
    assert (unsure.code, unsure.detected) == (None, False)
    hinted = detect("ok thx", hint="pt-BR")
    assert (hinted.code, hinted.detected) == ("pt", False)
    # a text long enough but mixed: whatever py3langid says, with the same threshold
    mixed = UNCLEAR[8]
    assert _same(detect(mixed, hint="de"), _reference(py3langid, mixed, hint="de"))
    with pytest.raises(ValueError, match="differ in length"):
        detect_batch(["a", "b"], ["en"])


def test_batched_detection_falls_back_to_py3langid_per_text(
    py3langid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a py3langid whose model layout the batched walk does not read
    monkeypatch.setattr(language, "_batch_identifier", lambda: None)
    batch = _sentences()
    found = detect_batch(batch)
    assert all(_same(a, _reference(py3langid, t)) for a, t in zip(found, batch, strict=True))


def test_letter_count_is_str_isalpha() -> None:
    for text in [*_sentences(), "ß_1²ǅ", "a\u0301b", "\ud800x"]:
        assert letter_count(text) == sum(1 for char in text if char.isalpha()), text


def test_supported_means_enough_examples_in_every_queue() -> None:
    queues = ("product", "sales")
    pairs = [("de", "product")] * 20 + [("de", "sales")] * 20 + [("fr", "product")] * 30
    pairs += [(None, "product")] * 25 + [("en", "sales")] * 25
    assert supported_languages(pairs, queues) == ["de", "en"]
    assert supported_languages(pairs, queues, min_per_queue=21) == ["en"]
