"""The matcher, its text analysis and the confidence rule, on small article sets made here."""

from __future__ import annotations

import threading

import pytest

from kb.autoreply import textproc
from kb.autoreply.decision import DEFAULT_MARGIN, DEFAULT_THRESHOLD, should_reply
from kb.autoreply.matcher import Match, Matcher, MatchArticle, ModelHolder, fingerprint
from kb.config import SETTINGS_BY_NAME

EN = [
    MatchArticle("refund", "How do I get a refund?", "Open your order page and choose Request refund. "
                 "Money returns to the card within five days."),
    MatchArticle("password", "Reset your password", "Click Forgot password on the sign-in page; we email a "
                 "link that works for one hour."),
    MatchArticle("shipping", "Shipping times and tracking", "Parcels leave the warehouse in two days. "
                 "The tracking number is in the confirmation email."),
    MatchArticle("invoice", "Download an invoice", "Invoices are PDF files under Account, Billing."),
]


def ids(matches):
    """The article ids of a match list, best first."""
    return [m.article_id for m in matches]


def test_finds_the_article_and_explains_why():
    matcher = Matcher.from_articles(EN)
    matches = matcher.match("I forgot my password and can't sign in, please help", subject="Login problem")
    assert ids(matches)[0] == "password"
    assert matches[0].score > matches[1].score > 0 if len(matches) > 1 else matches[0].score > 0
    # The why: words of the email as the customer wrote them, strongest first.
    assert "password" in matches[0].terms
    assert "please" not in matches[0].terms and "and" not in matches[0].terms
    assert 0 < matches[0].score <= 1


def test_stemming_matches_other_word_forms():
    matcher = Matcher.from_articles(EN)
    matches = matcher.match("Where are my parcels? I need the tracked shipment", top=1)
    assert ids(matches) == ["shipping"]
    assert {"parcels", "tracked"} & set(matches[0].terms)


def test_title_weighs_more_than_body():
    articles = [
        MatchArticle("in-body", "Account settings", "You can change the delivery address of an order "
                     "in your account settings before it ships."),
        MatchArticle("in-title", "Change the delivery address", "Open your account settings before "
                     "the order ships."),
    ]
    matches = Matcher.from_articles(articles).match("change delivery address")
    assert ids(matches) == ["in-title", "in-body"]
    assert matches[0].score > matches[1].score * 1.3


def test_top_and_no_match():
    matcher = Matcher.from_articles(EN)
    assert len(matcher.match("refund password invoice shipping", top=2)) == 2
    assert matcher.match("zzzz qqqq") == []
    assert matcher.match("") == []
    assert Matcher.from_articles([]).match("refund") == []


def test_chinese_through_jieba():
    articles = [
        MatchArticle("zh-pw", "如何重置密码", "在登录页面点击忘记密码，我们会发送一封邮件。", "zh"),
        MatchArticle("zh-refund", "如何申请退款", "打开订单页面，选择申请退款。", "zh"),
    ]
    matches = Matcher.from_articles(articles).match("我忘记了密码，怎么重置？")
    assert ids(matches)[0] == "zh-pw"
    assert "密码" in matches[0].terms and "重置" in matches[0].terms
    assert textproc.detect_language("我忘记了密码，怎么重置？") == "zh"


def test_a_few_cjk_runs_in_other_languages_do_not_keep_jiebas_dictionary(monkeypatch):
    textproc.release_jieba()  # an earlier test may have loaded it
    monkeypatch.setattr(textproc, "_segmented", {})
    articles = [*EN, MatchArticle("greet", "Greetings in other scripts", "Type 你好世界 to greet in Chinese.", "en")]
    first = Matcher.from_articles(articles)
    assert not textproc.jieba_loaded()  # only an English article held CJK: the dictionary went
    loads = []
    monkeypatch.setattr(textproc, "_jieba", lambda real=textproc._jieba: loads.append(1) or real())
    again = Matcher.from_articles(articles)
    assert loads == [] and not textproc.jieba_loaded()  # the refit took the run's words from memory
    assert ids(again.match("你好世界")) == ids(first.match("你好世界")) == ["greet"]  # a run seen at the fit
    assert not loads
    assert ids(again.match("我想说你好世界")) == ["greet"]
    assert loads and textproc.jieba_loaded()  # a new run loads the dictionary again
    Matcher.from_articles(articles)
    assert textproc.jieba_loaded()  # loaded before the fit (as kb.search may have): left alone


def test_chinese_articles_keep_jiebas_dictionary(monkeypatch):
    textproc.release_jieba()
    monkeypatch.setattr(textproc, "_segmented", {})  # runs segmented by earlier tests
    Matcher.from_articles([*EN, MatchArticle("zh-pw", "如何重置密码", "在登录页面点击忘记密码。", "zh")])
    assert textproc.jieba_loaded()


def test_norwegian_stemming():
    articles = [
        MatchArticle("nb-pw", "Tilbakestill passordet", "Trykk på glemt passord på innloggingssiden.", "nb"),
        MatchArticle("nb-ship", "Leveringstid og sporing", "Pakker sendes fra lageret innen to dager.", "nb"),
    ]
    matcher = Matcher.from_articles(articles)
    # "passordene" and "passordet" share the stem "passord" only with Norwegian stemming.
    assert textproc.stem("passordene", "nb") == textproc.stem("passordet", "nb") == "passord"
    matches = matcher.match("Hvordan kan jeg endre passordene mine?")
    assert ids(matches)[0] == "nb-pw"
    assert "passordene" in matches[0].terms
    assert textproc.detect_language("Hvordan kan jeg endre passordene mine?") == "nb"


def test_language_detection_is_deterministic_and_defaults():
    assert textproc.detect_language("How do I reset my password?") == "en"
    assert textproc.detect_language("Como posso pedir o cartão da empresa?") == "pt"
    assert textproc.detect_language("PayPal XJ-42", default="nb") == "nb"
    assert textproc.normalise_lang("nb-NO") == "nb" and textproc.normalise_lang("no") == "nb"
    assert textproc.normalise_lang("klingon") is None


def test_article_language_is_detected_when_missing():
    articles = [MatchArticle("pt", "Como pedir o cartão da empresa?", "O cartão é pedido no portal da empresa.")]
    matcher = Matcher.from_articles(articles)
    assert matcher.main_lang == "pt"
    assert ids(matcher.match("cartões empresas")) == ["pt"]  # no stop words: the articles' language is used


def test_refit_swaps_the_model_atomically():
    holder = ModelHolder()
    assert holder.matcher.match("refund") == []
    assert holder.refresh(EN) is True
    first = holder.version
    assert ids(holder.matcher.match("refund my order", top=1)) == ["refund"]
    assert holder.refresh(list(reversed(EN))) is False  # same articles, same fingerprint: no refit
    assert holder.version == first
    changed = EN + [MatchArticle("gift", "Gift cards", "Gift cards never expire.")]
    errors = []

    def keep_matching():
        for _ in range(50):
            found = holder.matcher.match("gift cards refund")
            if not found:
                errors.append("a worker saw an empty model")

    worker = threading.Thread(target=keep_matching)
    worker.start()
    assert holder.refresh(changed) is True
    worker.join()
    assert errors == []
    assert holder.version == fingerprint(changed) != first
    assert ids(holder.matcher.match("gift card", top=1)) == ["gift"]


@pytest.mark.parametrize("scores, threshold, margin, reply, code", [
    ([], 0.2, 0.0, False, "no-match"),
    ([0.5], 0.2, 0.03, True, "confident"),           # a single match leads "nothing" by its score
    ([0.19, 0.05], 0.2, 0.0, False, "low-score"),
    ([0.2, 0.05], 0.2, 0.0, True, "confident"),      # the threshold itself is enough
    ([0.4, 0.38], 0.2, 0.03, False, "ambiguous"),
    ([0.4, 0.37], 0.2, 0.03, True, "confident"),     # a lead of exactly the margin is enough
    ([0.4, 0.4], 0.2, 0.0, True, "confident"),       # margin 0 turns the check off
])
def test_should_reply(scores, threshold, margin, reply, code):
    matches = [Match(f"a{i}", score) for i, score in enumerate(scores)]
    decided, reason = should_reply(matches, threshold, margin)
    assert decided is reply
    assert reason.startswith(code + ":")


def test_default_threshold_is_the_documented_setting():
    assert SETTINGS_BY_NAME["AUTOREPLY_THRESHOLD"].default == DEFAULT_THRESHOLD
    assert SETTINGS_BY_NAME["AUTOREPLY_MARGIN"].default == DEFAULT_MARGIN


def test_holder_follows_the_published_articles(session, make_article):
    from kb.autoreply.matcher import published_match_articles

    password = make_article("Reset your password", body_md="Click **Forgot password** on the sign-in page.")
    make_article("Refunds", body_md="Refunds take five days.", status="draft")
    holder = ModelHolder()
    assert holder.refresh(published_match_articles(session)) is True
    assert holder.matcher.ids == [str(password.id)]  # drafts are never suggested
    found, = holder.matcher.match("forgot password", top=1)
    assert found.article_id == str(password.id) and "password" in found.terms
    refunds = make_article("Refunds", body_md="Refunds take five days.")
    assert holder.refresh(published_match_articles(session)) is True
    assert ids(holder.matcher.match("refunds", top=1)) == [str(refunds.id)]


def test_common_character_ngrams_are_left_out_only_in_a_larger_knowledge_base(monkeypatch):
    from kb.autoreply import matcher as matcher_module
    query = "I forgot my password and need a refund"
    small = Matcher.from_articles(EN).match(query)
    monkeypatch.setattr(matcher_module, "CHAR_MAX_DF", 1.0)
    assert Matcher.from_articles(EN).match(query) == small  # four articles: every n-gram counts
    many = [MatchArticle(f"order-{k}", f"Order question {k}", f"How do I change order {k} before it ships to "
                         f"{['Oslo', 'Lisbon', 'Paris'][k % 3]}?") for k in range(matcher_module.CHAR_MAX_DF_FROM)]
    kept = Matcher.from_articles(many)._chars[-1][1].vocabulary
    monkeypatch.setattr(matcher_module, "CHAR_MAX_DF", 0.5)
    body = Matcher.from_articles(many)._chars[-1][1].vocabulary
    assert " ord" in kept and " ord" not in body  # in every article
    assert "osl" in body and set(body) < set(kept)  # in a third of them
