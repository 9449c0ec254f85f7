"""Content gaps: emails that went to a person for want of a good article, grouped by topic.

A gap email is one the auto-responder handed to a person because nothing matched well enough
(reasons no-match, low-score, ambiguous) or whose customer clicked "Still need help" after the
auto-reply. Emails a person answered from kb (state "answered") are not gaps: an article existed.
Nor is an email whose question is already an example question of some article (someone wrote or
chose an article for it). The rest are clustered: TF-IDF over the questions' stemmed words,
agglomerative clustering with cosine distance (average linkage, a distance threshold), which is
deterministic; the questions are put in a canonical order first, so the same emails give the same
groups with the same keys whatever order they were stored in. Request-free (STYLE.md 11).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

import numpy as np
import sqlalchemy as sa
import sqlalchemy.orm as so

from kb.autoreply import textproc
from kb.autoreply.models import MailRecord
from kb.capture.examples import fold
from kb.capture.models import ExampleQuestion
from kb.capture.scrub import scrub
from kb.errors import ValidationError
from kb.models import Article
from kb.recovery.ledger_csv import period as day_period

# The reason codes (kb.autoreply.decision, ledger.STILL_NEED_HELP) that mean "no good article".
GAP_REASONS = ("no-match", "low-score", "ambiguous", "still-need-help")
PERIOD_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
# Clustering runs on request and costs O(n²) memory and time: the newest MAX_EMAILS emails of
# the period are grouped (2,000 take 0.2-0.7 s: benchmarks/gaps.py), the rest are counted.
MAX_EMAILS = 2000
MAX_GROUPS = 30
EXAMPLES_SHOWN = 5
MATCHED_PER_GROUP = 5  # questions of a group the matcher scores to find its nearest article
TOP_TERMS = 3
# Average cosine distance under which questions share a topic. Chosen on the StackFAQ dev split
# (real questions; "same topic" = same answering article) by the adjusted Rand index of the groups:
# 0.70 and 0.75 both give 0.62 (0.80: 0.54, 0.60: 0.51); 0.75 leaves fewer single questions. On
# the test split, 0.75 gives 0.58 (194 groups for 125 articles).
DISTANCE = 0.75
MAX_QUESTION = 1000
PLACEHOLDER = re.compile(r"\[(?:email|phone|number|name)\]")
NAME_PART = re.compile(r"[^\W\d_]{3,}")


@dataclass(frozen=True)
class Question:
    """One gap email as a question: scrubbed subject and text, its language and when it came."""

    record_id: int
    text: str
    lang: str
    created_at: datetime


@dataclass(frozen=True)
class Nearest:
    """The existing article the matcher finds closest to a group, with its mean score."""

    article_id: int
    title: str
    slug: str
    status: str
    score: float


@dataclass
class Gap:
    """A group of questions on one topic; ``key`` is a digest of its questions (stable)."""

    key: str
    questions: list[Question]
    terms: list[str]
    lang: str
    nearest: Nearest | None = None

    @property
    def size(self) -> int:
        """How many emails asked this."""
        return len(self.questions)

    @property
    def examples(self) -> list[str]:
        """A few distinct questions of the group, newest first."""
        return distinct([q.text for q in self.questions])[:EXAMPLES_SHOWN]

    @property
    def title(self) -> str:
        """A working title from the group's top terms ("Gift card balance")."""
        text = " ".join(self.terms) or "Questions"
        return text[:1].upper() + text[1:]


@dataclass
class Report:
    """The gaps of a period: groups shown (largest first) and what was counted but not grouped."""

    start: datetime | None
    end: datetime | None
    gaps: list[Gap] = field(default_factory=list)
    emails: int = 0       # grouped
    capped: bool = False  # the period had more than MAX_EMAILS gap emails: the newest were grouped
    covered: int = 0      # left out: the question is already an example question of an article
    hidden: int = 0       # groups beyond MAX_GROUPS


def distinct(texts: Iterable[str]) -> list[str]:
    """The texts without repeats (compared folded), in order."""
    seen, out = set(), []
    for text in texts:
        if fold(text) not in seen:
            seen.add(fold(text))
            out.append(text)
    return out


def period(settings: Mapping[str, Any], days: str | None, first: str | None, last: str | None,
           now: datetime) -> tuple[datetime | None, datetime | None, int | None]:
    """(start, end, days) of the filter: from/to days if given, else the last 7, 30 or 90 days.

    ValidationError for a malformed date; an unknown number of days means the default 30.
    """
    if (first or "").strip() or (last or "").strip():
        start, end = day_period(settings, first, last)
        return start, end, None
    chosen = int(days) if (days or "").strip() in {str(d) for d in PERIOD_DAYS} else DEFAULT_DAYS
    return now - timedelta(days=chosen), None, chosen


def sender_names(address: str) -> list[str]:
    """Name-like parts of a sender's address ("kari.nordmann@x" -> kari, nordmann), for scrub."""
    return NAME_PART.findall((address or "").partition("@")[0])


def question_of(subject: str, text: str, address: str = "") -> str:
    """An email as one scrubbed question: subject, then text, whitespace collapsed, bounded."""
    subject = re.sub(r"^(?:\s*(?:re|fwd?|sv|vs|aw|回复|答复)\s*[:：])+", "", subject or "", flags=re.IGNORECASE)
    joined = " ".join(f"{subject.strip()}. {text or ''}".strip(" .").split()) if subject.strip() else \
        " ".join((text or "").split())
    clean = " ".join(scrub(joined, sender_names(address)).split())
    return clean if len(clean) <= MAX_QUESTION else clean[:MAX_QUESTION].rsplit(" ", 1)[0] + " …"


def gap_filter(start: datetime | None, end: datetime | None) -> list:
    """The SQL conditions of a gap email in [start, end)."""
    where = [MailRecord.state == "person",
             sa.or_(*[MailRecord.reason.like(f"{code}:%") for code in GAP_REASONS])]
    if start is not None:
        where.append(MailRecord.created_at >= start)
    if end is not None:
        where.append(MailRecord.created_at < end)
    return where


def gap_questions(session: so.Session, start: datetime | None, end: datetime | None,
                  limit: int = MAX_EMAILS) -> tuple[list[Question], bool, int]:
    """(the newest ``limit`` uncovered gap questions, whether more were left out, how many were covered)."""
    rows = session.execute(
        sa.select(MailRecord.id, MailRecord.subject, MailRecord.text, MailRecord.lang, MailRecord.from_addr,
                  MailRecord.created_at).where(*gap_filter(start, end))
        .order_by(MailRecord.created_at.desc(), MailRecord.id.desc()).limit(limit + 1)).all()
    capped = len(rows) > limit
    known_ids = set(session.scalars(sa.select(ExampleQuestion.mail_record_id).where(
        ExampleQuestion.mail_record_id.in_([row.id for row in rows[:limit]]))))
    known_texts = {fold(text) for text in session.scalars(sa.select(ExampleQuestion.text))}
    found, covered = [], 0
    for row in rows[:limit]:
        text = question_of(row.subject, row.text, row.from_addr)
        if row.id in known_ids or fold(text) in known_texts or not text:
            covered += 1
            continue
        lang = textproc.normalise_lang(row.lang) or textproc.detect_language(text)
        found.append(Question(row.id, text, lang, row.created_at))
    return found, capped, covered


def _identity(tokens: list[str]) -> list[str]:
    """Analyzer for text that textproc has already turned into terms."""
    return tokens


def _canonical(questions: list[Question]) -> list[Question]:
    """The questions in an order that depends on their content only, not on ids or storage order."""
    return sorted(questions, key=lambda q: (fold(q.text), q.created_at.isoformat(), q.lang))


def cluster(questions: list[Question], distance: float = DISTANCE) -> list[Gap]:
    """The questions grouped by topic, largest group first, then by key: the same input, the same groups."""
    # Here, not at the top: scikit-learn takes half a second to import, and every web worker imports
    # this module (the agent pages) but only the gaps page and its job ever cluster.
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer

    questions = _canonical(questions)
    if not questions:
        return []
    analysed = [textproc.analyse(PLACEHOLDER.sub(" ", q.text), q.lang) for q in questions]
    docs = [[term for term, _ in pairs] for pairs in analysed]
    labels = np.zeros(len(questions), dtype=int)
    names: list[str] = []
    matrix = None
    try:
        vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, dtype=np.float32)
        matrix = vectorizer.fit_transform(docs)
        names = list(vectorizer.get_feature_names_out())
    except ValueError:  # no question has a content word: one group of "other" questions
        pass
    if matrix is not None and len(questions) > 1:
        similarity = (matrix @ matrix.T).toarray()
        distances = np.clip(1.0 - similarity, 0.0, 1.0)
        np.fill_diagonal(distances, 0.0)
        labels = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                         distance_threshold=distance).fit_predict(distances)
    members: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        members[int(label)].append(index)
    gaps = [_gap([questions[i] for i in idx], matrix[idx] if matrix is not None else None, names,
                 [analysed[i] for i in idx]) for idx in members.values()]
    return sorted(gaps, key=lambda g: (-g.size, g.key))


def _gap(questions: list[Question], vectors, names: list[str], analysed: list[list[tuple[str, str]]]) -> Gap:
    """One group: its key, questions newest first, top terms (as customers wrote them) and language."""
    key = hashlib.sha256("\n".join(sorted(fold(q.text) for q in questions)).encode("utf-8", "surrogatepass")
                         ).hexdigest()[:16]
    terms: list[str] = []
    if vectors is not None and names:
        weights = np.asarray(vectors.mean(axis=0)).ravel()
        spelled: dict[str, Counter] = defaultdict(Counter)
        for pairs in analysed:
            for term, word in pairs:
                spelled[term][word.lower()] += 1
        for index in sorted(np.flatnonzero(weights > 0), key=lambda i: (-round(float(weights[i]), 6), names[i])):
            if len(terms) >= TOP_TERMS:
                break
            terms.append(min(spelled[names[index]].items(), key=lambda item: (-item[1], item[0]))[0])
    langs = Counter(q.lang for q in questions)
    lang = min(langs.items(), key=lambda item: (-item[1], item[0]))[0]
    ordered = sorted(questions, key=lambda q: (q.created_at, fold(q.text)), reverse=True)
    return Gap(key, ordered, terms, lang)


def nearest(session: so.Session, matcher, gap: Gap) -> Nearest | None:
    """The article the matcher scores best over a few of the group's questions, with its mean score."""
    sample = gap.examples[:MATCHED_PER_GROUP]
    totals: dict[str, float] = defaultdict(float)
    for text in sample:
        for match in matcher.match(PLACEHOLDER.sub(" ", text), top=3):
            totals[match.article_id] += match.score
    if not totals:
        return None
    best, total = min(totals.items(), key=lambda item: (-item[1], item[0]))
    article = session.get(Article, int(best)) if best.isdigit() else None
    if article is None:
        return None
    return Nearest(article.id, article.title, article.slug, article.status, round(total / len(sample), 3))


def find_gaps(session: so.Session, start: datetime | None, end: datetime | None, *, matcher=None,
              limit: int = MAX_EMAILS, max_groups: int = MAX_GROUPS) -> Report:
    """The period's gap emails grouped by topic, each shown group with its nearest article."""
    questions, capped, covered = gap_questions(session, start, end, limit)
    gaps = cluster(questions)
    report = Report(start, end, gaps[:max_groups], len(questions), capped, covered, max(0, len(gaps) - max_groups))
    if matcher is not None:
        for gap in report.gaps:
            gap.nearest = nearest(session, matcher, gap)
    return report


def find_gap(session: so.Session, start: datetime | None, end: datetime | None, key: str) -> Gap | None:
    """The group with this key among the period's gaps (all of them, not only those shown), or None."""
    if not re.fullmatch(r"[0-9a-f]{16}", key or ""):
        raise ValidationError("This group is not known: reload the content gaps and try again.")
    questions, _, _ = gap_questions(session, start, end)
    return next((gap for gap in cluster(questions) if gap.key == key), None)
