"""The sample shop's example questions: other ways its customers asked for a few starter articles.

``load`` runs from the follow-up sample (`kb sample load` and the first `kb serve`), so the editor
shows "also asked as" with believable content and the matcher and search use them at once;
``remove`` runs from `kb sample remove`. Each row is marked ``sample`` (the editor says so).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.capture import examples
from kb.capture.models import ExampleQuestion
from kb.models import Article

# (article slug, source, language, days ago, the customer's words as kb keeps them: scrubbed)
EXAMPLES = (
    ("warranty-and-repairs", "answered", "en", 12, "The zip on my backpack got stuck after a month, can you fix it?"),
    ("warranty-and-repairs", "solved", "en", 5, "My headlamp stopped working after two months, is it covered?"),
    ("refund-timelines", "answered", "en", 9, "I returned the boots last week, when do I see the money on my card?"),
    ("refund-timelines", "editor", "en", 20, "Where is my refund?"),
    ("track-order", "solved", "en", 3, "Order [number] still says processing, where is my parcel?"),
    ("reset-password", "answered", "en", 7, "The reset link in the email says it has expired"),
    ("nb-retur", "answered", "nb", 6, "Kan jeg sende tilbake en jakke jeg har brukt én gang?"),
    ("zh-track-order", "solved", "zh", 4, "我的包裹三天没有更新物流信息了，怎么办？"),
)


def load(session: so.Session, now: datetime) -> Counter[str]:
    """Add the sample examples to the starter articles that exist (skipping any kb knows already)."""
    counts: Counter[str] = Counter()
    slugs = dict(session.execute(sa.select(Article.slug, Article.id).where(
        Article.slug.in_({slug for slug, *_ in EXAMPLES}))).all())
    for slug, source, lang, days, text in EXAMPLES:
        if slug not in slugs:
            continue
        known = session.scalar(sa.select(ExampleQuestion.id).where(
            ExampleQuestion.key == examples.example_key(slugs[slug], text)))
        if known is not None:
            continue
        row = examples.learn(session, slugs[slug], text, source=source, lang=lang, now=now - timedelta(days=days))
        row.sample = True
        counts["example_questions"] += 1
    session.flush()
    return counts


def remove(session: so.Session) -> Counter[str]:
    """Delete the sample examples (the articles are queued for reindexing by forget)."""
    ids = list(session.scalars(sa.select(ExampleQuestion.id).where(ExampleQuestion.sample.is_(True))))
    for example_id in ids:
        examples.forget(session, example_id)
    return Counter(example_questions=len(ids))
