"""Related articles (kb.search.likeness) on both backends: about the same topic, never the article itself."""

from __future__ import annotations

import pytest

from kb import search
from kb.search.likeness import Source, keywords, pieces
from tests.searchbackends import BACKENDS, backend_app


@pytest.fixture(params=BACKENDS)
def app(request, app_factory):
    """Every test here runs on each search backend."""
    return backend_app(request, app_factory, request.param, STARTER_ARTICLES_DIR="")


TOPICS = {
    "refund": [("When will I get my refund?", ["refund"], "We refund your money within 10 days of receiving the parcel."),
               ("Refunds for gift cards", ["refund", "gift card"], "A gift card bought by mistake can be refunded."),
               ("Partial refunds", ["refund"], "Returning part of an order gives a partial refund of those items.")],
    "password": [("Reset your password", ["password", "login"], "Use the forgotten password link on the sign-in page."),
                 ("Choosing a strong password", ["password"], "A strong password is long; a passphrase works well."),
                 ("Locked out after wrong passwords", ["password", "login"], "Five wrong passwords lock the login.")],
    "jacket": [("Washing a waterproof jacket", ["jacket", "care"], "Wash the jacket at 30 degrees, then reproof it."),
               ("Reproofing a waterproof jacket", ["jacket", "care"], "Reproof the membrane when water stops beading."),
               ("Jacket sizes", ["jacket", "size"], "Our jackets run large: choose one size down for a close fit.")],
}


@pytest.fixture
def help_centre(app, make_article):
    """Three articles on each of three topics, each topic a category, and one in Norwegian sharing their words."""
    made = {topic: [make_article(title, category=f"Topic {topic}", tags=tags, body_md=body)
                    for title, tags, body in items] for topic, items in TOPICS.items()}
    made["nb"] = make_article("Refusjon av passord", lang="nb", category="Refusjon", tags=["refund", "password"],
                              body_md="Refund og password på norsk.")
    search.process_outbox(app)
    return made


def related_of(app, session, article, limit: int = 5):
    """The related articles as a page gets them."""
    with app.app_context():
        return search.related_articles(session, article, limit=limit)


def test_related_articles_are_about_the_same_topic(app, session, help_centre):
    for topic in TOPICS:
        for article in help_centre[topic]:
            related = related_of(app, session, article, limit=2)
            assert {a.id for a in related} == {a.id for a in help_centre[topic]} - {article.id}, (topic, article.title)


def test_never_the_article_itself_nor_another_language(app, session, help_centre):
    for article in [*help_centre["refund"], *help_centre["password"]]:
        related = related_of(app, session, article)
        assert article.id not in {a.id for a in related}
        assert all(a.lang == "en" for a in related)
    assert help_centre["refund"][0].id not in {a.id for a in related_of(app, session, help_centre["nb"])}


def test_distinctive_body_words_find_an_article_whose_title_says_nothing_alike(app, session, make_article):
    source = make_article("Caring for merino wool", tags=["care"], body_md="Merino fibres felt in hot water: "
                          "wash merino cold, lay merino flat to dry, never tumble merino.")
    alike = make_article("Our base layers", body_md="The base layers are merino. Merino keeps warm when wet.")
    for n in range(6):
        make_article(f"Store opening hours {n}", body_md="Our stores open at nine and close at six.")
    search.process_outbox(app)
    assert [a.id for a in related_of(app, session, source)] == [alike.id]


def test_the_words_an_article_is_about():
    source = Source(1, "en", "How do I reset my password?", ("login",),
                    "Open the sign-in page. The sign-in page has a reset link; the link expires in an hour.")
    frequency = {"sign": 3, "page": 40, "link": 2, "expires": 1, "open": 2, "hour": 2}
    found = {(p.kind, p.term): p.weight for p in pieces(source, lambda words: {w: frequency.get(w, 0) for w in words}, 100)}
    assert found[("title", "password")] == 3.0 and found[("tags", "login")] == 2.0 and found[("body", "reset")] == 1.0
    assert ("title", "how") not in found  # stop words say nothing
    # Body words: the most repeated of those at least one other article uses, and not too common (page: 40 %).
    assert set(keywords(source.text, {"reset"}, lambda words: {w: frequency.get(w, 0) for w in words}, 100)[:2]) == {"sign", "link"}
    assert ("body", "expir") not in found and ("title", "page") not in found
