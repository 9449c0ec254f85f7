"""A refit that re-reads only the changed articles: the same model as a whole fit, for less work."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kb.autoreply import matcher as matcher_module
from kb.autoreply import tfidf_update
from kb.autoreply.matcher import Matcher, MatchArticle, ModelHolder

WORDS = ("account billing card charge delivery email export invoice login order parcel password payment "
         "printer refund receipt reset return router screen shipping subscription tracking upgrade warranty "
         "wifi battery cable coupon discount firmware install license mobile profile refundable").split()
NORWEGIAN = "Slik tilbakestiller du passordet ditt på innloggingssiden, og du får en lenke på e-post."
CHINESE = "如何重置密码？在登录页面点击忘记密码，我们会发送一封邮件。"


def article(i: int, rng: random.Random, extra: str = "") -> MatchArticle:
    """A made-up article of ~40 words (some in Norwegian or Chinese, language left to detection)."""
    body = " ".join(rng.choice(WORDS) for _ in range(40)) + extra
    if i % 7 == 3:
        return MatchArticle(f"a{i}", f"Passord {i}", f"{NORWEGIAN} {body}", None)
    if i % 11 == 5:
        return MatchArticle(f"a{i}", f"密码 {i}", f"{CHINESE} {body}", None)
    return MatchArticle(f"a{i}", f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}", body, "en")


def articles(n: int, seed: int = 1) -> list[MatchArticle]:
    rng = random.Random(seed)
    return [article(i, rng) for i in range(n)]


def channel_figures(model: Matcher) -> dict:
    """The word channel as {feature: (idf, {article id: weight})}: comparable whatever the numbering."""
    channel = model._words
    postings = channel.postings.tocsr()
    figures = {}
    for feature, row in channel.vocabulary.items():
        start, end = postings.indptr[row], postings.indptr[row + 1]
        figures[feature] = (float(channel.idf[row]), {model.ids[j]: float(w) for j, w in
                                                      zip(postings.indices[start:end], postings.data[start:end])})
    return figures


def assert_same_model(updated: Matcher, whole: Matcher) -> None:
    """Same vocabulary, idf and weights (to float rounding), same languages, same matches."""
    assert updated.ids == whole.ids and updated.langs == whole.langs and updated.fitted == whole.fitted
    ours, theirs = channel_figures(updated), channel_figures(whole)
    assert ours.keys() == theirs.keys()
    for feature, (idf, weights) in theirs.items():
        assert ours[feature][0] == pytest.approx(idf, rel=1e-6)
        assert ours[feature][1].keys() == weights.keys()
        assert list(ours[feature][1].values()) == pytest.approx(list(weights.values()), rel=1e-5, abs=1e-7)
    for query in ("refund my order please", "reset password login", "passordet lenke", "重置密码", "wifi router firmware"):
        assert [(m.article_id, m.score) for m in updated.match(query, top=5)] == \
            [(m.article_id, m.score) for m in whole.match(query, top=5)]


def reads(monkeypatch) -> list[list[int]]:
    """Which articles each word-channel pass reads (record of Matcher._word_docs calls)."""
    seen: list[list[int]] = []
    original = Matcher._word_docs

    def recording(self, articles, which):
        which = list(which)
        seen.append(which)
        return original(self, articles, which)

    monkeypatch.setattr(Matcher, "_word_docs", recording)
    return seen


def test_an_edit_an_addition_and_a_removal_give_the_whole_fits_model_reading_only_the_changed(monkeypatch):
    before = articles(80)
    old = Matcher.from_articles(before)
    rng = random.Random(7)
    after = list(before)
    after[10] = MatchArticle("a10", after[10].title, after[10].body + " frobnicator unique", "en")  # edit, new word
    removed = after.pop(20)  # its words that no other article has must leave the vocabulary
    after.insert(5, article(502, rng, " zyxwidget"))  # a new article, placed among the others
    after.append(article(501, rng))
    after[30], after[31] = after[31], after[30]  # order changed, text not
    seen = reads(monkeypatch)
    updated = old.updated(after)
    assert sorted(seen[0]) == sorted(after.index(a) for a in after if a.id in {"a10", "a502", "a501"})
    whole = Matcher.from_articles(after)
    assert_same_model(updated, whole)
    assert "20" not in updated._words.vocabulary  # the removed article's title number
    assert removed.id not in updated.ids
    assert updated.match("frobnicator", top=1)[0].article_id == "a10"
    assert updated.match("zyxwidget", top=1)[0].article_id == "a502"
    assert tfidf_update.orphans(updated._words) > 0  # the removed words' rows, empty until a whole fit


def test_updates_in_a_row_stay_the_whole_fits_model():
    rng = random.Random(3)
    current = articles(60, seed=3)
    model = Matcher.from_articles(current)
    for step in range(6):
        i = rng.randrange(len(current))
        current = current[:i] + [article(1000 + step, rng, f" word{step}")] + current[i + 1:]
        model = model.updated(current)
    assert_same_model(model, Matcher.from_articles(current))


def test_many_changes_or_a_model_that_cannot_be_updated_fit_whole(monkeypatch):
    before = articles(50)
    old = Matcher.from_articles(before)
    seen = reads(monkeypatch)
    share = int(matcher_module.UPDATE_SHARE * 50)
    rng = random.Random(5)
    few = [article(900 + i, rng) if i < share else a for i, a in enumerate(before)]
    old.updated(few)
    assert len(seen[-1]) == share  # up to the share: only the changed ones
    many = [article(900 + i, rng) if i <= share else a for i, a in enumerate(before)]
    assert_same_model(old.updated(many), Matcher.from_articles(many))
    assert len(seen[-1]) == 50  # past it: every article
    assert len(Matcher().updated(before).ids) == 50  # an empty model: a whole fit
    assert len(seen[-1]) == 50


def test_postings_that_do_not_read_back_as_counts_are_refitted_not_trusted():
    before = articles(40)
    old = Matcher.from_articles(before)
    old._words.postings.data[:5] *= 1.37  # not what any fit writes
    after = before[:-1] + [MatchArticle("a39", "Changed", "refund printer", "en")]
    keep = np.arange(40, dtype=np.int32)
    keep[-1] = -1
    assert tfidf_update.updated(old._words, keep, [["refund", "printer"]]) is None
    assert_same_model(old.updated(after), Matcher.from_articles(after))
    char_channel = old._chars[0][1]
    assert char_channel.scale is None  # common n-grams are dropped there: their counts are not kept
    assert tfidf_update.updated(char_channel, keep, [["x"]]) is None


def test_the_holder_updates_and_orphans_past_the_share_bring_a_whole_fit(monkeypatch):
    monkeypatch.setattr(matcher_module, "UPDATE_SHARE", 0.5)
    rng = random.Random(11)
    current = articles(30, seed=11)
    holder = ModelHolder()
    assert holder.refresh(current)
    seen = reads(monkeypatch)
    step = 0
    while not seen or len(seen[-1]) < len(current):
        step += 1
        assert step < 200, "orphan rows never led to a whole fit"
        current = current[1:] + [article(2000 + step, rng, f" onlyhere{step} alsohere{step}")]
        holder.refresh(current)
        channel = holder.matcher._words
        assert tfidf_update.orphans(channel) <= 0.5 * channel.postings.shape[0] + 3 * 2 * 50
    assert tfidf_update.orphans(holder.matcher._words) == 0  # the whole fit dropped them
    assert_same_model(holder.matcher, Matcher.from_articles(current))
