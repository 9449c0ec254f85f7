"""The rebuild's quicker analysis gives exactly what Whoosh's analyzers give, field by field."""

from __future__ import annotations

import random

import pytest

from kb.search.analysis import GROUPS, analyzer, fast_index, term_spans
from kb.search.schema import make_schema
from kb.search.spans import hit_spans

TEXTS = [
    "", "   ", "the a an of", "The password is reset. THE PASSWORD!",
    "How do I reset my password when I'm locked out? It's e.g. 3.5 or v2.0.1 and foo_bar, *wild*cards.",
    "Café crème, naïve coöperation; Straße ÆØÅ æøå İstanbul ǅemal",
    "Kunden, kundene og kundens kunder: tilbakebetaling av fakturaen skjer innen fem dager.",
    "如何申请退款 PayPal 退款 refund 12 ½ ２０２６年",
    "a b c d e ab abc under_score __init__ x1 1x 100,000 3.14159 U.S.A. ",
    "running runs ran runner easily fairly generously sensational",
]


def random_texts(count: int, seed: int = 12) -> list[str]:
    """Texts of words, stop words, digits, punctuation, accents and CJK in random order."""
    rng = random.Random(seed)
    pieces = ["the", "and", "Refund", "refunds", "INVOICE", "pass_word", "3.5", "x.y", "é", "ß", "退款", "-", ".",
              "'s", "*", "kunder", "faktura", "  ", "\n\n", "a", "I", "generalization", "ıi", "Ω", "٣"]
    return [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(count)]


FIELDS = sorted(make_schema().items())
QUICK = [(name, field) for name, field in FIELDS if fast_index(field) is not None]


def test_every_field_but_jiebas_has_the_quick_analysis():
    quick = {name for name, _field in QUICK}
    indexed = {name for name, field in FIELDS if field.indexed and field.format is not None}
    # id/lang/category are single-term ID fields, and the zh fields (but spell_zh) segment with jieba:
    # Whoosh's own path.
    whooshs = {"id", "lang", "category", "title_zh", "tags_zh", "body_zh", "examples_zh"}
    assert quick == indexed - whooshs
    assert "body_en" in quick and "spell_other" in quick and "title_nb" in quick


@pytest.mark.parametrize("name,field", QUICK, ids=[name for name, _ in QUICK])
def test_the_quick_analysis_gives_the_same_terms_positions_and_weights(name, field):
    index = fast_index(field)
    for text in TEXTS + random_texts(300):
        assert list(index(text)) == list(field.index(text)), text


@pytest.mark.parametrize("group", GROUPS)
def test_the_snippets_term_spans_are_the_analyzers_terms_and_characters(group):
    chain = analyzer(group)
    for text in TEXTS + random_texts(300, seed=13):
        assert term_spans(group, text) == [(t.text, t.startchar, t.endchar) for t in chain(text, chars=True)], text
        assert term_spans(group, text, {"refund", "退款"}) == [
            (t.text, t.startchar, t.endchar) for t in chain(text, chars=True) if t.text in {"refund", "退款"}]
    assert term_spans("en", "Refunds, the REFUNDED") == [("refund", 0, 7), ("refund", 13, 21)]


def dense_texts(count: int, seed: int = 14) -> list[str]:
    """Words glued by dots, stars, underscores and nothing: tokens inside tokens, dotted tokens, edges."""
    rng = random.Random(seed)
    words = ["refund", "Refunds", "REFUNDED", "e", "g", "3", "5", "v2", "0", "x", "pass", "password", "the", "é",
             "kunder", "退款", "ß", "a"]
    glue = ["", ".", "..", " ", "*", "_", "-", ". ", " .", "'"]
    return ["".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(0, 12))) for _ in range(count)]


@pytest.mark.parametrize("group", GROUPS)
def test_the_snippets_quick_hits_are_the_analyzers_wanted_terms(group):
    # a word that stands alone once and thousands of times inside one long run
    texts = TEXTS + random_texts(300, seed=15) + dense_texts(600) + ["x refund " + "xrefund" * 1000 + " refund x"]
    for wanted in ({"refund"}, {"x"}, {"refund", "pass", "password", "g", "a", "退款"}, {"3.5", "e.g", "refund"},
                   {"kunder", "kund", "é", "ß", "ss"}, {"the", "a"}, set()):
        for text in texts:
            assert hit_spans(group, text, wanted) == term_spans(group, text, wanted), (text, wanted)


def test_the_quick_hits_hold_when_the_word_memo_starts_again(monkeypatch):
    from kb.search import spans
    monkeypatch.setattr(spans, "MEMO_WORDS", 4)  # start again at nearly every text
    texts = [f"Refund {n} refunds the invoice, then another refund of {n * 7} and refunded" for n in range(50)]
    for text in texts + dense_texts(100, seed=16):
        assert hit_spans("en", text, {"refund", "invoic"}) == term_spans("en", text, {"refund", "invoic"}), text


@pytest.mark.parametrize("group", GROUPS)
def test_words_learnt_together_get_the_terms_the_analyzer_gives_each_alone(group):
    import re

    from kb.search.analysis import learn_word, learn_words, plain_chain

    plain = plain_chain(group)
    if plain is None:  # jieba's group: no plain chain, snippets take term_spans
        assert group == "zh"
        return
    words = sorted({w for text in TEXTS + random_texts(300, seed=17) + dense_texts(300, seed=18)
                    for w in re.findall(r"[\w\*]+", text)})
    together, one_by_one = (*plain[:2], {}, {}), (*plain[:2], {}, {})
    learn_words(together, words)
    for word in words:
        learn_word(one_by_one, word)
    assert together[2] == one_by_one[2] and together[3] == one_by_one[3]
    chain = analyzer(group)
    for word in words:  # and the analyzer itself, with no memo
        terms = [t.text for t in chain(word)]
        assert together[2][word] == (terms[0] if terms else None), word
