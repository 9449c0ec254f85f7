"""Example questions are kept scrubbed, once per article and text, and their version moves with them."""

from __future__ import annotations

import pytest

from kb.capture import examples
from kb.capture.scrub import scrub
from kb.errors import FieldError, NotFound


def test_personal_data_is_replaced_by_placeholders():
    text = scrub("I'm Kari Nordmann (kari.n+shop@example.no, +47 912 34 567), order 20261234.",
                 names=["Kari Nordmann"])
    assert text == "I'm [name] ([email], [phone]), order [number]."
    assert scrub("It costs 99 kr, since 2024.") == "It costs 99 kr, since 2024."


def test_an_example_is_learnt_once_scrubbed_and_forgotten(session, make_article):
    article = make_article(status="published")
    before = examples.version(session)
    first = examples.learn(session, article.id, "How do I get my  MONEY back? mail me: a@b.no", source="answered")
    again = examples.learn(session, article.id, "how do i get my money back? mail me: a@b.no", source="solved")
    assert again.id == first.id and first.text == "How do I get my MONEY back? mail me: [email]"
    assert examples.all_examples(session) == [(article.id, first.text, "")]
    assert examples.version(session) != before
    assert examples.forget(session, first.id) == article.id
    assert examples.for_article(session, article.id) == []
    with pytest.raises(NotFound):
        examples.forget(session, first.id)
    with pytest.raises(FieldError):
        examples.learn(session, article.id, "   ", source="editor")
    with pytest.raises(FieldError):
        examples.learn(session, article.id, "Fine text", source="guess")
